"""LIDnet's tables from notebook 05's runs, and the views across the two papers.

For one detection data set (analogue) of notebook 05
(``run_dir/results/lidnet/<analogue>/summary.json``), :func:`lidnet_evaluation`
denoises the data set's test split with every run (best checkpoint) and scores
it as LIDnet sec. 4.1 does: the NDCT detector's AP-50 / AP-75 on the denoised
images (Table 2), the mean absolute difference to the NDCT of three GLCM
features of the lesion boxes (Table 3, ROI) and PSNR / SSIM / RMSE over the
whole image (Table 3, overall), and the CNN versus GAN variant with their
training times (Table 4). With ``ascon_rows`` (notebook 04's Table 1 runs,
trained on the ASCON benchmark) the same scores are given to the ASCON family
on this data set: a cross-paper view neither paper has (those denoisers were
trained on other images and another dose: a transfer test).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ldct_nb.data.cache import open_split
from ldct_nb.data.datasets import DetectionSlices
from ldct_nb.errors import ParameterError
from ldct_nb.eval.detection import detection_ap, predict
from ldct_nb.eval.metrics import slice_metrics
from ldct_nb.eval.radiomics import FEATURES, feature_differences
from ldct_nb.eval.tables import denoise_split
from ldct_nb.paths import atomic_write_text, resolve

__all__ = ["LidnetEvaluation", "available_analogues", "lidnet_evaluation", "write_lidnet_results"]


@dataclass
class LidnetEvaluation:
    """LIDnet's tables for one data set (see the module docstring)."""

    analogue: str
    scores: pd.DataFrame
    table2: pd.DataFrame
    table3: pd.DataFrame
    table4: pd.DataFrame
    ndct_detector: dict[str, Any]
    example: dict[str, Any]
    """One test slice with a lesion: ``index``, the true ``boxes`` and, per image name,
    ``image`` (HU) and the NDCT detector's best box with its score and IoU (LIDnet Fig. 2)."""


def available_analogues(run_dir) -> list[str]:
    """The data sets notebook 05 wrote results for."""
    root = resolve(run_dir) / "results" / "lidnet"
    return sorted(p.name for p in root.iterdir() if (p / "summary.json").is_file()) if root.is_dir() else []


def _summary(run_dir, analogue: str) -> dict[str, Any]:
    path = resolve(run_dir) / "results" / "lidnet" / analogue / "summary.json"
    if not path.is_file():
        raise ParameterError(f"{path} does not exist: run notebook 05 (LIDnet) for {analogue!r} with this run_dir first")
    return json.loads(path.read_text(encoding="utf-8"))


def _checkpoint(entry: dict[str, Any]) -> Path:
    for key in ("best", "last"):
        if entry.get(key) and Path(entry[key]).is_file():
            return Path(entry[key])
    raise ParameterError(f"run {entry.get('name')!r} has no checkpoint on disk ({entry.get('best')}, {entry.get('last')})")


