"""The papers' tables from checkpoints: per-slice metrics, mean +- std, paired tests.

:func:`evaluate_rows` denoises the test split with every run of notebook 04's
summary (``run_dir/results/training.json``) and returns one row per (table
row, seed, slice) with PSNR, RMSE (scaled and HU), SSIM (scikit-image and
official forms); the LDCT input is a row of its own. :func:`summary_table`
gives mean +- std over slices (each slice averaged over seeds first), and
:func:`paired_test` the paired Wilcoxon signed-rank test of two rows over the
same slices with its effect size. A claim "A beats B" is made only with that
test.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ldct_nb.data.cache import CacheSplit
from ldct_nb.data.datasets import HUWindow
from ldct_nb.errors import ParameterError
from ldct_nb.eval.metrics import ASCON_WINDOW, slice_metrics

__all__ = ["LDCT_ROW", "METRICS", "denoise_split", "evaluate_rows", "format_table", "paired_test", "summary_table"]

LDCT_ROW = "LDCT"
METRICS = {"psnr": "max", "rmse": "min", "ssim": "max"}
"""The tables' metrics and which direction is better."""


@torch.no_grad()
def denoise_split(net: torch.nn.Module, split: CacheSplit, *, batch_size: int = 4,
                  max_slices: int | None = None) -> np.ndarray:
    """The denoiser's output on the split's LDCT slices, in HU (N x H x W), through
    the cache's window (the network sees the [0, 1] scale it was trained on)."""
    window = HUWindow(*split.hu_window)
    device = next(net.parameters()).device
    n = len(split) if max_slices is None else min(len(split), max_slices)
    out = []
    for start in range(0, n, batch_size):
        x = np.asarray(window.normalize(np.asarray(split.ldct[start:min(n, start + batch_size)])), np.float32)
        y = net(torch.from_numpy(x)[:, None].to(device)).float().cpu().numpy()[:, 0]
        out.append(window.denormalize(y))
    return np.concatenate(out)


def evaluate_rows(entries: Iterable[dict[str, Any]], split: CacheSplit, *, window=ASCON_WINDOW,
                  device: str | torch.device = "cpu", max_slices: int | None = None,
                  checkpoint: str = "best") -> pd.DataFrame:
    """Per-slice metrics of every entry (dicts with ``table``, ``row``, ``run``, ``seed``,
    ``best`` / ``last`` checkpoint paths, as in ``training.json``) and of the LDCT input
    (``row == "LDCT"``, table ``"input"``). A run shared by several rows is denoised once."""
    from ldct_nb.train.loop import load_denoiser

    n = len(split) if max_slices is None else min(len(split), max_slices)
    ndct = np.asarray(split.ndct[:n], np.float64)
    frames = [_frame(slice_metrics(np.asarray(split.ldct[:n], np.float64), ndct, window),
                     table="input", row=LDCT_ROW, run="ldct", seed=0)]
    cache: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    for e in entries:
        key = (e["run"], int(e["seed"]))
        if key not in cache:
            path = Path(e[checkpoint]) if Path(e[checkpoint]).is_file() else Path(e["last"])
            if not path.is_file():
                raise ParameterError(f"no checkpoint for run {e['run']} seed {e['seed']} at {path}: run notebook 04 first")
            net = load_denoiser(path, device=device)
            cache[key] = slice_metrics(denoise_split(net, split, max_slices=n), ndct, window)
        frames.append(_frame(cache[key], table=e["table"], row=e["row"], run=e["run"], seed=int(e["seed"])))
    return pd.concat(frames, ignore_index=True)


def _frame(metrics: dict[str, np.ndarray], **labels) -> pd.DataFrame:
    df = pd.DataFrame(metrics)
    df.insert(0, "slice", np.arange(len(df)))
    for k, v in reversed(list(labels.items())):
        df.insert(0, k, v)
    return df


