"""LIDnet's collaborative training (Chen et al., ACM MM 2021, sec. 3.3, Algorithm 1).

One entry point, :func:`train_lidnet` (and ``python -m ldct_nb.train.lidnet
CONFIG.yaml --run-dir DIR``), for the four kinds of run notebook 05 needs
(:class:`LidnetConfig` ``kind``):

``detector``
    The NDCT detector: ``t1`` steps of Faster R-CNN on NDCT images (Algorithm
    1, lines 5-9, with no denoiser). It is LIDnet's "pre-trained detection
    network" that scores every denoiser (sec. 4.1), and its state after
    ``t1`` steps is exactly the T1 phase of a collaborative run with the same
    seed and detector settings (``ndct_detector=`` lets that run start from it).
``baseline``
    A denoiser trained by its own recipe (:func:`ldct_nb.train.methods.build_method`,
    the ``lidnet`` preset of WGAN-VGG, CPCE, MAP-NN, SSMS and Res-HLF: appendix
    A's weights and WGAN-GP) on whole images, as the paper trains its baselines.
``collaborative``
    Algorithm 1. T1: ``t1`` detector steps on NDCT, the denoiser frozen. Then
    rounds of T2: ``t2`` denoiser steps with the detector frozen
    (:func:`ldct_nb.losses.detection.frozen_detector`: no gradient to its weights,
    BatchNorm statistics fixed, RPN / ROI heads unchanged) on eq. (8) (``variant:
    cnn``: reconstruction + lambda1 ROI perceptual + lambda2 detection loss) or
    eqs. (5) and (7) (``variant: gan``: WGAN-GP critic steps, then the generator
    on -E[D(G(x))] + lambda1 ROI + lambda2 detection); and T3: ``t3`` detector
    steps on the denoised images, the denoiser frozen (eval mode, no gradient).
    Rounds stop at ``max_rounds`` or when the validation AP-50 at the end of a
    round has not improved by more than ``min_delta`` for ``patience`` rounds.
``simultaneous``
    The baseline of Fig. 3: no T1, both networks updated at every step (the
    denoiser on eq. 8 with the detector frozen for its update, then the
    detector on the denoised batch). ``steps`` defaults to ``t1 + max_rounds (t2 + t3)``,
    the length of a collaborative run that uses all its rounds.

Any registered denoiser plugs in (``method``: a name of
:func:`ldct_nb.models.available`; its ``lidnet`` preset when it has one, else
``paper``), ESAU-Net included. The shared loop's pieces are reused: per-step
seeding (``step_seed``: every random draw of step s is a function of (seed, s,
rank)), deterministic batches (:class:`~ldct_nb.train.batches.BatchStream`'s
epoch permutations; paired horizontal flips of images and boxes),
:func:`~ldct_nb.train.steps.update` (zero, backward, average over processes,
clip, step), atomic checkpoints in the one checkpoint format
(:func:`~ldct_nb.train.checkpoint.save_checkpoint`), and the CSV / JSON logs.
A run killed at any step, mid-phase included, and started again with the same
command ends with the weights of an uninterrupted run.

Checkpoints: ``run_dir/ckpt/lidnet/<analogue>/<name>/seed<k>/{last,best}.pt``
(the NDCT detector: ``run_dir/ckpt/lidnet/<analogue>/detector_ndct/{last,best}.pt``),
holding ``networks["generator"]`` with :func:`~ldct_nb.train.loop.denoiser_record`
(so :func:`ldct_nb.train.load_denoiser` loads them) and ``networks["detector"]``
with :func:`~ldct_nb.models.detector.detector_record` (so
:func:`ldct_nb.models.detector.load_detector` loads it). Beside them:
``metrics.csv`` (losses per phase), ``validation.csv`` (PSNR, AP-50 / AP-75),
``metrics.json`` (summary: steps per phase, rounds, seconds per step of each
phase), ``proposals.json`` (top-K proposals on validation slices over training)
and ``config.json``.

Choices the paper leaves open (each a config key; the defaults are stated in
notebook 05): the feature level of the ROI loss (``feature_level`` "0", the
finest FPN level), per-pixel means in the reconstruction term (``reconstruction``
"mae", appendix A; "mse" is eq. 8 as printed), the GAN variant without a pixel
term (eq. 5 as printed; ``gan_reconstruction_weight`` adds one), the detector's
optimiser (``detector_optim``: Adam at 5e-3 as sec. 4.2 / appendix A say;
SGD is offered), gradient clipping of the detector at norm 10, constant learning
rates, the stopping rule, and ``best.pt`` chosen by validation AP-50 of the
training detector (collaborative, simultaneous), by NDCT-validation AP-50
(detector) or by validation PSNR (baseline).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ldct_nb.data.cache import CacheSplit, open_split
from ldct_nb.data.datasets import DetectionSlices
from ldct_nb.env import seed_everything, select_device
from ldct_nb.errors import ParameterError
from ldct_nb.eval.detection import detection_ap, predict
from ldct_nb.losses.adversarial import wgan_critic_loss
from ldct_nb.losses.ascon_loss import frozen
from ldct_nb.losses.detection import detection_forward, frozen_detector
from ldct_nb.losses.roi_perceptual import detector_roi_loss
from ldct_nb.models import available, build, presets
from ldct_nb.models.baselines.common import WGANCritic
from ldct_nb.models.detector import build_detector, detector_record, load_detector, top_proposals
from ldct_nb.paths import atomic_write_json, resolve
from ldct_nb.progress import progress as progress_bar
from ldct_nb.train.batches import BatchStream
from ldct_nb.train.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from ldct_nb.train.config import read_config
from ldct_nb.train.distributed import DistInfo, barrier, broadcast_module, init_distributed
from ldct_nb.train.loop import step_seed, write_logs, denoiser_record
from ldct_nb.train.recipes import OptimSettings
from ldct_nb.train.steps import SpecStep, StepOptions, update

__all__ = ["KINDS", "LidnetConfig", "LidnetResult", "LidnetSteps", "reconstruction_loss", "analogue_data_dir", "lidnet_dir", "load_lidnet_config",
           "phase_at", "total_steps", "train_lidnet"]

KINDS = ("detector", "baseline", "collaborative", "simultaneous")
VARIANTS = ("cnn", "gan")
DETECTOR_OPTIM_DEFAULTS: dict[str, Any] = {"name": "adam", "lr": 5e-3, "momentum": 0.9, "weight_decay": 0.0}
PERCEPTUAL_DEFAULTS: dict[str, Any] = {"kind": "ndct_feature_net", "steps": 200, "width": 16, "weights": None}
RUNTIME_KEYS = ("val_every", "checkpoint_every", "log_every", "device", "name", "ndct_detector", "eval_detector",
                "snapshot_slices")
"""Keys whose change does not change the trained weights (a resumed run may differ in them)."""
FEATURE_LEVELS = ("0", "1", "2", "3", "pool", "roi_pool")


@dataclass(frozen=True)
class LidnetConfig:
    """One run of :func:`train_lidnet` (see the module docstring); YAML / dict keys are the fields."""

    kind: str = "collaborative"
    method: str | None = None
    analogue: str = "synthetic_l_ct_a"
    name: str | None = None
    variant: str = "cnn"
    preset: str | None = None
    model: dict = field(default_factory=dict)
    method_options: dict = field(default_factory=dict)
    seed: int = 0
    batch_size: int = 8
    t1: int = 4000
    t2: int = 4000
    t3: int = 2000
    max_rounds: int = 5
    patience: int | None = 2
    min_delta: float = 0.0
    steps: int | None = None
    k: int = 5
    lambda_roi: float = 5.0
    lambda_det: float = 5.0
    feature_level: str = "0"
    roi_output_size: int = 7
    reconstruction: str = "mae"
    reconstruction_reduction: str = "sum"
    gan_reconstruction_weight: float = 0.0
    generator_lr: float = 1e-4
    critic_lr: float = 4e-4
    gp_weight: float = 10.0
    n_critic: int = 4
    critic_width: int = 64
    detector: dict = field(default_factory=dict)
    detector_optim: dict = field(default_factory=dict)
    detector_grad_clip: float | None = 10.0
    grad_clip: float | None = None
    hflip: bool = True
    select_by: str | None = None
    val_every: int = 100
    val_slices: int | None = None
    snapshot_slices: int = 2
    checkpoint_every: int = 100
    log_every: int = 10
    device: str = "auto"
    train_split: str = "train"
    val_split: str = "val"
    perceptual: dict = field(default_factory=dict)
    ndct_detector: str | None = None
    eval_detector: str | None = None

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------ derived
    @property
    def run_name(self) -> str:
        if self.name:
            return self.name
        if self.kind == "detector":
            return "detector_ndct"
        if self.kind == "baseline":
            return str(self.method)
        gan = "_gan" if self.variant == "gan" else ""
        return f"lidnet_{self.method}{gan}" + ("_simultaneous" if self.kind == "simultaneous" else "")

    @property
    def denoiser_preset(self) -> str:
        """The generator's preset: ``preset``, else ``lidnet`` when the model has it, else ``paper``."""
        if self.preset:
            return self.preset
        return "lidnet" if "lidnet" in presets(self.method) else "paper"

    @property
    def detector_optim_options(self) -> dict[str, Any]:
        return {**DETECTOR_OPTIM_DEFAULTS, **self.detector_optim}

    @property
    def perceptual_options(self) -> dict[str, Any]:
        return {**PERCEPTUAL_DEFAULTS, **self.perceptual}

    @property
    def best_metric(self) -> str:
        if self.select_by:
            return self.select_by
        return {"detector": "ap50", "baseline": "psnr"}.get(self.kind, "ap50")

    @property
    def has_denoiser(self) -> bool:
        return self.kind != "detector"

    @property
    def has_detector(self) -> bool:
        return self.kind != "baseline"

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def fingerprint(self) -> str:
        """sha256 of what decides the trained weights (everything but :data:`RUNTIME_KEYS`)."""
        d = {k: v for k, v in self.to_dict().items() if k not in RUNTIME_KEYS}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def t1_fingerprint(self) -> str:
        """sha256 of what decides the detector after T1 (shared by a detector run and collaborative runs)."""
        keys = ("analogue", "seed", "batch_size", "t1", "detector", "detector_optim", "detector_grad_clip", "hflip",
                "train_split")
        d = {k: v for k, v in self.to_dict().items() if k in keys}
        d["detector_optim"] = self.detector_optim_options
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def replace(self, **changes) -> LidnetConfig:
        return dataclasses.replace(self, **changes)


