"""ASCON's networks (ESAU-Net, MAC-Net) and the baseline denoisers.

The registry::

    build(name, preset="paper", **kwargs) -> nn.Module      # the denoiser (generator)
    build_method(name, preset="paper", **kwargs) -> MethodSpec  # generator, critic, losses, optimisers
    available() -> list[str]
    presets(name) -> list[str]

Generators take and return N x 1 x H x W tensors on the [0, 1] scale.
MAC-Net (``ldct_nb.models.mac_net``) is a training-time module, not a
denoiser, and is not in the registry.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError
from ldct_nb.models import esau_net as _esau
from ldct_nb.models.baselines import MODULES as _BASELINES
from ldct_nb.models.baselines.common import MethodSpec, OptimSettings, ssim, supervised_recipe

__all__ = ["build", "build_method", "available", "presets", "MethodSpec", "OptimSettings"]

_ESAU_LOSS = {
    # ASCON sec. 2.4 without MAC-Net: 10 (MSE + SSIM loss); AdamW betas (0.9, 0.99), wd 1e-9, lr 1e-4.
    "paper": (10.0, 10.0, OptimSettings("adamw", 1e-4, (0.9, 0.99), 1e-9), {}),
    # official code: 100 MSE + 10 (1 - SSIM) with its kornia SSIM (reflect padding, clamped map);
    # AdamW lr 2e-4, betas (0.5, 0.999), wd 0.01.
    "official": (100.0, 10.0, OptimSettings("adamw", 2e-4, (0.5, 0.999), 0.01), {"padding": "reflect", "clamp": True}),
}


def available() -> list[str]:
    """Every registered model name."""
    return ["esau_net", *_BASELINES]


def presets(name: str) -> list[str]:
    """The presets one model defines."""
    _check_name(name)
    return list(_esau.PRESETS) if name == "esau_net" else list(_BASELINES[name].PRESETS)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or name not in available():
        raise ParameterError(f"unknown model name {name!r}; valid names: {available()}")


def _check_preset(name: str, preset: str) -> None:
    valid = presets(name)
    if preset not in valid:
        raise ParameterError(f"unknown preset {preset!r} for model {name!r}; valid presets: {valid}")


def build(name: str, preset: str = "paper", **kwargs) -> nn.Module:
    """The denoiser ``name`` in ``preset``; ``kwargs`` override its constructor's keywords
    (e.g. ``widths=(16, 32, 64)`` for ESAU-Net, ``channels=`` for RED-CNN)."""
    _check_name(name)
    _check_preset(name, preset)
    if name == "esau_net":
        return _esau.ESAUNet(_esau.PRESETS[preset], **kwargs)
    try:
        return _BASELINES[name].build_generator(preset, **kwargs)
    except TypeError as exc:
        raise ParameterError(f"bad keyword for model {name!r}: {exc}") from exc


def build_method(name: str, preset: str = "paper", **kwargs) -> MethodSpec:
    """The full training recipe of ``name``: generator, critic (or None), losses, optimisers.

    Methods with a perceptual loss need ``feature_extractor=`` (see
    :mod:`ldct_nb.models.feature_net`); other keywords go to the generator
    or name loss weights documented in each baseline module.
    """
    _check_name(name)
    _check_preset(name, preset)
    if name == "esau_net":
        kwargs.pop("feature_extractor", None)
        gen = build(name, preset, **kwargs)
        w_mse, w_ssim, opt, ssim_form = _ESAU_LOSS[preset]

        def content(out, y):
            mse = F.mse_loss(out, y)
            s = 1 - ssim(out, y, **ssim_form)
            return w_mse * mse + w_ssim * s, {"pixel": mse, "ssim_loss": s}

        return supervised_recipe("esau_net", preset, gen, content, opt,
                                 notes="ESAU-Net alone (no MAC-Net): the ASCON denoiser loss without L_global / L_local")
    try:
        return _BASELINES[name].build_method(preset, **kwargs)
    except TypeError as exc:
        raise ParameterError(f"bad keyword for model {name!r}: {exc}") from exc
