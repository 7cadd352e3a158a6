"""The one training loop of every method: :func:`train`.

For a :class:`~ldct_nb.train.config.TrainConfig` and a run folder holding the
data cache (notebook 01), :func:`train`

* builds the method's step (:class:`~ldct_nb.train.steps.SpecStep` or
  :class:`~ldct_nb.train.ascon.AsconStep`) from the seed;
* resumes from ``last.pt`` when the same config was interrupted (a checkpoint of
  another method or config is refused, naming the keys that differ);
* takes ``steps`` steps on deterministic batches
  (:class:`~ldct_nb.train.batches.BatchStream`), re-seeding torch from
  ``(seed, step, rank)`` at every step so that every random draw of a step
  (ASCON's samples, WGAN-GP's interpolation, DU-GAN's CutMix) is a function of
  the step: a run killed at any moment and started again with the same command
  ends with bit-identical weights on CPU;
* sets the learning rates by the schedule (cosine to ``lr_floor``), logs the
  losses, validates on the validation split (PSNR on the [0, 1] scale of the
  cache's HU window) every ``val_every`` steps, keeps ``best.pt`` (best
  validation PSNR) and ``last.pt`` (every ``checkpoint_every`` steps and at the
  end), both written atomically;
* writes ``metrics.csv`` (steps) and ``validation.csv`` and ``metrics.json``
  next to the checkpoints, from the state the checkpoint holds.

Checkpoints live at ``run_dir/ckpt/<table>/<name>/seed<k>/{last,best}.pt``.
Under ``torchrun`` (several processes) the global batch is split across the
processes and gradients are averaged (:mod:`ldct_nb.train.distributed`); rank 0
writes the files.
"""
from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ldct_nb.data.cache import open_split
from ldct_nb.env import seed_everything, select_device
from ldct_nb.errors import ParameterError
from ldct_nb.paths import atomic_write_json, atomic_write_text, resolve
from ldct_nb.progress import progress as progress_bar
from ldct_nb.train.batches import BatchStream, validation_batches
from ldct_nb.train.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from ldct_nb.train.config import TrainConfig, load_config
from ldct_nb.train.distributed import DistInfo, barrier, broadcast_module, init_distributed
from ldct_nb.train.steps import SpecStep, StepOptions, set_learning_rates

__all__ = ["TrainResult", "build_step", "checkpoint_dir", "denoiser_record", "load_denoiser", "make_step", "train", "validate"]


@dataclass
class TrainResult:
    """What a run produced: its folder, checkpoints, logs and speed."""

    config: TrainConfig
    run_path: Path
    last: Path
    best: Path | None
    steps_done: int
    resumed_from: int
    best_psnr: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    validation: list[dict[str, float]] = field(default_factory=list)
    seconds_per_step: float | None = None
    images_per_second: float | None = None
    activation_mb: float | None = None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (the ``metrics.json`` of the run)."""
        return {
            "method": self.config.method, "name": self.config.run_name, "table": self.config.table,
            "preset": self.config.preset, "seed": self.config.seed, "steps": self.steps_done,
            "best_psnr": self.best_psnr, "last": str(self.last), "best": str(self.best) if self.best else None,
            "seconds_per_step": self.seconds_per_step, "images_per_second": self.images_per_second,
            "activation_mb": self.activation_mb, "fingerprint": self.config.fingerprint(),
        }

    def __repr__(self) -> str:
        psnr = f"{self.best_psnr:.2f} dB" if self.best_psnr is not None else "n/a"
        return (f"TrainResult({self.config.run_name} seed {self.config.seed}: {self.steps_done} steps, "
                f"best validation PSNR {psnr}, {self.run_path})")


def checkpoint_dir(run_dir: str | Path, config: TrainConfig) -> Path:
    """``run_dir/ckpt/<table>/<name>/seed<k>``."""
    return resolve(run_dir) / "ckpt" / config.table / config.run_name / f"seed{config.seed}"


# ----------------------------------------------------------------------------- building


def needs_perceptual(config: TrainConfig) -> bool:
    """Whether the run's loss has a perceptual term (and so needs a feature extractor)."""
    from ldct_nb.losses.ascon_loss import ABLATIONS
    from ldct_nb.train.methods import PERCEPTUAL

    if config.is_ascon:
        return "perceptual" in ABLATIONS[config.ascon_options["ablation"]]
    return config.method in PERCEPTUAL or (config.method == "map_nn" and config.preset == "lidnet")


