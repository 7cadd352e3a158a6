"""Notebook 05's runs for one data set, their test scores and files (LIDnet sec. 4).

* :func:`study_configs`: the NDCT detector; each baseline denoiser with its own
  recipe and its LIDnet version (collaborative training, T1 taken from the NDCT
  detector, which is exactly the same state); the simultaneous ablation of Fig. 3
  and the GAN variant of Table 4 for one denoiser each.
* :func:`run_study`: trains them in that order (resuming any that was
  interrupted), with the NDCT detector as every denoiser's validation scorer.
* :func:`scores_table`: LIDnet sec. 4.1's protocol on the test split: the NDCT
  detector scores LDCT, NDCT and every denoiser's output (AP-50 / AP-75), beside
  PSNR on the cache window and the training cost.
* :func:`write_results`: ``run_dir/results/lidnet/<analogue>/{detection.csv,
  summary.json}`` for the evaluation notebook.
"""
from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ldct_nb.data.cache import CacheSplit
from ldct_nb.data.datasets import DetectionSlices
from ldct_nb.errors import ParameterError
from ldct_nb.eval.detection import detection_ap, predict
from ldct_nb.models.detector import load_detector
from ldct_nb.paths import atomic_write_json, atomic_write_text, resolve
from ldct_nb.train.lidnet import LidnetConfig, LidnetResult, load_lidnet_config, train_lidnet

__all__ = ["LIGHT_DETECTOR", "StudyRun", "ap_curves", "open_choices", "run_study", "scores_table", "study_configs", "write_results"]

LIGHT_DETECTOR: dict[str, Any] = dict(fpn_channels=64, representation_size=256, box_batch_size_per_image=128,
                                      proposals_per_image=300)
"""The CPU profile's detector sizes (torchvision's: FPN 256, box head 1024, 512 ROIs, 2000 / 1000 proposals)."""

LABELS = {"baseline": "{m}", "collaborative": "Ours-{m}", "simultaneous": "Ours-{m} (simultaneous)"}


@dataclass
class StudyRun:
    """One trained run of the study: its role, config, result and wall time (s)."""

    role: str
    config: LidnetConfig
    result: LidnetResult
    seconds: float
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _has_critic_width(method: str) -> bool:
    from ldct_nb.train.methods import MODULES

    return "critic_width" in inspect.signature(MODULES[method].build_method).parameters


def study_configs(analogue: str, *, methods: Sequence[str], plugins: Sequence[str] = (), simultaneous: str | None = None,
                  gan: str | None = None, common: Mapping[str, Any], baseline_steps: int,
                  model: Mapping[str, Mapping[str, Any]] | None = None, critic_width: int = 64,
                  perceptual: Mapping[str, Any] | None = None) -> dict[str, tuple[str, LidnetConfig]]:
    """Run name -> (role, config), the NDCT detector first. ``common``: LidnetConfig keys
    shared by every run (seed, batch_size, t1, t2, t3, max_rounds, detector, ...);
    ``model``: generator keywords per method; ``methods`` get a baseline and a LIDnet
    version, as do ``plugins`` (denoisers no LIDnet paper used, e.g. ESAU-Net)."""
    model = dict(model or {})
    names = list(dict.fromkeys([*methods, *plugins]))
    for extra in (simultaneous, gan):
        if extra and extra not in names:
            raise ParameterError(f"{extra!r} is used by an ablation but is not in methods or plugins {names}")
    base = {**common, "analogue": analogue}
    for key in ("kind", "method", "name", "model", "ndct_detector", "eval_detector"):
        base.pop(key, None)
    out: dict[str, tuple[str, LidnetConfig]] = {}
    det = load_lidnet_config({**base, "kind": "detector"})
    out[det.run_name] = ("detector", det)
    for m in names:
        opts = {"critic_width": critic_width} if _has_critic_width(m) else {}
        b = load_lidnet_config({**base, "kind": "baseline", "method": m, "model": dict(model.get(m, {})),
                                "steps": baseline_steps, "method_options": opts, "perceptual": dict(perceptual or {})})
        out[b.run_name] = ("baseline", b)
        c = load_lidnet_config({**base, "kind": "collaborative", "method": m, "model": dict(model.get(m, {}))})
        out[c.run_name] = ("lidnet", c)
    if simultaneous:
        s = load_lidnet_config({**base, "kind": "simultaneous", "method": simultaneous,
                                "model": dict(model.get(simultaneous, {}))})
        out[s.run_name] = ("simultaneous", s)
    if gan:
        g = load_lidnet_config({**base, "kind": "collaborative", "method": gan, "variant": "gan",
                                "critic_width": critic_width, "model": dict(model.get(gan, {}))})
        out[g.run_name] = ("gan", g)
    return out


