"""The grid of ASCON's tables: which runs to train, and which table rows share a run.

* Table 1: U-Net, RED-CNN, WGAN-VGG, EDCNN, DU-GAN, CNCL, ESAU-Net, ASCON.
* Table 2 (loss ablation of ESAU-Net): L_MSE; L_MSE + L_perceptual; L_MSE + L_SSIM
  (= Table 1's ESAU-Net: the same loss, 10 (MSE + SSIM loss), and optimiser);
  + L_global; + L_local; + both (= Table 1's ASCON).
* Table S1: MAC-Net added to RED-CNN and to U-Net (their Table 1 runs beside).
* Table S2: joint instead of alternating optimisation; random instead of
  neighbouring positive matching; random instead of hard negative sampling
  (Table 1's ASCON beside).
* ``presets``: ASCON and ESAU-Net with the official code's preset beside the
  paper's (the two weight the MAC-Net terms against the pixel terms very
  differently; notebook 03's gradient table).

A run shared by several rows is trained once (its config is identical); the
rows point at its folder. :func:`table_grid` returns the runs and the rows.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from ldct_nb.errors import ParameterError
from ldct_nb.paths import atomic_write_text, resolve
from ldct_nb.train.config import TrainConfig, load_config
from ldct_nb.train.loop import TrainResult, checkpoint_dir, train

__all__ = ["HOME", "GridRow", "MODEL_SIZES", "TABLES", "rows_table", "run_grid", "table_grid"]

# (row label, run name, method, preset or None for the grid's, extra config)
_ROWS: dict[str, list[tuple[str, str, str, str | None, dict]]] = {
    "table1": [
        ("U-Net", "unet", "unet", "paper", {}),
        ("RED-CNN", "red_cnn", "red_cnn", "paper", {}),
        ("WGAN-VGG", "wgan_vgg", "wgan_vgg", "paper", {}),
        ("EDCNN", "edcnn", "edcnn", "paper", {}),
        ("DU-GAN", "du_gan", "du_gan", "paper", {}),
        ("CNCL", "cncl", "cncl", "paper", {}),
        ("ESAU-Net", "esau_net", "esau_net", None, {}),
        ("ASCON", "ascon", "ascon", None, {}),
    ],
    "table2": [
        ("L_MSE", "ascon_mse", "ascon", None, {"ablation": "mse"}),
        ("L_MSE + L_perceptual", "ascon_mse_perceptual", "ascon", None, {"ablation": "mse+perceptual"}),
        ("L_MSE + L_SSIM", "esau_net", "esau_net", None, {}),
        ("L_MSE + L_SSIM + L_global", "ascon_global", "ascon", None, {"ablation": "mse+ssim+global"}),
        ("L_MSE + L_SSIM + L_local", "ascon_local", "ascon", None, {"ablation": "mse+ssim+local"}),
        ("L_MSE + L_SSIM + L_global + L_local", "ascon", "ascon", None, {}),
    ],
    "tableS1": [
        ("RED-CNN", "red_cnn", "red_cnn", "paper", {}),
        ("RED-CNN + MAC-Net", "red_cnn_mac", "ascon", None, {"denoiser": "red_cnn"}),
        ("U-Net", "unet", "unet", "paper", {}),
        ("U-Net + MAC-Net", "unet_mac", "ascon", None, {"denoiser": "unet"}),
    ],
    "tableS2": [
        ("joint optimisation", "ascon_joint", "ascon", None, {"optimisation": "joint"}),
        ("random positive matching", "ascon_random_positives", "ascon", None, {"loss": {"positive_matching": "random"}}),
        ("random negative sampling", "ascon_random_negatives", "ascon", None, {"loss": {"negative_sampling": "random"}}),
        ("ASCON (alternating, neighbouring positives, hard negatives)", "ascon", "ascon", None, {}),
    ],
    "presets": [
        ("ESAU-Net, paper preset", "esau_net", "esau_net", "paper", {}),
        ("ESAU-Net, official preset", "esau_net_official", "esau_net", "official", {}),
        ("ASCON, paper preset", "ascon", "ascon", "paper", {}),
        ("ASCON, official preset", "ascon_official", "ascon", "official", {}),
    ],
}
TABLES: tuple[str, ...] = tuple(_ROWS)
HOME: dict[str, str] = {}
"""Run name -> the first table that lists it: its checkpoint folder is ``ckpt/<table>/<run>/seed<k>``."""
for _table, _rows in _ROWS.items():
    for _row in _rows:
        HOME.setdefault(_row[1], _table)

MODEL_SIZES: dict[str, dict[str, dict[str, Any]]] = {
    # the papers' widths: every network's default keywords
    "paper": {},
    # reduced widths for a laptop CPU (notebook 04's cpu profile)
    "small": {
        "esau_net": dict(stem=8, widths=[16, 32, 64], heads=[1, 2, 4], bottleneck_heads=4, bottleneck_hidden=128),
        "unet": dict(base=16, depth=3),
        "red_cnn": dict(channels=24),
        "edcnn": dict(sobel_ch=8, width=16),
        "wgan_vgg": dict(width=16),
        "du_gan": dict(channels=24),
        "cncl": dict(base=8, depth=3, fusion_width=16),
    },
    # smaller still, for the smoke profile
    "tiny": {
        "esau_net": dict(stem=4, widths=[8, 8, 16], heads=[1, 2, 2], bottleneck_heads=2, bottleneck_hidden=16),
        "unet": dict(base=4, depth=2),
        "red_cnn": dict(channels=4),
        "edcnn": dict(sobel_ch=4, width=4),
        "wgan_vgg": dict(width=4),
        "du_gan": dict(channels=4),
        "cncl": dict(base=4, depth=2, fusion_width=4),
    },
}
_MAC_HEADS = {  # MAC-Net head sizes that go with each model size (the paper's: 1024, 256, 256, 256)
    "paper": {},
    "small": dict(proj_hidden=256, proj_dim=64, local_hidden=64, local_dim=64),
    "tiny": dict(proj_hidden=32, proj_dim=16, local_hidden=16, local_dim=16),
}
_CRITICS = {  # critic sizes that go with each model size (build_method keywords)
    "paper": {},
    "small": {"wgan_vgg": dict(critic_width=8), "du_gan": dict(critic_width=8, critic_depth=2),
              "cncl": dict(critic_width=8)},
    "tiny": {"wgan_vgg": dict(critic_width=4), "du_gan": dict(critic_width=4, critic_depth=2),
             "cncl": dict(critic_width=4)},
}


@dataclass(frozen=True)
class GridRow:
    """One row of one table: its label and the run (config) it reports."""

    table: str
    label: str
    config: TrainConfig

    @property
    def run_name(self) -> str:
        return self.config.run_name


def table_grid(
    tables: Sequence[str] = TABLES,
    *,
    seeds: Sequence[int] = (0,),
    preset: str = "paper",
    model_size: str = "paper",
    lr: float | None = None,
    lr_per_run: dict[str, float] | None = None,
    mac_width: float = 1.0,
    sampling: str = "mayo2016",
    **common: Any,
) -> tuple[list[TrainConfig], list[GridRow]]:
    """The runs of ``tables`` (each trained once) and every table row.

    ``preset`` is ESAU-Net's / ASCON's (``paper`` or ``official``; the ``presets``
    table trains both). ``model_size``: :data:`MODEL_SIZES`. ``lr``: a generator
    learning rate for every run (short runs need larger rates than the papers',
    which are set for 100 epochs), or None for the recipes'; ``lr_per_run``: the
    exceptions, by run name or method name. ``common`` keys go to every :class:`TrainConfig` (steps, batch_size,
    patch_size, val_every, perceptual, ...).
    """
    unknown = [t for t in tables if t not in _ROWS]
    if unknown:
        raise ParameterError(f"unknown table(s) {unknown}; valid: {list(TABLES)}")
    if model_size not in MODEL_SIZES:
        raise ParameterError(f"model_size must be one of {list(MODEL_SIZES)}, got {model_size!r}")
    if not seeds:
        raise ParameterError("seeds must list at least one seed")
    sizes, critics = MODEL_SIZES[model_size], _CRITICS[model_size]
    runs: dict[tuple[str, int], TrainConfig] = {}
    rows: list[GridRow] = []
    for table in tables:
        for label, name, method, row_preset, extra in _ROWS[table]:
            for seed in seeds:
                key = (name, int(seed))
                if key not in runs:
                    rates = lr_per_run or {}
                    rate = rates.get(name, rates.get(method, lr))
                    runs[key] = _config(name, method, row_preset or preset, extra, seed, sizes, critics, rate,
                                        mac_width, _MAC_HEADS[model_size], sampling, common)
                rows.append(GridRow(table, label, runs[key]))
    return list(runs.values()), rows


def _config(name, method, preset, extra, seed, sizes, critics, lr, mac_width, mac_heads, sampling, common) -> TrainConfig:
    denoiser = extra.get("denoiser", "esau_net") if method == "ascon" else method
    cfg: dict[str, Any] = {**common, "method": method, "preset": preset, "name": name, "seed": int(seed),
                           "table": HOME[name], "model": dict(sizes.get(denoiser, {}))}
    if method == "ascon":
        cfg["ascon"] = {"mac_width": mac_width, "mac_heads": dict(mac_heads), "sampling": sampling,
                        **{k: v for k, v in extra.items() if k in ("denoiser", "ablation", "optimisation", "loss")}}
    else:
        cfg["method_options"] = dict(critics.get(method, {}))
    if lr is not None:
        cfg["lr"] = float(lr)
    return load_config(cfg)


def run_grid(
    runs: Iterable[TrainConfig],
    run_dir: str | os.PathLike[str],
    *,
    retrain: bool = False,
    launcher: str = "inprocess",
    nproc_per_node: int = 1,
    progress: bool = True,
) -> dict[tuple[str, int], TrainResult]:
    """Train every run (finished ones are reused unless ``retrain``).

    ``launcher="inprocess"`` trains in this process; ``"torchrun"`` starts
    ``python -m torch.distributed.run --nproc_per_node N -m ldct_nb.train`` for
    each run (its config written to ``<run folder>/requested.yaml``) and reads
    the result back from the checkpoint."""
    if launcher not in ("inprocess", "torchrun"):
        raise ParameterError(f"launcher must be 'inprocess' or 'torchrun', got {launcher!r}")
    if isinstance(nproc_per_node, bool) or not isinstance(nproc_per_node, int) or nproc_per_node < 1:
        raise ParameterError(f"nproc_per_node must be an int >= 1, got {nproc_per_node!r}")
    results = {}
    for cfg in runs:
        if launcher == "inprocess":
            results[(cfg.run_name, cfg.seed)] = train(cfg, run_dir, retrain=retrain, progress=progress)
            continue
        folder = checkpoint_dir(run_dir, cfg)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "requested.yaml"
        atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc_per_node),
               "-m", "ldct_nb.train", str(path), "--run-dir", str(resolve(run_dir))]
        if retrain:
            cmd.append("--retrain")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise ParameterError(f"torchrun training of {cfg.run_name} seed {cfg.seed} failed "
                                 f"(exit {done.returncode}):\n{done.stderr[-3000:]}")
        results[(cfg.run_name, cfg.seed)] = train(cfg, run_dir, progress=False)  # finished: reads the checkpoint back
    return results


def rows_table(rows: Sequence[GridRow], run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One dict per row: table, label, run, seed and its checkpoint paths (for the evaluation notebook)."""
    out = []
    for r in rows:
        folder = checkpoint_dir(run_dir, r.config)
        out.append({"table": r.table, "row": r.label, "run": r.run_name, "method": r.config.method,
                    "preset": r.config.preset, "seed": r.config.seed, "folder": str(folder),
                    "best": str(folder / "best.pt"), "last": str(folder / "last.pt")})
    return out