def _int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParameterError(f"{name} must be an int >= {minimum}, got {value!r}")


def _num(name: str, value, *, positive: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (positive and value == 0):
        raise ParameterError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}"
                             f"{' or null' if allow_none else ''}, got {value!r}")


def _validate(c: LidnetConfig) -> None:
    if c.kind not in KINDS:
        raise ParameterError(f"kind must be one of {list(KINDS)}, got {c.kind!r}")
    if c.kind == "detector":
        if c.method is not None:
            raise ParameterError("a detector run trains no denoiser: leave method empty (null)")
    elif not isinstance(c.method, str) or c.method not in available():
        raise ParameterError(f"method must be a registered denoiser {available()} for a {c.kind} run, got {c.method!r}")
    if c.preset is not None and c.method is not None and c.preset not in presets(c.method):
        raise ParameterError(f"unknown preset {c.preset!r} for {c.method!r}; valid presets: {presets(c.method)}")
    for key in ("analogue", "train_split", "val_split", "device", "feature_level", "reconstruction", "variant",
                "reconstruction_reduction"):
        if not isinstance(getattr(c, key), str) or not getattr(c, key):
            raise ParameterError(f"{key} must be a non-empty string, got {getattr(c, key)!r}")
    for key in ("analogue", "name"):
        v = getattr(c, key)
        if v is not None and (not isinstance(v, str) or not v or "/" in v or v.startswith(".")):
            raise ParameterError(f"{key} must be a folder name (no '/'), got {v!r}")
    if c.variant not in VARIANTS:
        raise ParameterError(f"variant must be one of {list(VARIANTS)}, got {c.variant!r}")
    if c.reconstruction not in ("mae", "mse"):
        raise ParameterError(f"reconstruction must be 'mae' (appendix A) or 'mse' (eq. 8 as printed), got {c.reconstruction!r}")
    if c.reconstruction_reduction not in ("sum", "mean"):
        raise ParameterError("reconstruction_reduction must be 'sum' (eq. 8: over each image's pixels, mean over the "
                             f"batch) or 'mean' (per pixel), got {c.reconstruction_reduction!r}")
    if c.feature_level not in FEATURE_LEVELS:
        raise ParameterError(f"feature_level must be one of {list(FEATURE_LEVELS)}, got {c.feature_level!r}")
    _int("seed", c.seed, 0)
    _int("batch_size", c.batch_size, 1)
    _int("t1", c.t1, 1 if c.kind == "detector" else 0)
    _int("t2", c.t2, 1)
    _int("t3", c.t3, 1)
    _int("max_rounds", c.max_rounds, 1)
    if c.patience is not None:
        _int("patience", c.patience, 1)
    _num("min_delta", c.min_delta)
    if c.steps is not None:
        _int("steps", c.steps, 1)
    if c.kind == "baseline" and c.steps is None:
        raise ParameterError("a baseline run needs steps (the number of denoiser steps)")
    _int("k", c.k, 1)
    _int("roi_output_size", c.roi_output_size, 1)
    _int("n_critic", c.n_critic, 1)
    _int("critic_width", c.critic_width, 1)
    for key in ("val_every", "checkpoint_every", "log_every"):
        _int(key, getattr(c, key), 1)
    _int("snapshot_slices", c.snapshot_slices, 0)
    if c.val_slices is not None:
        _int("val_slices", c.val_slices, 1)
    for key in ("lambda_roi", "lambda_det", "gp_weight", "gan_reconstruction_weight"):
        _num(key, getattr(c, key))
    for key in ("generator_lr", "critic_lr"):
        _num(key, getattr(c, key), positive=True)
    for key in ("detector_grad_clip", "grad_clip"):
        _num(key, getattr(c, key), positive=True, allow_none=True)
    if not isinstance(c.hflip, bool):
        raise ParameterError(f"hflip must be true or false, got {c.hflip!r}")
    for key in ("model", "method_options", "detector", "detector_optim", "perceptual"):
        if not isinstance(getattr(c, key), dict):
            raise ParameterError(f"{key} must be a mapping, got {getattr(c, key)!r}")
    bad = sorted(set(c.detector) & {"image_size", "hu_window", "weights", "num_classes"})
    if bad:
        raise ParameterError(f"detector: {bad} are set from the data (image size, HU window) and the task "
                             "(2 classes); remove them")
    unknown = sorted(set(c.detector_optim) - set(DETECTOR_OPTIM_DEFAULTS))
    if unknown:
        raise ParameterError(f"unknown detector_optim key(s) {unknown}; valid: {sorted(DETECTOR_OPTIM_DEFAULTS)}")
    o = c.detector_optim_options
    if o["name"] not in ("adam", "sgd"):
        raise ParameterError(f"detector_optim.name must be 'adam' or 'sgd', got {o['name']!r}")
    _num("detector_optim.lr", o["lr"], positive=True)
    _num("detector_optim.momentum", o["momentum"])
    _num("detector_optim.weight_decay", o["weight_decay"])
    unknown = sorted(set(c.perceptual) - set(PERCEPTUAL_DEFAULTS))
    if unknown:
        raise ParameterError(f"unknown perceptual key(s) {unknown}; valid: {sorted(PERCEPTUAL_DEFAULTS)}")
    if c.select_by is not None and c.select_by not in ("psnr", "ap50", "ndct_ap50"):
        raise ParameterError(f"select_by must be 'psnr', 'ap50', 'ndct_ap50' or null, got {c.select_by!r}")
    if c.kind == "detector" and c.select_by not in (None, "ap50"):
        raise ParameterError("a detector run is selected by its validation AP-50 (select_by: ap50 or null)")
    if c.kind == "baseline" and c.select_by == "ap50":
        raise ParameterError("a baseline run has no training detector: select_by must be 'psnr' or 'ndct_ap50'")
    if c.select_by == "ndct_ap50" and not c.eval_detector:
        raise ParameterError("select_by 'ndct_ap50' needs eval_detector (the NDCT detector's checkpoint)")
    if c.val_split in ("test",) or c.train_split == "test":
        raise ParameterError("train_split and val_split must not be the test split: it is kept for evaluation")
    if c.val_split == c.train_split:
        raise ParameterError(f"val_split must differ from train_split, both are {c.val_split!r}")
    if c.ndct_detector is not None and c.kind != "collaborative":
        raise ParameterError("ndct_detector (T1 taken from the NDCT detector) applies to collaborative runs only")


