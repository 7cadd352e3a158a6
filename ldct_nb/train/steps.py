"""One optimisation step of each kind of method.

* :class:`SpecStep`: a registered method's :class:`~ldct_nb.train.recipes.MethodSpec`.
  Supervised methods take one generator step; adversarial ones (WGAN-VGG,
  DU-GAN, CNCL, ...) first take ``n_critic`` critic steps on the batch (the
  generator's output detached), then one generator step with the critic
  frozen (its parameters collect no gradient).
* :class:`~ldct_nb.train.ascon.AsconStep` (in :mod:`ldct_nb.train.ascon`):
  ASCON's alternating MAC-Net / denoiser iteration.

Every step object exposes ``networks`` (name -> module, everything whose
state a checkpoint must hold), ``optimizers`` (name -> optimiser),
``denoiser`` (the network that is evaluated and exported), and
``__call__(ldct, ndct, generator=None) -> dict of floats``. The shared
mechanics of one optimiser update (zero, backward, average over processes,
clip, step) are :func:`update`.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
from torch import nn

from ldct_nb.losses.ascon_loss import frozen
from ldct_nb.train.distributed import average_gradients
from ldct_nb.train.recipes import MethodSpec

__all__ = ["StepOptions", "SpecStep", "autocast_forward", "cosine_factor", "set_learning_rates", "update"]


@dataclass(frozen=True)
class StepOptions:
    """What every step shares: the device, bf16 autocast (CUDA), gradient clipping, processes."""

    device: torch.device = torch.device("cpu")
    amp: bool = False
    grad_clip: float | None = None
    world_size: int = 1

    def autocast(self):
        """bf16 autocast on CUDA when ``amp`` is set, else a no-op context (the steps use
        :func:`autocast_forward` on the networks instead, so that losses stay in float32)."""
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def autocast_forward(module: nn.Module, opts: StepOptions) -> nn.Module:
    """Run ``module``'s forward under bf16 autocast (when ``opts`` asks for it on CUDA) and
    return float32 outputs, so that the losses computed on them stay in float32: SSIM's
    differences of local moments and the contrastive similarities lose their meaning
    in bf16 (an ESAU-Net trained with its SSIM loss inside autocast did not learn at all).
    The module's weights and state dict are unchanged. Returns ``module``."""
    if not (opts.amp and opts.device.type == "cuda") or getattr(module, "_ldct_autocast", False):
        return module
    inner = module.forward

    def forward(*args, **kwargs):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = inner(*args, **kwargs)
        return _to_float(out)

    module.forward = forward
    module._ldct_autocast = True
    return module


def _to_float(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (tuple, list)):
        return type(out)(_to_float(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_float(v) for k, v in out.items()}
    return out


def update(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[nn.Parameter], opts: StepOptions) -> float | None:
    """``zero_grad``, ``backward``, gradient averaging over processes, optional
    clipping to ``opts.grad_clip`` (returns the norm before clipping), ``step``."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(params, opts.world_size)
    norm = None
    if opts.grad_clip is not None:
        norm = float(torch.nn.utils.clip_grad_norm_(params, opts.grad_clip))
    optimizer.step()
    return norm


def cosine_factor(step: int, total: int, floor_ratio: float) -> float:
    """Cosine annealing [Loshchilov and Hutter 2017] from 1 at step 0 to ``floor_ratio`` at ``total``."""
    t = min(max(step, 0), total) / max(total, 1)
    return floor_ratio + (1.0 - floor_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


def set_learning_rates(optimizers: dict[str, torch.optim.Optimizer], step: int, total: int, schedule: str, floor: float) -> dict[str, float]:
    """Set every parameter group's lr for ``step``: constant, or cosine from its
    ``initial_lr`` down to ``floor`` (absolute) at the last step (the ASCON
    schedule: 1e-4 -> 1e-6). Returns the first group's lr per optimiser."""
    out = {}
    for name, opt in optimizers.items():
        for group in opt.param_groups:
            base = group.setdefault("initial_lr", group["lr"])
            if schedule == "cosine":
                ratio = min(floor / base, 1.0) if base > 0 else 1.0
                group["lr"] = base * cosine_factor(step, total, ratio)
            else:
                group["lr"] = base
        out[name] = opt.param_groups[0]["lr"]
    return out


class SpecStep:
    """A registered method's step (see the module docstring)."""

    def __init__(self, spec: MethodSpec, opts: StepOptions, *, generator_lr: float | None = None) -> None:
        self.spec, self.opts = spec.to(opts.device), opts
        autocast_forward(spec.generator, opts)
        if spec.critic is not None:
            autocast_forward(spec.critic, opts)
        g_opt, c_opt = spec.make_optimizers()
        if generator_lr is not None:
            for group in g_opt.param_groups:
                group["lr"] = generator_lr
        self.optimizers = {"generator": g_opt} | ({"critic": c_opt} if c_opt is not None else {})
        self.networks = {"generator": spec.generator} | ({"critic": spec.critic} if spec.critic is not None else {})
        self.denoiser = spec.generator

    def __call__(self, ldct: torch.Tensor, ndct: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        spec, opts = self.spec, self.opts
        parts: dict[str, float] = {}
        if spec.critic is not None:
            g_params = list(spec.generator.parameters())
            c_params = list(spec.critic.parameters())
            for _ in range(spec.n_critic):
                with torch.no_grad():
                    out = spec.generator(ldct)
                c_loss, c_parts = spec.critic_loss(ldct, ndct, out.detach())
                update(self.optimizers["critic"], c_loss, c_params, opts)
            parts.update({f"critic_{k}": float(v) for k, v in c_parts.items()})
            with frozen(c_params):
                loss, g_parts, _ = spec.generator_loss(ldct, ndct)
            update(self.optimizers["generator"], loss, g_params, opts)
        else:
            loss, g_parts, _ = spec.generator_loss(ldct, ndct)
            update(self.optimizers["generator"], loss, list(spec.generator.parameters()), opts)
        parts.update({k: float(v) for k, v in g_parts.items()})
        parts.setdefault("total", float(loss.detach()))
        return parts

    def __repr__(self) -> str:
        return f"SpecStep({self.spec!r})"