def _label(role: str, cfg: LidnetConfig) -> str:
    if cfg.kind == "detector":
        return "NDCT detector"
    text = LABELS[cfg.kind].format(m=cfg.method)
    return text + (" (GAN variant)" if cfg.variant == "gan" else " (CNN variant)" if role == "gan" else "")


def run_study(configs: Mapping[str, tuple[str, LidnetConfig]], run_dir, *, data_dir=None,
              progress: bool = True) -> dict[str, StudyRun]:
    """Train every run of :func:`study_configs` in order (each resumes if interrupted);
    collaborative runs start from the NDCT detector's T1 state, and every run with
    a denoiser is validated by the NDCT detector too (``ndct_ap50``)."""
    runs: dict[str, StudyRun] = {}
    det_last = det_best = None
    for name, (role, cfg) in configs.items():
        if cfg.kind != "detector":
            if det_last is None:
                raise ParameterError("the NDCT detector must come first in the study")
            changes: dict[str, Any] = {"eval_detector": str(det_best)}
            if cfg.kind == "collaborative":
                changes["ndct_detector"] = str(det_last)
            cfg = cfg.replace(**changes)
        t0 = time.perf_counter()
        res = train_lidnet(cfg, run_dir, data_dir=data_dir, progress=progress)
        runs[name] = StudyRun(role, cfg, res, time.perf_counter() - t0, _label(role, cfg))
        if cfg.kind == "detector":
            det_last, det_best = res.last, res.best or res.last
    return runs


@torch.no_grad()
def _outputs(denoiser: torch.nn.Module, images: torch.Tensor, batch: int = 8) -> torch.Tensor:
    p = next(denoiser.parameters())
    return torch.cat([denoiser(images[i:i + batch].to(p.device)).float().cpu() for i in range(0, len(images), batch)])