def load_lidnet_config(config: LidnetConfig | Mapping[str, Any] | str | os.PathLike[str]) -> LidnetConfig:
    """A :class:`LidnetConfig` from itself, a dict or a YAML file (refusing unknown keys, naming them)."""
    if isinstance(config, LidnetConfig):
        return config
    values, source = read_config(config, LidnetConfig, "LIDnet")
    for key in ("min_delta", "generator_lr", "critic_lr", "gp_weight", "lambda_roi", "lambda_det",
                "gan_reconstruction_weight", "detector_grad_clip", "grad_clip"):
        if isinstance(values.get(key), str):  # YAML 1.1 reads 1e-4 as a string
            try:
                values[key] = float(values[key])
            except ValueError:
                raise ParameterError(f"{source}: {key} must be a number, got {values[key]!r}") from None
    for key in ("model", "method_options", "detector", "detector_optim", "perceptual"):
        if key in values and values[key] is None:
            values[key] = {}
    if isinstance(values.get("detector_optim"), dict):
        values["detector_optim"] = {k: float(v) if k != "name" and isinstance(v, str) else v
                                    for k, v in values["detector_optim"].items()}
    try:
        return LidnetConfig(**values)
    except ParameterError as exc:
        raise ParameterError(f"{source}: {exc}") from None


# ----------------------------------------------------------------------------- phases


def total_steps(cfg: LidnetConfig) -> int:
    """The most steps the run can take (a collaborative run may stop earlier on a plateau)."""
    if cfg.kind == "detector":
        return cfg.t1
    if cfg.kind == "collaborative":
        return cfg.t1 + cfg.max_rounds * (cfg.t2 + cfg.t3)
    if cfg.steps is not None:
        return cfg.steps
    return cfg.t1 + cfg.max_rounds * (cfg.t2 + cfg.t3)


