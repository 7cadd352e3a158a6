"""Tables and figures of a trained grid (notebook 04): loss and validation curves, speed
and memory per run, example outputs, and the summary file the evaluation notebook reads."""
from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ldct_nb.paths import atomic_write_json, resolve
from ldct_nb.train.batches import BatchStream
from ldct_nb.train.grid import GridRow, rows_table
from ldct_nb.train.loop import TrainResult, load_denoiser

__all__ = ["curves", "data_rate", "example_outputs", "speed_table", "write_summary"]


def curves(results: Mapping[tuple[str, int], TrainResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long tables of the training loss (``total``, logged rows) and of the validation
    PSNR (with the LDCT input's), one row per (run, seed, step)."""
    train_rows, val_rows = [], []
    for (name, seed), res in results.items():
        for h in res.history:
            train_rows.append({"run": name, "seed": seed, "step": h["step"], "loss": h.get("total", np.nan)})
        for v in res.validation:
            val_rows.append({"run": name, "seed": seed, "step": v["step"], "val_psnr": v["val_psnr"],
                             "ldct_psnr": v["ldct_psnr"]})
    return pd.DataFrame(train_rows), pd.DataFrame(val_rows)


def speed_table(results: Mapping[tuple[str, int], TrainResult]) -> pd.DataFrame:
    """Seconds per step, images per second and activation memory of every run (the
    steps timed in the call that trained it; a reused run shows its stored figures)."""
    rows = []
    for (name, seed), res in results.items():
        summary = res.summary()
        rows.append({"run": name, "seed": seed, "method": res.config.method, "steps": res.steps_done,
                     "seconds_per_step": summary["seconds_per_step"], "images_per_second": summary["images_per_second"],
                     "activation_mb": summary["activation_mb"], "best_val_psnr": res.best_psnr})
    return pd.DataFrame(rows)


def data_rate(split, *, batch_size: int, patch_size: int | None, steps: int = 20, seed: int = 0) -> float:
    """Batches per second that :class:`~ldct_nb.train.batches.BatchStream` delivers."""
    stream = BatchStream(split, batch_size=batch_size, patch_size=patch_size, seed=seed)
    stream.batch(0)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        stream.batch(step)
    return steps / (time.perf_counter() - t0)


@torch.no_grad()
def example_outputs(rows: Sequence[GridRow], run_dir, split, index: int = 0, *, device="cpu") -> dict[str, np.ndarray]:
    """HU images of one slice of ``split``: NDCT, LDCT and the best checkpoint of every row's run."""
    from ldct_nb.data.datasets import HUWindow

    window = HUWindow(*split.hu_window)
    ldct = torch.from_numpy(np.asarray(window.normalize(np.asarray(split.ldct[index])), np.float32))[None, None]
    out = {"NDCT": np.asarray(split.ndct[index]), "LDCT": np.asarray(split.ldct[index])}
    for r in rows:
        table = rows_table([r], run_dir)[0]
        path = table["best"] if os.path.isfile(table["best"]) else table["last"]
        net = load_denoiser(path, device=device)
        out[r.label] = window.denormalize(net(ldct.to(net_device(net))).cpu().numpy()[0, 0])
    return out


def net_device(net: torch.nn.Module) -> torch.device:
    return next(net.parameters()).device


def write_summary(rows: Sequence[GridRow], results: Mapping[tuple[str, int], TrainResult], run_dir,
                  extra: dict[str, Any] | None = None) -> str:
    """``run_dir/results/training.json``: every table row with its run, checkpoints and
    figures (what notebook 06 evaluates)."""
    table = rows_table(rows, run_dir)
    for entry in table:
        res = results.get((entry["run"], entry["seed"]))
        if res is not None:
            entry.update({k: v for k, v in res.summary().items() if k not in ("last", "best", "table")})
    path = resolve(run_dir) / "results" / "training.json"
    atomic_write_json(path, {"rows": table, **(extra or {})})
    return str(path)
