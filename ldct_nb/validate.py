"""Checks of what reaches the numerical code: HU images, [0, 1] image batches, sizes.

Each check raises :class:`~ldct_nb.errors.ParameterError` naming the argument
and what was expected, instead of a traceback from deep inside torch or numpy
or, worse, a plausible but wrong number:

* :func:`check_hu_image` -- an image in Hounsfield units for the CT simulation
  (``simulate_ldct``): finite, within :data:`HU_RANGE`, and not an image that
  was already normalised to [0, 1];
* :func:`check_image_batch` -- a (B, C, H, W) torch batch on the [0, 1] scale
  for a denoiser, MAC-Net or a loss: a torch floating tensor (not a numpy
  array, not ``uint8``), the dtype and device of the model, a non-empty batch,
  finite values, and no HU-scale values;
* :func:`check_int` / :func:`check_positive` -- sizes and scalars such as
  ``channels`` (``build(..., channels=-1)``).

A device string is checked by :func:`ldct_nb.env.select_device`
(``select_device("banana", name="device")``).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ldct_nb.errors import ParameterError

HU_RANGE = (-1100.0, 4000.0)
"""Values a CT image in HU may take: air is -1000 (scanners clamp at -1024), dense
bone and contrast stay well below 4000. Anything outside is padding, a wrong
rescale or not HU at all."""

UNIT_MARGIN = 0.5
"""How far a [0, 1] batch may leave [0, 1]: network outputs and noisy LDCT
overshoot a little; HU values (hundreds) are far outside."""


def _range_text(lo: float, hi: float) -> str:
    return f"[{lo:.4g}, {hi:.4g}]"


def check_hu_image(hu: Any, name: str = "hu", *, hu_range: tuple[float, float] = HU_RANGE) -> None:
    """Refuse anything that is not an image in Hounsfield units.

    ``hu`` must be a numpy array or torch tensor of real numbers (floats or
    signed integers), non-empty, finite, with every value in ``hu_range``, and
    must not look normalised to [0, 1] (all values in [0, 1] and not constant:
    a CT image in HU always holds air at about -1000).
    """
    if isinstance(hu, torch.Tensor):
        if hu.dtype == torch.bool or hu.dtype == torch.uint8 or hu.is_complex():
            raise ParameterError(f"{name} is a {hu.dtype} tensor, expected HU values (float or signed integers; air "
                                 f"is -1000)")
        if hu.numel() == 0:
            raise ParameterError(f"{name} is empty (shape {tuple(hu.shape)}), expected an image in HU")
        t = hu.detach()
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise ParameterError(f"{name} contains {bad} NaN or infinite values, expected finite HU values")
        lo, hi = float(t.min()), float(t.max())
    elif isinstance(hu, np.ndarray):
        if hu.dtype.kind not in "fi":
            raise ParameterError(f"{name} is a numpy {hu.dtype} array, expected HU values (float or signed "
                                 f"integers; air is -1000)")
        if hu.size == 0:
            raise ParameterError(f"{name} is empty (shape {hu.shape}), expected an image in HU")
        if hu.dtype.kind == "f" and not np.isfinite(hu).all():
            bad = int((~np.isfinite(hu)).sum())
            raise ParameterError(f"{name} contains {bad} NaN or infinite values, expected finite HU values")
        lo, hi = float(hu.min()), float(hu.max())
    else:
        raise ParameterError(f"{name} must be a numpy array or torch tensor of HU values, got {type(hu).__name__}")
    if 0.0 <= lo and hi <= 1.0 and hi > lo:
        raise ParameterError(
            f"{name} holds values in {_range_text(lo, hi)}: it looks normalised to [0, 1], expected Hounsfield "
            f"units (air -1000, water 0); undo the normalisation first (HUWindow.denormalize)"
        )
    if lo < hu_range[0] or hi > hu_range[1]:
        raise ParameterError(
            f"{name} holds values in {_range_text(lo, hi)}, expected Hounsfield units within "
            f"{_range_text(*hu_range)} (padding and values below -1024 are mapped by ldct_nb.data.dicom)"
        )


def _reference(like: nn.Module | torch.Tensor | None) -> tuple[torch.dtype | None, torch.device | None, str]:
    if like is None:
        return None, None, ""
    if isinstance(like, torch.Tensor):
        return like.dtype, like.device, "the reference tensor is"
    if isinstance(like, nn.Module):
        for tensor in (*like.parameters(), *like.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype, tensor.device, f"the {type(like).__name__}'s parameters are"
        return None, None, ""
    raise ParameterError(f"like must be an nn.Module, a tensor or None, got {type(like).__name__}")


def check_image_batch(
    x: Any,
    name: str = "x",
    *,
    channels: int | None = 1,
    like: nn.Module | torch.Tensor | None = None,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    margin: float = UNIT_MARGIN,
) -> torch.Tensor:
    """Refuse a batch that a denoiser, MAC-Net or a loss cannot use correctly; return it.

    ``x`` must be a torch floating tensor of shape (B, C, H, W) with B, H, W > 0
    and ``C == channels`` (any C when None), finite, with the dtype and device
    of ``like`` (a module's parameters or a tensor) when given, and with values
    within ``value_range`` widened by ``margin`` (None skips the value check).
    """
    if isinstance(x, np.ndarray):
        raise ParameterError(
            f"{name} is a numpy array, expected a torch tensor (B, C, H, W): use torch.from_numpy({name}).float()"
        )
    if not isinstance(x, torch.Tensor):
        raise ParameterError(f"{name} must be a torch tensor (B, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ParameterError(f"{name} must be a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    if b == 0 or h == 0 or w == 0:
        raise ParameterError(f"{name} is an empty batch (shape {tuple(x.shape)}), expected B, H, W >= 1")
    if channels is not None and c != channels:
        raise ParameterError(f"{name} has {c} channel(s), expected {channels} (shape (B, {channels}, H, W))")
    if not x.is_floating_point():
        scale = " (an 8-bit image: scale it to [0, 1] first)" if x.dtype == torch.uint8 else ""
        raise ParameterError(f"{name} is a {x.dtype} tensor, expected a floating tensor on the [0, 1] scale{scale}")
    dtype, device, what = _reference(like)
    if dtype is not None and x.dtype != dtype:
        raise ParameterError(f"{name} is {x.dtype} but {what} {dtype}: convert it with {name}.to({dtype})")
    if device is not None and x.device != device:
        raise ParameterError(f"{name} is on {x.device} but {what} on {device}: move it with {name}.to({device})")
    t = x.detach()
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        raise ParameterError(
            f"{name} contains {int(torch.isnan(t).sum())} NaN and {int(torch.isinf(t).sum())} infinite values, "
            f"expected finite values"
        )
    if value_range is not None:
        lo, hi = float(t.min()), float(t.max())
        low, high = value_range
        if lo < low - margin or hi > high + margin:
            hint = ""
            if hi > 10 or lo < -10:
                hint = "; it looks like Hounsfield units: normalise with ldct_nb.data.datasets.HUWindow first"
            raise ParameterError(
                f"{name} holds values in {_range_text(lo, hi)}, expected the {_range_text(low, high)} scale{hint}"
            )
    return x


def check_int(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum]; refuses bools, floats and strings."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{name} must be an int >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ParameterError(f"{name} must be an int >= {minimum}{upper}, got {value!r}")
    return int(value)


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ParameterError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)