def perceptual_extractor(config: TrainConfig, run_dir: str | Path | None, train_split=None) -> nn.Module:
    """The feature extractor of a perceptual loss.

    ``kind: vgg``: VGG-19 from the weights file you give. ``kind:
    ndct_feature_net``: the in-project NDCT feature network, trained once on the
    training split's NDCT slices and cached at
    ``run_dir/ckpt/feature_net/<settings>.pt`` (reused by every run with the same
    settings)."""
    from ldct_nb.models.feature_net import VGGFeatures, load_feature_net, save_feature_net

    opts = config.perceptual_options
    if opts["kind"] == "vgg":
        return VGGFeatures(opts["weights"])
    from ldct_nb.train.feature_net import train_feature_net

    steps, width = int(opts["steps"]), int(opts["width"])
    path = None
    if run_dir is not None:
        path = resolve(run_dir) / "ckpt" / "feature_net" / f"w{width}-s{steps}-seed{config.seed}-{config.train_split}.pt"
        if path.is_file():
            return load_feature_net(path)
    if train_split is None:
        raise ParameterError("a perceptual loss with kind 'ndct_feature_net' needs the training split to train it on")
    patch = min(64, *train_split.ndct.shape[1:]) // 4 * 4
    net, _ = train_feature_net(train_split, steps=steps, width=width, patch_size=patch, seed=config.seed)
    if path is not None:
        save_feature_net(net, path)
    return net


def build_step(config: TrainConfig, *, device: torch.device, world_size: int = 1,
               perceptual_net: nn.Module | None = None):
    """The step object of a config (networks, optimisers), seeded with ``config.seed``."""
    from ldct_nb.train.ascon import build_ascon
    from ldct_nb.train.methods import build_method

    opts = StepOptions(device=device, amp=config.amp, grad_clip=config.grad_clip, world_size=world_size)
    torch.manual_seed(config.seed)
    if config.is_ascon:
        a = config.ascon_options
        step = build_ascon(config.preset, denoiser=a["denoiser"], ablation=a["ablation"], sampling=a["sampling"],
                           mac_width=float(a["mac_width"]), mac_heads=a["mac_heads"], optimisation=a["optimisation"],
                           loss=a["loss"],
                           model=config.model, perceptual_net=perceptual_net, generator_lr=config.lr, opts=opts)
    else:
        kwargs = {**config.method_options, **config.model}
        if perceptual_net is not None:
            kwargs["feature_extractor"] = perceptual_net
        step = SpecStep(build_method(config.method, config.preset, **kwargs), opts, generator_lr=config.lr)
    if config.compile:  # in place: the recipes' closures call the module itself
        step.denoiser.compile()
    return step


