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

import inspect
import math
import typing

from torch import nn

from ldct_nb.errors import ParameterError
from ldct_nb.validate import check_image_batch, check_int
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
    (e.g. ``widths=(16, 32, 64)`` for ESAU-Net, ``channels=`` for RED-CNN).

    Sizes (int keywords and sequences of ints such as ``widths``) must be ints >= 1.
    The returned network checks its input at every call
    (:func:`ldct_nb.validate.check_image_batch`: an N x 1 x H x W floating tensor of
    its parameters' dtype and device, finite, on the [0, 1] scale), so a numpy array,
    an 8-bit or float64 image, an empty batch, NaN or HU values are refused with a
    message instead of failing deep inside torch or giving a wrong result."""
    _check_name(name)
    _check_preset(name, preset)
    for key, value in kwargs.items():
        if isinstance(value, int) and not isinstance(value, bool):
            check_int(value, key)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            for i, v in enumerate(value):
                check_int(v, f"{key}[{i}]")
    if name == "esau_net":
        model = _esau.ESAUNet(_esau.PRESETS[preset], **kwargs)
    else:
        _check_keywords(name, kwargs)
        try:
            model = _BASELINES[name].build_generator(preset, **kwargs)
        except TypeError as exc:
            raise ParameterError(f"bad keyword for model {name!r}: {exc}") from exc
    model.register_forward_pre_hook(_check_input)
    return model


def _check_keywords(name: str, kwargs: dict) -> None:
    """Each keyword of a baseline against its constructor's default: a name the
    constructor has, an int >= 1 where the default is an int (a size), a finite number
    where it is a float, a bool where it is a bool."""
    cls = typing.get_type_hints(_BASELINES[name].build_generator)["return"]
    defaults = {p.name: p.default for p in list(inspect.signature(cls.__init__).parameters.values())[1:]}
    for key, value in kwargs.items():
        if key not in defaults:
            raise ParameterError(f"unknown keyword {key!r} for model {name!r}; valid: {sorted(defaults)}")
        default = defaults[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ParameterError(f"{key} of model {name!r} must be True or False, got {type(value).__name__} {value!r}")
        elif isinstance(default, int):
            check_int(value, key)
        elif isinstance(default, float) and (isinstance(value, bool) or not isinstance(value, (int, float))
                                             or not math.isfinite(value)):
            raise ParameterError(f"{key} of model {name!r} must be a finite number, got {type(value).__name__} {value!r}")


def _check_input(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook of every built denoiser (see :func:`build`)."""
    if not args:
        raise ParameterError(f"{type(module).__name__} expects an N x 1 x H x W image batch, got no input")
    try:
        check_image_batch(args[0], "x", like=module)
    except ParameterError as exc:
        raise ParameterError(f"{type(module).__name__}: {exc}") from None