def phase_at(cfg: LidnetConfig, step: int) -> tuple[str, int | None]:
    """``(phase, round)`` of global step ``step`` (0-based): ``T1``, ``T2``, ``T3`` (with
    the round), ``baseline`` or ``simultaneous``."""
    if cfg.kind == "detector":
        return "T1", None
    if cfg.kind == "baseline":
        return "baseline", None
    if cfg.kind == "simultaneous":
        return "simultaneous", None
    if step < cfg.t1:
        return "T1", None
    r, offset = divmod(step - cfg.t1, cfg.t2 + cfg.t3)
    return ("T2" if offset < cfg.t2 else "T3"), r


def _phase_key(phase: str, rnd: int | None) -> str:
    return phase if rnd is None else f"{phase}/{rnd}"


# ----------------------------------------------------------------------------- folders and data


def lidnet_dir(run_dir: str | os.PathLike[str], cfg: LidnetConfig) -> Path:
    """``run_dir/ckpt/lidnet/<analogue>/<name>/seed<k>`` (the detector: ``.../detector_ndct``)."""
    base = resolve(run_dir) / "ckpt" / "lidnet" / cfg.analogue / cfg.run_name
    return base if cfg.kind == "detector" else base / f"seed{cfg.seed}"


def analogue_data_dir(run_dir: str | os.PathLike[str], analogue: str) -> Path:
    """The run folder whose ``data/`` holds the cache of ``analogue``: ``run_dir`` itself
    when notebook 01 cached that data set there (the real PE-CT / L-CT profiles),
    else ``run_dir/analogues/<analogue>`` (where notebook 05 builds a synthetic
    analogue)."""
    run = resolve(run_dir)
    meta = run / "data" / "train" / "meta.json"
    if meta.is_file():
        try:
            if json.loads(meta.read_text(encoding="utf-8")).get("dataset") == analogue:
                return run
        except (OSError, ValueError):
            pass
    return run / "analogues" / analogue


def _detection_items(split: CacheSplit, hflip: bool, seed: int):
    return (DetectionSlices(split, source="ldct", hflip=hflip, seed=seed),
            DetectionSlices(split, source="ndct", hflip=hflip, seed=seed))


class DetectionBatches:
    """Batches of (LDCT, NDCT, targets) that are a pure function of the step: the
    epoch permutations of :class:`~ldct_nb.train.batches.BatchStream` (this
    process's share of the global batch) and paired horizontal flips of both
    images and the boxes, drawn from (seed, epoch, index)."""

    def __init__(self, split: CacheSplit, *, batch_size: int, seed: int, hflip: bool, rank: int = 0, world_size: int = 1):
        self.stream = BatchStream(split, batch_size=batch_size, patch_size=None, seed=seed, augment=False,
                                  rank=rank, world_size=world_size)
        self.ldct, self.ndct = _detection_items(split, hflip, seed)

    def batch(self, step: int, device: torch.device):
        ldct, ndct, targets = [], [], []
        for epoch, index in self.stream.indices(step):
            self.ldct.set_epoch(epoch)
            self.ndct.set_epoch(epoch)
            x, t = self.ldct[index]
            y, _ = self.ndct[index]
            ldct.append(x)
            ndct.append(y)
            targets.append({"boxes": t["boxes"].to(device), "labels": t["labels"].to(device)})
        return torch.stack(ldct).to(device), torch.stack(ndct).to(device), targets


def _validation_data(split: CacheSplit, max_slices: int | None):
    ldct_ds, ndct_ds = _detection_items(split, False, 0)
    n = len(split) if max_slices is None else min(len(split), max_slices)
    if n < 1:
        raise ParameterError(f"the validation split {split.path} holds no slices")
    ldct = torch.stack([ldct_ds[i][0] for i in range(n)])
    ndct = torch.stack([ndct_ds[i][0] for i in range(n)])
    targets = [ndct_ds[i][1] for i in range(n)]
    return ldct, ndct, [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]


# ----------------------------------------------------------------------------- the run