def make_step(method: str, preset: str = "paper", *, device: str | torch.device = "cpu", seed: int = 0,
              feature_extractor: nn.Module | None = None, ascon: Mapping[str, Any] | None = None,
              amp: bool = False, grad_clip: float | None = None, **model_kwargs):
    """A callable ``step(ldct, ndct) -> dict of losses`` doing one complete
    optimisation step of ``method`` (every network and optimiser it updates, the
    EMA included) on N x 1 x H x W tensors on the [0, 1] scale.

    ``method`` is a registered name (:data:`ldct_nb.train.methods.METHODS`) or
    ``"ascon"`` (options in ``ascon``: denoiser, ablation, sampling, mac_width,
    optimisation, loss). ``model_kwargs`` go to the generator. Methods with a
    perceptual loss need ``feature_extractor``. The returned object also has
    ``networks``, ``optimizers`` and ``denoiser`` attributes.
    """
    cfg = load_config({"method": method, "preset": preset, "seed": seed, "model": dict(model_kwargs),
                       "ascon": dict(ascon or {}), "amp": amp, "grad_clip": grad_clip})
    if needs_perceptual(cfg) and feature_extractor is None:
        raise ParameterError(f"{method} ({preset}) has a perceptual loss: pass feature_extractor= "
                             "(ldct_nb.models.feature_net.VGGFeatures or a trained NDCT feature network)")
    dev = select_device(device)
    return build_step(cfg, device=dev, perceptual_net=feature_extractor)


# ----------------------------------------------------------------------------- validation


@torch.no_grad()
def validate(denoiser: nn.Module, split, *, device: torch.device, max_slices: int | None = None) -> dict[str, float]:
    """Mean PSNR (dB) and RMSE of the denoiser on whole validation slices, on the
    [0, 1] scale of the cache's HU window (data range 1; predictions not clipped,
    as the ASCON code does), and the same for the LDCT input."""
    was_training = denoiser.training
    denoiser.eval()
    psnr, rmse, psnr_in = [], [], []
    for ldct, ndct in validation_batches(split, max_slices=max_slices):
        ldct, ndct = ldct.to(device), ndct.to(device)
        out = denoiser(ldct).float()
        mse = ((out - ndct) ** 2).flatten(1).mean(1)
        mse_in = ((ldct - ndct) ** 2).flatten(1).mean(1)
        psnr += (-10 * torch.log10(mse.clamp_min(1e-12))).tolist()
        rmse += mse.sqrt().tolist()
        psnr_in += (-10 * torch.log10(mse_in.clamp_min(1e-12))).tolist()
    denoiser.train(was_training)
    return {"val_psnr": float(np.mean(psnr)), "val_rmse": float(np.mean(rmse)), "ldct_psnr": float(np.mean(psnr_in))}


# ----------------------------------------------------------------------------- state


def _state(step_obj, step: int, config: TrainConfig, history, validation, best_psnr, window=(), timing=None) -> dict[str, Any]:
    return {
        "config": config.to_dict(),
        "fingerprint": config.fingerprint(),
        "step": step,
        "networks": {k: m.state_dict() for k, m in step_obj.networks.items()},
        "optimizers": {k: o.state_dict() for k, o in step_obj.optimizers.items()},
        "schedule": {"kind": config.schedule, "lr_floor": config.lr_floor, "steps": config.steps},
        "rng": rng_state(),
        "history": history,
        "validation": validation,
        "best_psnr": best_psnr,
        "window": list(window),  # the steps since the last metrics row
        "timing": dict(timing or {}),  # seconds and steps timed (warm-up steps excluded), activation MB
        **denoiser_record(config.denoiser_name, config.preset, config.model),
    }