def _per_slice(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows x slices of ``metric``, each slice averaged over seeds."""
    return df.groupby(["row", "slice"], sort=False)[metric].mean().unstack("slice")


def summary_table(df: pd.DataFrame, rows: Sequence[str] | None = None,
                  metrics: Sequence[str] = ("psnr", "rmse", "ssim")) -> pd.DataFrame:
    """Mean and std over the test slices (each slice averaged over seeds first) of
    ``metrics`` for ``rows`` (default: every row, in order of appearance), with the
    number of slices and seeds."""
    rows = list(dict.fromkeys(df["row"])) if rows is None else list(rows)
    missing = [r for r in rows if r not in set(df["row"])]
    if missing:
        raise ParameterError(f"rows {missing} are not in the evaluation; rows: {sorted(set(df['row']))}")
    out = pd.DataFrame(index=pd.Index(rows, name="row"))
    for m in metrics:
        per = _per_slice(df[df["row"].isin(rows)], m).reindex(rows)
        out[m] = per.mean(axis=1)
        out[f"{m}_std"] = per.std(axis=1, ddof=0)
    out["slices"] = [int(df[df["row"] == r]["slice"].nunique()) for r in rows]
    out["seeds"] = [int(df[df["row"] == r]["seed"].nunique()) for r in rows]
    return out


def paired_test(df: pd.DataFrame, row_a: str, row_b: str, metric: str = "psnr") -> dict[str, Any]:
    """Paired Wilcoxon signed-rank test of ``row_a`` against ``row_b`` over the same
    slices (each averaged over seeds), two-sided (scipy's ``wilcoxon``), with the
    median difference (a - b) and the matched-pairs rank-biserial correlation
    ``r = (W+ - W-) / (W+ + W-)`` as effect size (+1: a is larger on every slice)."""
    per = _per_slice(df, metric)
    for r in (row_a, row_b):
        if r not in per.index:
            raise ParameterError(f"row {r!r} is not in the evaluation; rows: {list(per.index)}")
    a, b = per.loc[row_a].to_numpy(float), per.loc[row_b].to_numpy(float)
    keep = ~(np.isnan(a) | np.isnan(b))
    d = a[keep] - b[keep]
    nonzero = d[d != 0]
    if len(nonzero) == 0:
        return {"a": row_a, "b": row_b, "metric": metric, "n": int(len(d)), "median_difference": 0.0,
                "p_value": 1.0, "rank_biserial": 0.0}
    ranks = stats.rankdata(np.abs(nonzero))
    w_plus, w_minus = ranks[nonzero > 0].sum(), ranks[nonzero < 0].sum()
    p = float(stats.wilcoxon(a[keep], b[keep]).pvalue) if len(nonzero) > 0 else 1.0
    return {"a": row_a, "b": row_b, "metric": metric, "n": int(len(d)), "median_difference": float(np.median(d)),
            "p_value": p, "rank_biserial": float((w_plus - w_minus) / (w_plus + w_minus))}


def format_table(summary: pd.DataFrame, *, scale: dict[str, float] | None = None,
                 digits: dict[str, int] | None = None, bold_best: bool = True,
                 exclude_from_best: Sequence[str] = (LDCT_ROW,)) -> pd.DataFrame:
    """``mean +- std`` strings per metric (ASCON's units by default: RMSE x 100, SSIM
    in %), the best row of each metric in bold (``**...**``) among the rows not in
    ``exclude_from_best``."""
    scale = {"psnr": 1.0, "rmse": 100.0, "ssim": 100.0, **(scale or {})}
    digits = {"psnr": 2, "rmse": 2, "ssim": 2, **(digits or {})}
    out = pd.DataFrame(index=summary.index)
    for m in [c for c in summary.columns if f"{c}_std" in summary.columns]:
        s, k = scale.get(m, 1.0), digits.get(m, 3)
        cells = [f"{summary.loc[r, m] * s:.{k}f} ± {summary.loc[r, f'{m}_std'] * s:.{k}f}" for r in summary.index]
        candidates = [r for r in summary.index if r not in exclude_from_best and not math.isnan(summary.loc[r, m])]
        if bold_best and candidates:
            pick = max if METRICS.get(m, "max") == "max" else min
            best = pick(candidates, key=lambda r: summary.loc[r, m])
            cells = [f"**{c}**" if r == best else c for r, c in zip(summary.index, cells)]
        out[m] = cells
    for extra in ("slices", "seeds"):
        if extra in summary.columns:
            out[extra] = summary[extra]
    return out