@dataclass
class LidnetResult:
    """What a run produced: folder, checkpoints, logs, steps per phase, speed."""

    config: LidnetConfig
    run_path: Path
    last: Path
    best: Path | None
    steps_done: int
    resumed_from: int
    phase_counts: dict[str, int]
    rounds: list[dict[str, Any]]
    stopped_by: str | None
    best_value: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    seconds_per_step: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (the ``metrics.json`` of the run)."""
        c = self.config
        return {
            "kind": c.kind, "method": c.method, "name": c.run_name, "analogue": c.analogue, "variant": c.variant,
            "seed": c.seed, "steps": self.steps_done, "phase_steps": self.phase_counts, "rounds": self.rounds,
            "stopped_by": self.stopped_by, "select_by": c.best_metric, "best_value": self.best_value,
            "last": str(self.last), "best": str(self.best) if self.best else None,
            "seconds_per_step": self.seconds_per_step, "train_seconds": self.train_seconds,
            "fingerprint": c.fingerprint(),
        }

    def __repr__(self) -> str:
        best = f"{self.config.best_metric} {self.best_value:.4g}" if self.best_value is not None else "n/a"
        return (f"LidnetResult({self.config.kind} {self.config.run_name} seed {self.config.seed}: "
                f"{self.steps_done} steps {self.phase_counts}, best {best}, {self.run_path})")


def _make_detector_optimizer(cfg: LidnetConfig, params) -> torch.optim.Optimizer:
    o = cfg.detector_optim_options
    if o["name"] == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"])
    return torch.optim.Adam(params, lr=o["lr"], weight_decay=o["weight_decay"])


class LidnetSteps:
    """The networks, optimisers and step functions of one LIDnet run (no data, no files).

    Built from a config, the image size and the HU window of the [0, 1] scale:
    the detector (seeded with ``seed``), the denoiser (``seed + 1``) and the
    critic of the GAN variant (``seed + 2``), so a detector run and a
    collaborative run of the same seed start from the same detector.
    ``step(phase, ldct, ndct, targets)`` takes one step of a phase (``T1``,
    ``T2``, ``T3``, ``baseline``, ``simultaneous``) and returns its losses.
    A baseline with a perceptual loss needs ``data_dir`` and ``train_split``
    (its NDCT feature network is trained on them)."""

    def __init__(self, cfg: LidnetConfig, *, image_size: int, hu_window=(-1000.0, 2000.0),
                 device: str | torch.device = "cpu", world_size: int = 1, data_dir: Path | None = None,
                 train_split: CacheSplit | None = None):
        device = torch.device(device) if isinstance(device, str) else device
        self.cfg, self.device = cfg, device
        self.opts = StepOptions(device=device, grad_clip=cfg.grad_clip, world_size=world_size)
        self.det_opts = StepOptions(device=device, grad_clip=cfg.detector_grad_clip, world_size=world_size)
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.detector = self.generator = self.critic = None
        self.spec_step: SpecStep | None = None
        if cfg.has_detector:
            torch.manual_seed(cfg.seed)
            try:
                self.detector = build_detector(num_classes=2, image_size=int(image_size), hu_window=tuple(hu_window),
                                               **cfg.detector).to(device)
            except TypeError as exc:
                raise ParameterError(f"detector: bad build_detector keyword ({exc})") from None
            self.networks["detector"] = self.detector
            self.optimizers["detector"] = _make_detector_optimizer(cfg, self.detector.parameters())
        if cfg.kind == "baseline":
            self._build_baseline(data_dir, train_split)
        elif cfg.has_denoiser:
            torch.manual_seed(cfg.seed + 1)
            self.generator = build(cfg.method, cfg.denoiser_preset, **cfg.model).to(device)
            betas = (0.5, 0.9) if cfg.variant == "gan" else (0.9, 0.999)
            self.networks["generator"] = self.generator
            self.optimizers["generator"] = OptimSettings("adam", cfg.generator_lr, betas).make(self.generator.parameters())
            if cfg.variant == "gan":
                torch.manual_seed(cfg.seed + 2)
                self.critic = WGANCritic(cfg.critic_width).to(device)
                self.networks["critic"] = self.critic
                self.optimizers["critic"] = OptimSettings("adam", cfg.critic_lr, (0.5, 0.9)).make(self.critic.parameters())

    def _build_baseline(self, data_dir: Path | None, train_split: CacheSplit | None) -> None:
        from ldct_nb.train.config import TrainConfig
        from ldct_nb.train.loop import needs_perceptual, perceptual_extractor
        from ldct_nb.train.methods import build_method

        cfg = self.cfg
        tc = TrainConfig(method=cfg.method, preset=cfg.denoiser_preset, seed=cfg.seed, perceptual=cfg.perceptual,
                         train_split=cfg.train_split, val_split=cfg.val_split, patch_size=None)
        kwargs = {**cfg.method_options, **cfg.model}
        if needs_perceptual(tc):
            if train_split is None:
                raise ParameterError(f"{cfg.method} ({cfg.denoiser_preset}) has a perceptual loss: its feature network "
                                     "is trained on the training split, so pass data_dir and train_split")
            kwargs["feature_extractor"] = perceptual_extractor(tc, data_dir, train_split)
        torch.manual_seed(cfg.seed + 1)
        self.spec_step = SpecStep(build_method(cfg.method, cfg.denoiser_preset, **kwargs), self.opts,
                                  generator_lr=cfg.generator_lr)
        self.generator = self.spec_step.denoiser
        self.networks.update(self.spec_step.networks)
        self.optimizers.update(self.spec_step.optimizers)

    # ------------------------------------------------------------------ steps
    def detector_step(self, images: torch.Tensor, targets) -> dict[str, float]:
        """T1 / T3: one Faster R-CNN step on ``images`` (NDCT or denoised, no gradient to them)."""
        det = self.detector
        det.train()
        losses, *_ = detection_forward(det, list(images), targets)
        loss = sum(losses.values())
        norm = update(self.optimizers["detector"], loss, list(det.parameters()), self.det_opts)
        out = {f"det_{k}": float(v.detach()) for k, v in losses.items()}
        out["det_total"] = float(loss.detach())
        if norm is not None:
            out["det_grad_norm"] = norm
        return out

    def denoise_frozen(self, ldct: torch.Tensor) -> torch.Tensor:
        """The frozen denoiser's output (eval mode, no gradient): T3's input."""
        self.generator.eval()
        with torch.no_grad():
            return self.generator(ldct)

    def _lesion_terms(self, out: torch.Tensor, ndct: torch.Tensor, targets) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """ROI perceptual loss (eq. 4) and detection loss (eq. 6) of the denoised batch, the
        detector frozen by the caller. The top-K proposals are the first K of the RPN's
        (sorted by objectness) on the denoised images."""
        det, cfg = self.detector, self.cfg
        losses, image_list, feats, proposals = detection_forward(det, list(out), targets)
        with torch.no_grad():
            ndct_list, _ = det.transform(list(ndct))
            feats_ndct = det.backbone(ndct_list.tensors)
        boxes = [p[: cfg.k].detach() for p in proposals]
        roi = detector_roi_loss(det, image_list, feats, feats_ndct, boxes, level=cfg.feature_level,
                                output_size=cfg.roi_output_size)
        det_loss = sum(losses.values())
        parts = {"roi_perceptual": float(roi.detach()), "detection": float(det_loss.detach()),
                 **{f"det_{k}": float(v.detach()) for k, v in losses.items()}}
        return roi, det_loss, parts

    def denoiser_step(self, ldct: torch.Tensor, ndct: torch.Tensor, targets) -> tuple[dict[str, float], torch.Tensor]:
        """T2 (and the first half of a simultaneous step): eq. (8) or eqs. (5) and (7), the
        detector frozen; returns the parts and the denoised batch (detached)."""
        cfg, g = self.cfg, self.generator
        parts: dict[str, float] = {}
        g.train()
        g_params = list(g.parameters())
        if cfg.variant == "gan":
            c_params = list(self.critic.parameters())
            for _ in range(cfg.n_critic):
                with torch.no_grad():
                    fake = g(ldct)
                c_loss, c_parts = wgan_critic_loss(self.critic, ndct, fake, cfg.gp_weight)
                update(self.optimizers["critic"], c_loss, c_params, self.opts)
            parts.update({f"critic_{k}": v for k, v in c_parts.items()})
        with frozen_detector(self.detector):
            out = g(ldct)
            roi, det_loss, lesion = self._lesion_terms(out, ndct, targets)
            pixel = reconstruction_loss(out, ndct, cfg.reconstruction, cfg.reconstruction_reduction)
            if cfg.variant == "gan":
                with frozen(c_params):
                    adv = -self.critic(out).mean()
                first = adv + cfg.gan_reconstruction_weight * pixel
                parts["adversarial"] = float(adv.detach())
            else:
                first = pixel
            loss = first + cfg.lambda_roi * roi + cfg.lambda_det * det_loss
            update(self.optimizers["generator"], loss, g_params, self.opts)
        parts.update({"pixel": float(pixel.detach()), **lesion, "total": float(loss.detach())})
        return parts, out.detach()

    def baseline_step(self, ldct: torch.Tensor, ndct: torch.Tensor) -> dict[str, float]:
        self.generator.train()
        return self.spec_step(ldct, ndct)

    def step(self, phase: str, ldct, ndct, targets) -> dict[str, float]:
        if phase == "T1":
            return self.detector_step(ndct, targets)
        if phase == "T2":
            return self.denoiser_step(ldct, ndct, targets)[0]
        if phase == "T3":
            return self.detector_step(self.denoise_frozen(ldct), targets)
        if phase == "baseline":
            return self.baseline_step(ldct, ndct)
        parts, out = self.denoiser_step(ldct, ndct, targets)  # simultaneous
        return {**parts, **self.detector_step(out, targets)}


def reconstruction_loss(out: torch.Tensor, ndct: torch.Tensor, kind: str = "mae", reduction: str = "sum") -> torch.Tensor:
    """The first term of eq. (8). ``kind``: ``mae`` (appendix A) or ``mse`` (eq. 8 as
    printed). ``reduction``: ``sum`` is eq. (8)'s ``1/N sum_i ||F(x_i) - y_i||`` with N the
    batch size (a sum over each image's pixels, a mean over the batch), which weighs the
    reconstruction against lambda1 L_ROI (a mean over w h d, eq. 4) as the paper writes it;
    ``mean`` averages over the pixels too (then the ROI and detection terms dominate)."""
    err = (out - ndct).abs() if kind == "mae" else (out - ndct).pow(2)
    per_image = err.flatten(1).sum(1) if reduction == "sum" else err.flatten(1).mean(1)
    return per_image.mean()


def _psnr(out: torch.Tensor, ref: torch.Tensor) -> list[float]:
    mse = ((out.float() - ref.float()) ** 2).flatten(1).mean(1)
    return (-10 * torch.log10(mse.clamp_min(1e-12))).tolist()


@torch.no_grad()
def _validation_row(run: LidnetSteps, val, eval_det: nn.Module | None, device: torch.device) -> dict[str, float]:
    ldct, ndct, targets = val
    row: dict[str, float] = {}
    images = ndct
    if run.generator is not None:
        was = run.generator.training
        run.generator.eval()
        images = torch.cat([run.generator(ldct[i:i + 4].to(device)).cpu() for i in range(0, len(ldct), 4)])
        run.generator.train(was)
        row.update({"val_psnr": float(np.mean(_psnr(images, ndct))), "ldct_psnr": float(np.mean(_psnr(ldct, ndct)))})
    if run.detector is not None:
        ap = detection_ap(predict(run.detector, images), targets)
        row.update({"ap50": ap["ap50"], "ap75": ap["ap75"]})
    if eval_det is not None and run.generator is not None:
        ap = detection_ap(predict(eval_det, images), targets)
        row.update({"ndct_ap50": ap["ap50"], "ndct_ap75": ap["ap75"]})
    return row


@torch.no_grad()
def _snapshot(run: LidnetSteps, val, n: int, step: int, phase: str, rnd: int | None, device) -> dict[str, Any] | None:
    """Top-K proposals of the training detector on the first ``n`` validation slices, on
    the LDCT and (when there is a denoiser) on the denoised image (Fig. 4)."""
    if run.detector is None or n < 1:
        return None
    ldct = val[0][:n].to(device)
    snap: dict[str, Any] = {"step": step, "phase": phase, "round": rnd}
    props = top_proposals(run.detector, ldct, k=run.cfg.k)
    snap["ldct"] = [{"boxes": b.cpu().tolist(), "scores": s.cpu().tolist()} for b, s in props]
    if run.generator is not None:
        out = run.denoise_frozen(ldct)
        props = top_proposals(run.detector, out, k=run.cfg.k, check_range=False)
        snap["denoised"] = [{"boxes": b.cpu().tolist(), "scores": s.cpu().tolist()} for b, s in props]
        snap["denoised_images"] = out[:, 0].detach().to("cpu", torch.float16)
    return snap


def _state(run: LidnetSteps, cfg: LidnetConfig, step: int, extra: dict[str, Any], *, with_optimizers: bool) -> dict[str, Any]:
    state = {
        "config": cfg.to_dict(), "fingerprint": cfg.fingerprint(), "t1_fingerprint": cfg.t1_fingerprint(),
        "kind": "lidnet", "step": step,
        "networks": {k: m.state_dict() for k, m in run.networks.items()},
        **extra,
    }
    if with_optimizers:
        state["optimizers"] = {k: o.state_dict() for k, o in run.optimizers.items()}
        state["rng"] = rng_state()
    if run.generator is not None:
        state.update(denoiser_record(cfg.method, cfg.denoiser_preset, cfg.model))
    if run.detector is not None:
        state.update(detector_record(run.detector))
    return state


def _check_resumable(blob: dict[str, Any], cfg: LidnetConfig, path: Path) -> None:
    try:
        saved = load_lidnet_config(blob["config"])
    except (KeyError, ParameterError) as exc:
        raise ParameterError(f"checkpoint {path} holds no valid LIDnet config ({exc}); remove it or use another "
                             "run_dir") from exc
    if saved.fingerprint() != cfg.fingerprint():
        a, b = saved.to_dict(), cfg.to_dict()
        diff = [k for k in a if k not in RUNTIME_KEYS and a[k] != b[k]]
        raise ParameterError(f"checkpoint {path} was written by another LIDnet config; keys that differ: {diff}. "
                             "Resume with the same config, pass retrain=True to start over, or use another name.")


def _take_t1(run: LidnetSteps, cfg: LidnetConfig, path: str, data_fp: str) -> list[dict[str, Any]]:
    """Load the NDCT detector's state after T1 into a collaborative run (identical to running T1 here)."""
    blob = load_checkpoint(resolve(path))
    try:
        other = load_lidnet_config(blob["config"])
    except (KeyError, ParameterError) as exc:
        raise ParameterError(f"ndct_detector {path!r} is not a LIDnet detector checkpoint ({exc})") from exc
    if other.kind != "detector":
        raise ParameterError(f"ndct_detector {path!r} holds a {other.kind} run, expected a detector run")
    if int(blob.get("step", -1)) != cfg.t1 or "optimizers" not in blob:
        raise ParameterError(f"ndct_detector {path!r} is at step {blob.get('step')}, expected its last.pt after "
                             f"t1 = {cfg.t1} steps")
    if blob.get("t1_fingerprint") != cfg.t1_fingerprint() or blob.get("data_fingerprint") != data_fp:
        a, b = other.to_dict(), cfg.to_dict()
        keys = [k for k in ("analogue", "seed", "batch_size", "t1", "detector", "detector_optim",
                            "detector_grad_clip", "hflip", "train_split") if a[k] != b[k]]
        raise ParameterError(f"ndct_detector {path!r} was trained with other T1 settings or data (keys that differ: "
                             f"{keys or ['the data cache']}); train T1 in this run (ndct_detector: null) or retrain it")
    run.detector.load_state_dict(blob["networks"]["detector"])
    run.optimizers["detector"].load_state_dict(blob["optimizers"]["detector"])
    return [dict(r) for r in blob.get("history", [])]


def train_lidnet(config: LidnetConfig | Mapping[str, Any] | str | os.PathLike[str], run_dir: str | os.PathLike[str],
                 *, data_dir: str | os.PathLike[str] | None = None, retrain: bool = False, progress: bool = True,
                 stop_after: int | None = None) -> LidnetResult:
    """Train one LIDnet run (see the module docstring) and return a :class:`LidnetResult`.

    ``data_dir``: the run folder whose ``data/`` holds the analogue's cache
    (default :func:`analogue_data_dir`). Resumes from ``last.pt`` when the same
    config was interrupted (a checkpoint of another config is refused naming the
    keys); ``retrain`` starts over; ``stop_after`` ends the call after that many
    steps (the run stays resumable)."""
    cfg = load_lidnet_config(config)
    dist_info: DistInfo = init_distributed("cuda" if cfg.device.startswith("cuda") or
                                           (cfg.device == "auto" and torch.cuda.is_available()) else "cpu")
    device = select_device(f"cuda:{dist_info.local_rank}" if dist_info.active and torch.cuda.is_available()
                           and cfg.device != "cpu" else cfg.device)
    seed_everything(cfg.seed)
    data_root = resolve(data_dir) if data_dir is not None else analogue_data_dir(run_dir, cfg.analogue)
    if not (data_root / "data" / cfg.train_split).is_dir():
        raise ParameterError(f"no cached split {cfg.train_split!r} of {cfg.analogue} in {data_root / 'data'}: build it "
                             "first (notebook 05 prepares synthetic analogues; notebook 01 caches real ones)")
    train_split = open_split(data_root, cfg.train_split)
    val_split = open_split(data_root, cfg.val_split)
    if cfg.has_detector and not any(len(b) for b in train_split.boxes):
        raise ParameterError(f"the training split {train_split.path} holds no lesion box: a detector cannot learn")
    if cfg.best_metric in ("ap50", "ndct_ap50") and not any(len(b) for b in val_split.boxes):
        raise ParameterError(f"the validation split {val_split.path} holds no lesion box: AP-50 cannot select "
                             "the best checkpoint (select_by: psnr)")
    data_fp = str(train_split.meta.get("fingerprint", ""))
    folder = lidnet_dir(run_dir, cfg)
    last_path, best_path = folder / "last.pt", folder / "best.pt"
    run = LidnetSteps(cfg, image_size=int(train_split.ndct.shape[1]), hu_window=train_split.hu_window, device=device,
                      world_size=dist_info.world_size, data_dir=data_root, train_split=train_split)
    for module in run.networks.values():
        broadcast_module(module)
    eval_det = load_detector(resolve(cfg.eval_detector), device=device) if cfg.eval_detector else None
    batches = DetectionBatches(train_split, batch_size=cfg.batch_size, seed=cfg.seed, hflip=cfg.hflip,
                               rank=dist_info.rank, world_size=dist_info.world_size)
    val = _validation_data(val_split, cfg.val_slices)
    s: dict[str, Any] = {"history": [], "validation": [], "window": [], "phase_counts": {}, "rounds": [],
                         "best_value": None, "best_round_ap": None, "since_best": 0, "stopped_by": None,
                         "timing": {}, "snapshots": [], "t1_from": None, "data_fingerprint": data_fp}
    start = 0
    if last_path.is_file() and not retrain:
        blob = load_checkpoint(last_path, map_location=device)
        _check_resumable(blob, cfg, last_path)
        if blob.get("data_fingerprint") != data_fp:
            raise ParameterError(f"checkpoint {last_path} was trained on another cache of {cfg.analogue} "
                                 f"({blob.get('data_fingerprint')} vs {data_fp}); retrain or restore the data")
        for name, module in run.networks.items():
            module.load_state_dict(blob["networks"][name])
        for name, opt in run.optimizers.items():
            opt.load_state_dict(blob["optimizers"][name])
        restore_rng_state(blob["rng"])
        start = int(blob["step"])
        s.update({k: blob[k] for k in s if k in blob})
    elif cfg.kind == "collaborative" and cfg.ndct_detector and cfg.t1 > 0:
        s["history"] = _take_t1(run, cfg, cfg.ndct_detector, data_fp)
        s["phase_counts"] = {"T1": cfg.t1}
        s["t1_from"] = str(resolve(cfg.ndct_detector))
        start = cfg.t1
    resumed_from = start
    folder.mkdir(parents=True, exist_ok=True)
    if dist_info.is_main:
        atomic_write_json(folder / "config.json", cfg.to_dict())
    total = total_steps(cfg)
    end = total if stop_after is None else min(total, start + int(stop_after))
    if s["t1_from"] and start == cfg.t1 and not s["validation"]:
        _after_validation(run, cfg, s, val, eval_det, device, start, "T1", None, folder, dist_info.is_main,
                          best_path, snapshot=True)
    bar = progress_bar(total=total, initial=start, desc=f"{cfg.run_name} seed {cfg.seed}",
                       disable=not (progress and dist_info.is_main))
    first_of_call = True
    step = start
    while step < end and not s["stopped_by"]:
        phase, rnd = phase_at(cfg, step)
        ldct, ndct, targets = batches.batch(step, device)
        torch.manual_seed(step_seed(cfg.seed, step, dist_info.rank) ^ 0x5DEECE66D)
        t0 = time.perf_counter()
        parts = run.step(phase, ldct, ndct, targets)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        if not first_of_call:  # the first step of a call includes warm-up
            tt = s["timing"].setdefault(phase, [0.0, 0])
            tt[0] += dt
            tt[1] += 1
        first_of_call = False
        key = _phase_key(phase, rnd)
        s["phase_counts"][key] = s["phase_counts"].get(key, 0) + 1
        s["window"].append({**parts, "seconds": dt})
        done = step + 1
        phase_ends = done == total or phase_at(cfg, done) != (phase, rnd)
        if done % cfg.log_every == 0 or phase_ends:
            w = s["window"]
            keys = list(dict.fromkeys(k for r in w for k in r))
            row = {"step": done, "phase": phase, "round": rnd,
                   **{k: float(np.mean([r[k] for r in w if k in r])) for k in keys}}
            s["history"].append(row)
            s["window"] = []
            bar.set_postfix(phase=key, loss=f"{row.get('total', row.get('det_total', float('nan'))):.4g}",
                            refresh=False)
        if done % cfg.val_every == 0 or phase_ends:
            _after_validation(run, cfg, s, val, eval_det, device, done, phase, rnd, folder, dist_info.is_main,
                              best_path, snapshot=phase_ends)
            if cfg.kind == "collaborative" and phase == "T3" and phase_ends:
                _round_end(cfg, s, rnd, done)
        if cfg.kind == "collaborative" and done >= total and not s["stopped_by"]:
            s["stopped_by"] = "max_rounds"
        if done % cfg.checkpoint_every == 0 or phase_ends or done == end or s["stopped_by"]:
            if dist_info.is_main:
                save_checkpoint(last_path, _state(run, cfg, done, s, with_optimizers=True))
                _write_all(folder, cfg, s, done, resumed_from)
            barrier()
        bar.update(1)
        step = done
    bar.close()
    return _result(cfg, folder, step, resumed_from, s)


def _after_validation(run, cfg, s, val, eval_det, device, done, phase, rnd, folder, is_main, best_path, *,
                      snapshot: bool) -> None:
    row = {"step": done, "phase": phase, "round": rnd, **_validation_row(run, val, eval_det, device)}
    key = {"psnr": "val_psnr", "ap50": "ap50", "ndct_ap50": "ndct_ap50"}[cfg.best_metric]
    value = row.get(key)
    improved = value is not None and not math.isnan(value) and (s["best_value"] is None or value > s["best_value"])
    if improved:
        s["best_value"] = float(value)
    row["best_value"] = s["best_value"]
    s["validation"].append(row)
    snap = _snapshot(run, val, cfg.snapshot_slices, done, phase, rnd, device) if snapshot else None
    if snap is not None:
        s["snapshots"].append(snap)
    if improved and is_main:
        save_checkpoint(best_path, _state(run, cfg, done, {k: s[k] for k in ("history", "validation", "phase_counts",
                                                                            "rounds", "best_value", "data_fingerprint")},
                                          with_optimizers=False))


def _round_end(cfg: LidnetConfig, s: dict[str, Any], rnd: int, done: int) -> None:
    """Record the round's validation AP-50 and decide whether to stop (max rounds or plateau)."""
    ap = s["validation"][-1].get("ap50", math.nan)
    if not math.isnan(ap) and (s["best_round_ap"] is None or ap > s["best_round_ap"] + cfg.min_delta):
        s["best_round_ap"], s["since_best"] = float(ap), 0
    else:
        s["since_best"] += 1
    s["rounds"].append({"round": rnd, "step": done, "ap50": ap, "rounds_without_gain": s["since_best"]})
    if rnd + 1 >= cfg.max_rounds:
        s["stopped_by"] = "max_rounds"
    elif cfg.patience is not None and s["since_best"] >= cfg.patience:
        s["stopped_by"] = "plateau"


def _seconds(s: dict[str, Any]) -> dict[str, float]:
    return {k: v[0] / v[1] for k, v in s["timing"].items() if v[1]}


def _train_seconds(s: dict[str, Any]) -> float:
    """Training time estimated as seconds per step of each phase (timed steps) times its steps
    (T1 taken from the NDCT detector is not counted: it was not trained here)."""
    total = 0.0
    for phase, per in _seconds(s).items():
        n = sum(c for key, c in s["phase_counts"].items() if key.split("/")[0] == phase)
        if phase == "T1" and s.get("t1_from"):
            n = 0
        total += per * n
    return total


def _result(cfg, folder, done, resumed_from, s) -> LidnetResult:
    return LidnetResult(cfg, folder, folder / "last.pt", folder / "best.pt" if (folder / "best.pt").is_file() else None,
                        done, resumed_from, dict(s["phase_counts"]), list(s["rounds"]), s["stopped_by"],
                        s["best_value"], list(s["history"]), list(s["validation"]), _seconds(s), _train_seconds(s))


def _write_all(folder: Path, cfg: LidnetConfig, s: dict[str, Any], done: int, resumed_from: int) -> None:
    summary = _result(cfg, folder, done, resumed_from, s).summary()
    summary["t1_from"] = s["t1_from"]
    write_logs(folder, s["history"], s["validation"], summary)
    snaps = [{k: v for k, v in snap.items() if k != "denoised_images"} for snap in s["snapshots"]]
    atomic_write_json(folder / "proposals.json", {"k": cfg.k, "snapshots": snaps})


def main(argv: list[str] | None = None) -> int:
    """``python -m ldct_nb.train.lidnet CONFIG.yaml --run-dir DIR [--data-dir DIR] [--retrain]``: one LIDnet run.

    Exit status 2 for a bad config or data (the message names the key or file), 0 when done;
    the run's summary is printed as JSON."""
    import argparse

    from ldct_nb.train.distributed import run_cli

    ap = argparse.ArgumentParser(prog="python -m ldct_nb.train.lidnet", description=main.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", help="LIDnet config (YAML); see ldct_nb.train.lidnet.LidnetConfig")
    ap.add_argument("--run-dir", default="runs/cpu", help="run folder (checkpoints under ckpt/lidnet; default runs/cpu)")
    ap.add_argument("--data-dir", default=None, help="run folder holding the analogue's data cache "
                    "(default: the run folder if it caches that data set, else RUN_DIR/analogues/<analogue>)")
    ap.add_argument("--retrain", action="store_true", help="start over even if a checkpoint exists")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    return run_cli(lambda: train_lidnet(args.config, args.run_dir, data_dir=args.data_dir, retrain=args.retrain,
                                        progress=not args.no_progress))


if __name__ == "__main__":
    raise SystemExit(main())