def denoiser_record(name: str, preset: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What :func:`load_denoiser` needs to rebuild the denoiser of a checkpoint (any
    training loop that stores the denoiser under ``networks["generator"]`` writes it)."""
    from ldct_nb.models import presets

    return {"denoiser": name, "denoiser_preset": preset if preset in presets(name) else "paper",
            "denoiser_kwargs": dict(kwargs)}


def _check_resumable(blob: dict[str, Any], config: TrainConfig, path: Path) -> None:
    try:
        saved = load_config(blob["config"])
    except (KeyError, ParameterError) as exc:
        raise ParameterError(f"checkpoint {path} holds no valid training config ({exc}); remove it or use another run_dir") from exc
    if saved.fingerprint() != config.fingerprint():
        diff = saved.differences(config)
        raise ParameterError(
            f"checkpoint {path} was written by another training config (method {saved.method!r}, preset "
            f"{saved.preset!r}); keys that differ: {diff}. Resume with the same config, pass retrain=True to "
            "start over, or use another name / run_dir."
        )


def write_logs(folder: Path, history: list[dict], validation: list[dict], summary: dict) -> None:
    """Write a run's ``metrics.csv`` (one row per logged step), ``validation.csv`` and
    ``metrics.json`` (``summary`` plus the validation rows) into ``folder``, each atomically."""
    for name, rows in (("metrics.csv", history), ("validation.csv", validation)):
        if not rows:
            continue
        keys = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(folder / name, buf.getvalue())
    atomic_write_json(folder / "metrics.json", {**summary, "validation": validation})


def step_seed(seed: int, step: int, rank: int) -> int:
    """The seed of every random draw of optimisation step ``step`` on process ``rank``: a
    hash of the three, so a resumed run draws what an uninterrupted one draws at that step."""
    digest = hashlib.sha256(f"{seed}:{step}:{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


# ----------------------------------------------------------------------------- the loop


def train(config: TrainConfig | Mapping[str, Any] | str | Path, run_dir: str | Path, *, retrain: bool = False,
          progress: bool = True, stop_after: int | None = None) -> TrainResult:
    """Train one run (see the module docstring); returns a :class:`TrainResult`.

    ``retrain`` starts over even when a checkpoint exists (the old files are
    replaced as the new run writes). ``stop_after`` ends the call after that many
    steps of this call (the run stays resumable; used to test interruption)."""
    cfg = load_config(config)
    dist_info: DistInfo = init_distributed("cuda" if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu")
    device = select_device(f"cuda:{dist_info.local_rank}" if dist_info.active and torch.cuda.is_available()
                           and cfg.device != "cpu" else cfg.device)
    seed_everything(cfg.seed)
    folder = checkpoint_dir(run_dir, cfg)
    last_path, best_path = folder / "last.pt", folder / "best.pt"
    train_split = open_split(run_dir, cfg.train_split)
    val_split = open_split(run_dir, cfg.val_split) if cfg.val_split is not None else None
    perceptual = None
    if needs_perceptual(cfg):
        if dist_info.is_main:
            perceptual = perceptual_extractor(cfg, run_dir, train_split)
        barrier()
        if not dist_info.is_main:
            perceptual = perceptual_extractor(cfg, run_dir, train_split)
    step_obj = build_step(cfg, device=device, world_size=dist_info.world_size, perceptual_net=perceptual)
    for module in step_obj.networks.values():
        broadcast_module(module)
    multiple = 16 if cfg.is_ascon else 1
    stream = BatchStream(train_split, batch_size=cfg.batch_size, patch_size=cfg.patch_size, seed=cfg.seed,
                         augment=cfg.augment, rank=dist_info.rank, world_size=dist_info.world_size, multiple=multiple)
    history: list[dict[str, float]] = []
    validation: list[dict[str, float]] = []
    window: list[dict[str, float]] = []
    timing: dict[str, Any] = {"seconds": 0.0, "steps": 0, "activation_mb": None}
    best_psnr: float | None = None
    start = 0
    if last_path.is_file() and not retrain:
        blob = load_checkpoint(last_path)
        _check_resumable(blob, cfg, last_path)
        for name, module in step_obj.networks.items():
            module.load_state_dict(blob["networks"][name])
        for name, opt in step_obj.optimizers.items():
            opt.load_state_dict(blob["optimizers"][name])
        restore_rng_state(blob["rng"])
        start, history, validation, best_psnr = int(blob["step"]), list(blob["history"]), list(blob["validation"]), blob["best_psnr"]
        window = list(blob.get("window", []))
        timing = dict(blob.get("timing") or timing)
    resumed_from = start
    folder.mkdir(parents=True, exist_ok=True)
    if dist_info.is_main:
        atomic_write_json(folder / "config.json", cfg.to_dict())
    for module in step_obj.networks.values():
        module.train()
    end = cfg.steps if stop_after is None else min(cfg.steps, start + int(stop_after))
    bar = progress_bar(range(start, end), total=cfg.steps, initial=start, desc=f"{cfg.run_name} seed {cfg.seed}",
                       disable=not (progress and dist_info.is_main))
    for step in bar:
        lrs = set_learning_rates(step_obj.optimizers, step, cfg.steps, cfg.schedule, cfg.lr_floor)
        ldct, ndct = stream.batch(step)
        ldct, ndct = ldct.to(device), ndct.to(device)
        gen = torch.Generator(device=device).manual_seed(step_seed(cfg.seed, step, dist_info.rank))
        torch.manual_seed(step_seed(cfg.seed, step, dist_info.rank) ^ 0x5DEECE66D)
        t0 = time.perf_counter()
        if timing["activation_mb"] is None:  # the first step of a run also measures its activation memory
            from ldct_nb.models.profile import saved_activation_bytes

            parts: dict[str, float] = {}
            timing["activation_mb"] = saved_activation_bytes(lambda: parts.update(step_obj(ldct, ndct, gen))) / 2**20
        else:
            parts = step_obj(ldct, ndct, gen)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        if step > resumed_from:  # the first step of a call includes warm-up
            timing["seconds"] += dt
            timing["steps"] += 1
        window.append({**parts, "seconds": dt, **{f"lr_{k}": v for k, v in lrs.items()}})
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            row = {"step": done, **{k: float(np.mean([w[k] for w in window if k in w])) for k in window[-1]}}
            history.append(row)
            window = []
            bar.set_postfix(loss=f"{row.get('total', float('nan')):.4g}", refresh=False)
        if val_split is not None and (done % cfg.val_every == 0 or done == cfg.steps):
            val = {"step": done, **validate(step_obj.denoiser, val_split, device=device, max_slices=cfg.val_slices)}
            improved = best_psnr is None or val["val_psnr"] > best_psnr
            if improved:
                best_psnr = val["val_psnr"]
            val["best_psnr"] = best_psnr
            validation.append(val)
            if improved and dist_info.is_main:
                save_checkpoint(best_path, _state(step_obj, done, cfg, history, validation, best_psnr))
        if done % cfg.checkpoint_every == 0 or done == cfg.steps or done == end:
            if dist_info.is_main:
                save_checkpoint(last_path, _state(step_obj, done, cfg, history, validation, best_psnr, window, timing))
                result = _result(cfg, folder, done, resumed_from, best_psnr, history, validation, timing)
                write_logs(folder, history, validation, result.summary())
            barrier()
    bar.close()
    return _result(cfg, folder, max(end, start), resumed_from, best_psnr, history, validation, timing)


def _result(cfg, folder, done, resumed_from, best_psnr, history, validation, timing) -> TrainResult:
    sec = timing["seconds"] / timing["steps"] if timing.get("steps") else None
    return TrainResult(cfg, folder, folder / "last.pt", folder / "best.pt" if (folder / "best.pt").is_file() else None,
                       done, resumed_from, best_psnr, history, validation, sec,
                       cfg.batch_size / sec if sec else None, timing.get("activation_mb"))


def load_denoiser(path: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """The trained denoiser of a checkpoint, rebuilt from the record it holds
    (:func:`denoiser_record`: registry name, preset, keywords), in eval mode."""
    from ldct_nb.models import build

    blob = load_checkpoint(path)
    try:
        name, preset, kwargs = blob["denoiser"], blob["denoiser_preset"], blob["denoiser_kwargs"]
        state = blob["networks"]["generator"]
    except KeyError as exc:
        raise ParameterError(f"checkpoint {path} holds no denoiser (missing {exc})") from None
    net = build(name, preset, **kwargs)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ParameterError(f"checkpoint {path} does not hold the weights of its {name} denoiser: {exc}") from exc
    return net.to(select_device(device)).eval()
