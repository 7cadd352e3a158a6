"""Everything notebook 06 and ``python -m ldct_nb.eval RUN_DIR`` compute for ASCON's tables.

:func:`ascon_evaluation` reads notebook 04's ``run_dir/results/training.json``,
denoises the test split with every run (best checkpoint), and returns the
per-slice metrics, the tables (Table 1, 2, S1, S2 and the presets, mean +- std,
best in bold), the paired tests of each table against its reference row, the
lesion CNR and the error left in each tissue, the radiomics of the lesion boxes
and the ordering agreement with the paper's Table 1. :func:`write_results`
stores them as CSV and JSON in ``run_dir/results/``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ldct_nb.data.cache import open_split
from ldct_nb.errors import ParameterError
from ldct_nb.eval.metrics import ASCON_WINDOW
from ldct_nb.eval.published import ASCON_TABLE1
from ldct_nb.eval.radiomics import feature_differences
from ldct_nb.eval.regions import lesion_cnr_table, tissue_error_table
from ldct_nb.eval.tables import LDCT_ROW, denoise_split, evaluate_rows, format_table, paired_test, summary_table
from ldct_nb.paths import atomic_write_json, atomic_write_text, resolve

__all__ = ["AsconEvaluation", "REFERENCE_ROWS", "ascon_evaluation", "write_results"]

REFERENCE_ROWS = {
    "table1": "ASCON",
    "table2": "L_MSE + L_SSIM + L_global + L_local",
    "tableS1": None,  # pairs: each baseline against itself with MAC-Net
    "tableS2": "ASCON (alternating, neighbouring positives, hard negatives)",
    "presets": "ASCON, paper preset",
}
"""The row every other row of a table is tested against (paired Wilcoxon over test slices)."""
_S1_PAIRS = [("RED-CNN + MAC-Net", "RED-CNN"), ("U-Net + MAC-Net", "U-Net")]


@dataclass
class AsconEvaluation:
    """The evaluation of notebook 04's runs on the test split."""

    per_slice: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    tests: pd.DataFrame
    cnr: pd.DataFrame
    tissue_error: pd.DataFrame
    radiomics: pd.DataFrame
    ordering: dict[str, Any]
    outputs: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    window: tuple[float, float] = ASCON_WINDOW


def _training_rows(run_dir) -> list[dict[str, Any]]:
    path = resolve(run_dir) / "results" / "training.json"
    if not path.is_file():
        raise ParameterError(f"{path} does not exist: run notebook 04 (ASCON training) with this run_dir first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))["rows"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise ParameterError(f"{path} is not a training summary written by notebook 04 ({exc})") from exc


def ascon_evaluation(run_dir, *, split: str = "test", window=ASCON_WINDOW, device="cpu",
                     max_slices: int | None = None) -> AsconEvaluation:
    """Evaluate every run of ``run_dir/results/training.json`` on ``split`` (see the module docstring)."""
    from ldct_nb.train.loop import load_denoiser

    entries = _training_rows(run_dir)
    test = open_split(run_dir, split)
    per_slice = evaluate_rows(entries, test, window=window, device=device, max_slices=max_slices)
    tables, tests = {}, []
    for table in dict.fromkeys(e["table"] for e in entries):
        rows = [LDCT_ROW] + list(dict.fromkeys(e["row"] for e in entries if e["table"] == table))
        tables[table] = summary_table(per_slice[per_slice["row"].isin(rows)], rows)
        pairs = _S1_PAIRS if table == "tableS1" else [(r, REFERENCE_ROWS.get(table)) for r in rows[1:]]
        for a, b in pairs:
            if b is None or a == b or a not in rows or b not in rows:
                continue
            for metric in ("psnr", "ssim"):
                tests.append({"table": table, **paired_test(per_slice, a, b, metric)})
    # images of the Table 1 methods for the figures, CNR, tissue error and radiomics
    n = len(test) if max_slices is None else min(len(test), max_slices)
    outputs = {"NDCT": np.asarray(test.ndct[:n]), LDCT_ROW: np.asarray(test.ldct[:n])}
    for e in entries:
        if e["table"] == "table1" and int(e["seed"]) == min(int(x["seed"]) for x in entries) and e["row"] not in outputs:
            path = e["best"] if Path(e["best"]).is_file() else e["last"]
            outputs[e["row"]] = denoise_split(load_denoiser(path, device=device), test, max_slices=n)
    reference = np.asarray(test.phantom[:n]) if test.phantom is not None else outputs["NDCT"]
    cnr = tissue = pd.DataFrame()
    if test.labels is not None and test.tissues:
        labels = np.asarray(test.labels[:n])
        cnr = lesion_cnr_table(outputs, labels, test.tissues, reference=reference) if "lesion" in test.tissues else cnr
        tissue = tissue_error_table({k: v for k, v in outputs.items() if k != "NDCT"}, outputs["NDCT"], labels, test.tissues)
    radiomics = pd.DataFrame([{"image": name, **feature_differences(img, outputs["NDCT"], test.boxes[:n])}
                              for name, img in outputs.items() if name != "NDCT"])
    return AsconEvaluation(per_slice, tables, pd.DataFrame(tests), cnr, tissue, radiomics,
                           _ordering(tables.get("table1")), outputs, tuple(window) if not isinstance(window, str) else window)


def _ordering(table1: pd.DataFrame | None) -> dict[str, Any]:
    """Spearman rank correlation between our Table 1 PSNR ordering and the paper's (per data set)."""
    if table1 is None:
        return {}
    ours = table1.drop(index=LDCT_ROW, errors="ignore")["psnr"]
    common = [m for m in ours.index if m in ASCON_TABLE1]
    out: dict[str, Any] = {"methods": common}
    for dataset in ("mayo2016", "mayo2020"):
        paper = [ASCON_TABLE1[m][dataset][0] for m in common]
        rho, p = stats.spearmanr(ours[common].to_numpy(), paper) if len(common) > 2 else (float("nan"), float("nan"))
        out[dataset] = {"spearman": float(rho), "p_value": float(p),
                        "paper_best": common[int(np.argmax(paper))], "our_best": str(ours[common].idxmax())}
    return out


def write_results(ev: AsconEvaluation, run_dir) -> list[Path]:
    """CSV and JSON files of the evaluation in ``run_dir/results/`` (atomic writes)."""
    root = resolve(run_dir) / "results"
    written = []
    frames = {"ascon_per_slice": ev.per_slice, "ascon_tests": ev.tests, "ascon_cnr": ev.cnr,
              "ascon_tissue_error": ev.tissue_error, "ascon_radiomics": ev.radiomics}
    for name, table in ev.tables.items():
        frames[f"ascon_{name}"] = table.reset_index()
    for name, df in frames.items():
        written.append(atomic_write_text(root / f"{name}.csv", df.to_csv(index=False)))
    summary = {name: format_table(t).reset_index().to_dict(orient="records") for name, t in ev.tables.items()}
    written.append(atomic_write_json(root / "ascon_tables.json", {"window_hu": list(ev.window), "tables": summary,
                                                                   "tests": ev.tests.to_dict(orient="records"),
                                                                   "ordering": ev.ordering}))
    return written