def _psnr(out: torch.Tensor, ref: torch.Tensor) -> np.ndarray:
    mse = ((out - ref) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return (-10 * torch.log10(mse)).numpy()


def scores_table(runs: Mapping[str, StudyRun], split: CacheSplit, *, detector_path=None, checkpoint: str = "best",
               max_slices: int | None = None, device: str | torch.device = "cpu") -> tuple[pd.DataFrame, dict]:
    """LIDnet sec. 4.1 on ``split`` (the test split): the NDCT detector (its best
    checkpoint) scores LDCT, NDCT and every denoiser's output. Returns the table
    (AP-50, AP-75 in %, PSNR mean and std in dB on the cache window's [0, 1] scale,
    training seconds, steps) and the denoised test images per run."""
    from ldct_nb.train import load_denoiser

    if detector_path is None:
        det_runs = [r for r in runs.values() if r.config.kind == "detector"]
        if not det_runs:
            raise ParameterError("no NDCT detector among the runs: pass detector_path")
        detector_path = det_runs[0].result.best or det_runs[0].result.last
    detector = load_detector(detector_path, device=device)
    n = len(split) if max_slices is None else min(len(split), max_slices)
    ldct_ds, ndct_ds = DetectionSlices(split, source="ldct"), DetectionSlices(split, source="ndct")
    ldct = torch.stack([ldct_ds[i][0] for i in range(n)])
    ndct = torch.stack([ndct_ds[i][0] for i in range(n)])
    targets = [ndct_ds[i][1] for i in range(n)]
    rows, outputs = [], {}

    def score(label: str, role: str, images: torch.Tensor, run: StudyRun | None) -> None:
        ap = detection_ap(predict(detector, images), targets)
        p = _psnr(images, ndct)
        row = {"denoiser": label, "role": role, "AP-50 (%)": 100 * ap["ap50"], "AP-75 (%)": 100 * ap["ap75"],
               "PSNR (dB)": float(p.mean()) if role != "reference" else float("nan"),
               "PSNR std": float(p.std(ddof=1)) if role != "reference" and len(p) > 1 else float("nan")}
        if run is not None:
            sps = run.result.seconds_per_step
            row.update({"run": run.result.run_path.name if run.config.kind == "detector" else
                        run.result.run_path.parent.name, "steps": run.result.steps_done,
                        "training (s)": round(run.seconds, 1),
                        **{f"s/step {k}": round(v, 3) for k, v in sps.items()}})
        rows.append(row)

    score("LDCT", "input", ldct, None)
    score("NDCT", "reference", ndct, None)
    for name, run in runs.items():
        if run.config.kind == "detector":
            continue
        path = run.result.best if checkpoint == "best" and run.result.best else run.result.last
        out = _outputs(load_denoiser(path, device=device), ldct)
        outputs[name] = out
        score(run.label, run.role, out, run)
    return pd.DataFrame(rows).set_index("denoiser"), outputs


def ap_curves(runs: Mapping[str, StudyRun]) -> pd.DataFrame:
    """Validation AP-50 over training of every run (Fig. 3): one row per validation with
    ``step``, ``phase``, ``ap50`` (the run's own detector on its denoised validation
    images; the NDCT detector on NDCT for the detector run), ``ndct_ap50`` (the NDCT
    detector on the denoised images), ``val_psnr`` and the run's label and kind."""
    rows = []
    for name, run in runs.items():
        for v in run.result.validation:
            rows.append({"run": name, "label": run.label, "kind": run.config.kind, "role": run.role,
                         **{k: v.get(k) for k in ("step", "phase", "round", "ap50", "ndct_ap50", "val_psnr")}})
    return pd.DataFrame(rows)


def open_choices(cfg: LidnetConfig) -> pd.DataFrame:
    """The choices LIDnet leaves open, what the paper says, and this config's value."""
    det = {"backbone": "resnet50_fpn", **cfg.detector}
    opt = cfg.detector_optim_options
    rows = [
        ("detector", "Faster R-CNN, ResNet50 backbone, ImageNet-pretrained (sec. 4.2, appendix A)",
         f"torchvision Faster R-CNN with FPN, {det['backbone']}, random init (nothing downloaded); sizes "
         + ", ".join(f"{k} {v}" for k, v in cfg.detector.items() if k != "backbone")),
        ("BatchNorm of the detector", "not stated (torchvision freezes it when it loads ImageNet weights)",
         "trainable nn.BatchNorm2d (a detector trained from scratch needs it); fixed in T2, moving in T1 / T3, so T3 "
         "adapts its statistics to the denoised images"),
        ("one-channel input, normalisation", "not stated",
         "first convolution takes 1 channel; (HU - 0) / 1000; no resizing (min_size = max_size = image size)"),
        ("anchors", "not stated", "one size per FPN level, 8 x stride x image size / 512 (torchvision's at 512 px)"),
        ("detector optimiser", "Adam for all models (sec. 4.2), lr 5e-3",
         f"{opt['name']} lr {opt['lr']:g}" + (f", momentum {opt['momentum']:g}" if opt["name"] == "sgd" else "")
         + f", weight decay {opt['weight_decay']:g}, gradient norm clipped at {cfg.detector_grad_clip}"),
        ("learning-rate schedule", "not stated", "constant"),
        ("features T of the ROI loss", "the detector's backbone",
         f"FPN level {cfg.feature_level!r}, roi_align {cfg.roi_output_size} x {cfg.roi_output_size} bins, "
         "sampling ratio 2, aligned"),
        ("proposals of the ROI loss", "top-K by objectness on the denoised image, K = 5",
         f"the first K = {cfg.k} of the RPN's proposals after NMS (sorted by objectness), boxes detached"),
        ("expectation in eq. (4)", "E over (x, y), mean over K", "mean over each image's K, then over the batch"),
        ("reconstruction term, eq. (8)", "(1/N)||F(x) - y||_F^2 with N the batch size; MAE in appendix A",
         f"{cfg.reconstruction.upper()}, " + ("summed over each image's pixels and averaged over the batch, as eq. (8) "
         "is printed (a per-pixel mean would let lambda1 L_ROI outweigh it a hundredfold: a denoiser trained from "
         "scratch then never learns to reconstruct in short runs)" if cfg.reconstruction_reduction == "sum"
         else "averaged over pixels")),
        ("GAN variant, eq. (5)", "-E[D(G(x))] + lambda1 L_ROI + lambda2 L_det",
         f"as printed (pixel weight {cfg.gan_reconstruction_weight:g}); WGAN critic of WGAN-VGG, "
         f"{cfg.n_critic} critic steps per generator step, Adam (0.5, 0.9)"),
        ("denoiser optimiser", "Adam, lr 1e-4 (critic 4e-4)",
         f"Adam lr {cfg.generator_lr:g}, betas (0.9, 0.999) for the CNN variant; critic {cfg.critic_lr:g}"),
        ("frozen detector in T2", "'Freeze psi'",
         "requires_grad off, BatchNorm in eval mode (running statistics fixed), RPN / ROI heads in training mode "
         "so that they return L_det; gradients flow through it to the denoised image"),
        ("frozen denoiser in T3 / T1", "'Freeze Theta'", "eval mode, no gradient"),
        ("stopping rule", "'stopping criterion' (Algorithm 1)",
         f"at most {cfg.max_rounds} rounds; stop after {cfg.patience} rounds whose end-of-round validation "
         f"AP-50 does not beat the best by more than {cfg.min_delta:g}"),
        ("T1 of each LIDnet run", "T1 steps on NDCT",
         "taken from the NDCT detector (the same seed and settings give exactly the same state)"),
        ("checkpoint kept (best.pt)", "'until converged'",
         "best validation AP-50 of the training detector (collaborative, simultaneous), of the NDCT detector on "
         "NDCT (detector), best validation PSNR (baselines); scores use best.pt"),
        ("simultaneous baseline (Fig. 3)", "'optimized simultaneously'",
         "no T1; each step updates the denoiser (eq. 8, detector frozen) then the detector on that batch's denoised "
         "images; as many steps as a collaborative run with all its rounds"),
        ("batch, augmentation", "batch 8, whole 512 x 512 images",
         f"batch {cfg.batch_size}, whole images, paired horizontal flips of images and boxes"
         if cfg.hflip else f"batch {cfg.batch_size}, whole images, no augmentation"),
    ]
    return pd.DataFrame(rows, columns=["choice", "LIDnet says", "this run"])


def write_results(run_dir, analogue: str, table: pd.DataFrame, runs: Mapping[str, StudyRun],
                  detector_scores: Mapping[str, Any], choices: Mapping[str, str] | None = None) -> Path:
    """``run_dir/results/lidnet/<analogue>/detection.csv`` (the test table) and
    ``summary.json`` (the NDCT detector's scores, every run's summary and checkpoints,
    the choices the paper leaves open), written atomically; returns the folder."""
    folder = resolve(run_dir) / "results" / "lidnet" / analogue
    atomic_write_text(folder / "detection.csv", table.to_csv())
    atomic_write_json(folder / "summary.json", {
        "analogue": analogue,
        "ndct_detector": dict(detector_scores),
        "test_table": table.reset_index().to_dict(orient="records"),
        "runs": {name: {"role": r.role, "label": r.label, "seconds": r.seconds, **r.result.summary()}
                 for name, r in runs.items()},
        "choices": dict(choices or {}),
    })
    return folder