@torch.no_grad()
def lidnet_evaluation(run_dir, analogue: str, *, device="cpu", max_slices: int | None = None,
                      ascon_rows: list[dict[str, Any]] | None = None) -> LidnetEvaluation:
    """Score every run of notebook 05 for ``analogue`` on its test split (see the module docstring)."""
    from ldct_nb.models.detector import load_detector
    from ldct_nb.train.lidnet import analogue_data_dir
    from ldct_nb.train.loop import load_denoiser

    summary = _summary(run_dir, analogue)
    runs = summary["runs"]
    det = [r for r in runs.values() if r.get("kind") == "detector"]
    if not det:
        raise ParameterError(f"notebook 05's summary for {analogue!r} lists no NDCT detector")
    detector = load_detector(_checkpoint(det[0]), device=device)
    split = open_split(analogue_data_dir(run_dir, analogue), "test")
    n = len(split) if max_slices is None else min(len(split), max_slices)
    ndct_hu = np.asarray(split.ndct[:n], np.float64)
    ds = DetectionSlices(split, source="ndct")
    targets = [ds[i][1] for i in range(n)]
    window = split.hu_window
    with_lesion = [i for i in range(n) if len(split.boxes[i])]
    example: dict[str, Any] = {"index": with_lesion[0] if with_lesion else 0, "images": {}}
    example["boxes"] = np.asarray(split.boxes[example["index"]]).reshape(-1, 4)

    def scores(label: str, role: str, family: str, images_hu: np.ndarray, entry: dict | None) -> dict[str, Any]:
        unit = torch.from_numpy(((np.clip(images_hu, *window) - window[0]) / (window[1] - window[0])).astype(np.float32))
        predictions = predict(detector, unit[:, None])
        ap = detection_ap(predictions, targets)
        example["images"][label] = {"image": images_hu[example["index"]], **_best_box(predictions[example["index"]],
                                                                                      example["boxes"])}
        m = slice_metrics(images_hu, ndct_hu, window)
        rad = feature_differences(images_hu, ndct_hu, split.boxes[:n])
        row = {"denoiser": label, "role": role, "family": family, "ap50": 100 * ap["ap50"], "ap75": 100 * ap["ap75"],
               **{f: rad[f] for f in FEATURES}, "lesions": rad["lesions"],
               "psnr": float(m["psnr"].mean()), "ssim": float(100 * m["ssim"].mean()), "rmse": float(m["rmse"].mean())}
        if entry is not None:
            row["train_seconds"] = entry.get("seconds") or entry.get("train_seconds")
        return row

    rows = [scores("LDCT", "input", "input", np.asarray(split.ldct[:n], np.float64), None),
            scores("NDCT", "reference", "input", ndct_hu, None)]
    for name, entry in runs.items():
        if entry.get("kind") == "detector":
            continue
        net = load_denoiser(_checkpoint(entry), device=device)
        rows.append(scores(entry.get("label", name), entry.get("role", ""), "LIDnet", denoise_split(net, split, max_slices=n), entry))
    for e in ascon_rows or []:
        path = e["best"] if Path(e["best"]).is_file() else e["last"]
        if not Path(path).is_file():
            continue
        net = load_denoiser(path, device=device)
        rows.append(scores(f"{e['row']} (ASCON benchmark)", "transfer", "ASCON", denoise_split(net, split, max_slices=n), None))
    table = pd.DataFrame(rows).set_index("denoiser")
    return LidnetEvaluation(analogue, table, _table2(table), _table3(table), _table4(table),
                            summary.get("ndct_detector", {}), example)


def _best_box(prediction: dict[str, torch.Tensor], truth: np.ndarray) -> dict[str, Any]:
    """The detection with the highest IoU with a true box: its box, score and IoU (0 when none overlaps)."""
    from torchvision.ops import box_iou

    boxes = prediction["boxes"].reshape(-1, 4)
    if len(boxes) == 0 or len(truth) == 0:
        return {"box": None, "score": float("nan"), "iou": 0.0}
    iou = box_iou(boxes.float(), torch.as_tensor(truth, dtype=torch.float32)).max(dim=1).values
    k = int(iou.argmax())
    return {"box": boxes[k].tolist(), "score": float(prediction["scores"][k]), "iou": float(iou[k])}


def _pairs(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(baseline label, LIDnet label) pairs present in the table."""
    base = [d for d, r in table.iterrows() if r["role"] == "baseline"]
    return [(b, f"Ours-{b}") for b in base if f"Ours-{b}" in table.index]


def _table2(table: pd.DataFrame) -> pd.DataFrame:
    out = [{"method": b, "AP-50 baseline": table.loc[b, "ap50"], "AP-50 LIDnet": table.loc[o, "ap50"],
            "AP-75 baseline": table.loc[b, "ap75"], "AP-75 LIDnet": table.loc[o, "ap75"]} for b, o in _pairs(table)]
    return pd.DataFrame(out).set_index("method") if out else pd.DataFrame()


def _table3(table: pd.DataFrame) -> pd.DataFrame:
    keep = [d for d, r in table.iterrows() if r["role"] in ("input", "baseline", "lidnet", "transfer")]
    return table.loc[keep, [*FEATURES, "psnr", "ssim", "rmse", "lesions"]]


def _table4(table: pd.DataFrame) -> pd.DataFrame:
    gan = [d for d, r in table.iterrows() if r["role"] == "gan"]
    if not gan:
        return pd.DataFrame()
    cnn = gan[0].replace(" (GAN variant)", "")
    rows = [d for d in (cnn, gan[0]) if d in table.index]
    return table.loc[rows, ["ap50", "ap75", *FEATURES, "psnr", "ssim", "rmse", "train_seconds"]]


def write_lidnet_results(ev: LidnetEvaluation, run_dir) -> list[Path]:
    """CSV files of the LIDnet tables in ``run_dir/results/lidnet/<analogue>/``."""
    folder = resolve(run_dir) / "results" / "lidnet" / ev.analogue
    out = []
    for name in ("scores", "table2", "table3", "table4"):
        out.append(atomic_write_text(folder / f"eval_{name}.csv", getattr(ev, name).to_csv()))
    return out
