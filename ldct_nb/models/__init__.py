"""ASCON's networks (ESAU-Net, MAC-Net) and the baseline denoisers: networks only.

The registry::

    build(name, preset="paper", **kwargs) -> nn.Module      # the denoiser (generator)
    available() -> list[str]
    presets(name) -> list[str]

Generators take and return N x 1 x H x W tensors on the [0, 1] scale.
MAC-Net (``ldct_nb.models.mac_net``) is a training-time module, not a
denoiser, and is not in the registry. Each method's training recipe (its
critic, losses and optimisers: ``build_method``) is in
:mod:`ldct_nb.train.methods`; this package imports neither
:mod:`ldct_nb.losses` nor :mod:`ldct_nb.train` (layering
``models <- losses <- train``).
"""
from __future__ import annotations

from torch import nn

from ldct_nb.errors import ParameterError
from ldct_nb.models import esau_net as _esau
from ldct_nb.models.baselines import MODULES as _BASELINES

__all__ = ["build", "available", "presets"]


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
