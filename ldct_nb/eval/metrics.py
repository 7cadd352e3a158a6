"""Image-quality metrics on HU images, with an explicit window and data range.

Every metric takes HU images (one H x W slice or an N x H x W stack, numpy or
torch), maps them to [0, 1] through a display window (clipped to it by
default), and is computed **per slice** with data range 1:

* :func:`psnr`: ``10 log10(1 / MSE)`` (dB);
* :func:`rmse`: on the [0, 1] scale, or in HU (``unit="hu"``: the scaled RMSE
  times the window width);
* :func:`ssim`: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, population
  covariances, the mean over the valid region: what scikit-image's
  ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)`` computes (``form="skimage"``);
  ``form="official"`` is the official ASCON code's (reflect padding, map
  clamped to [0, 1]), so both conventions can be reported.

Windows (:data:`WINDOWS`): ASCON's [-1000, 2000] HU (the default; its tables
report PSNR and SSIM on this scale), RED-CNN's [-160, 240] HU (range 400) and
per-anatomy windows. The official ASCON code does not clip its predictions to
the window (``clip=False`` reproduces that); clipping is the default here,
because a metric should not reward values outside the range it scores.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ldct_nb.errors import ParameterError
from ldct_nb.losses.ssim import OFFICIAL_FORM, ssim as _ssim

__all__ = ["ASCON_WINDOW", "WINDOWS", "psnr", "rmse", "slice_metrics", "ssim", "to_unit", "window_range"]

ASCON_WINDOW = (-1000.0, 2000.0)
WINDOWS: dict[str, tuple[float, float]] = {
    "ascon": ASCON_WINDOW,              # ASCON sec. 3.1: [-1000, 2000] HU -> [0, 1]
    "red_cnn": (-160.0, 240.0),         # RED-CNN's code: range 400 HU (the abdominal display window)
    "abdomen": (-160.0, 240.0),         # soft tissue (W 400, L 40)
    "liver": (-25.0, 175.0),            # W 200, L 75
    "lung": (-1350.0, 150.0),           # W 1500, L -600
    "bone": (-450.0, 1050.0),           # W 1500, L 300
}
SSIM_FORMS = {"skimage": {}, "official": dict(OFFICIAL_FORM)}


def window_range(window) -> tuple[float, float]:
    """``(low, high)`` in HU of a metric window: a name of :data:`WINDOWS`, a pair of
    numbers, or the text ``"low,high"`` (what a papermill profile can pass as a string
    parameter, e.g. ``window: "-160,240"``)."""
    if isinstance(window, str):
        if "," in window:
            try:
                lo, hi = (float(v) for v in window.split(","))
            except ValueError:
                raise ParameterError(f"window {window!r} must be a name of {sorted(WINDOWS)} or 'low,high' in HU") from None
            window = (lo, hi)
        elif window not in WINDOWS:
            raise ParameterError(f"window {window!r} is not one of {sorted(WINDOWS)}; or give (low, high) in HU")
        else:
            return WINDOWS[window]
    try:
        lo, hi = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ParameterError(f"window must be a name or (low, high) in HU, got {window!r}") from None
    if not hi > lo:
        raise ParameterError(f"window must have low < high (HU), got {window!r}")
    return lo, hi


def _stack(name: str, x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or min(x.shape) == 0:
        raise ParameterError(f"{name} must be an H x W slice or an N x H x W stack of HU images, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ParameterError(f"{name} contains NaN or infinite values")
    return x


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    p, t = _stack("pred", pred), _stack("target", target)
    if p.shape != t.shape:
        raise ParameterError(f"pred {p.shape} and target {t.shape} differ in shape")
    return p, t


def to_unit(hu, window=ASCON_WINDOW, *, clip: bool = True) -> np.ndarray:
    """HU -> [0, 1] through ``window`` (clipped to it with ``clip``), float64."""
    lo, hi = window_range(window)
    x = _stack("hu", hu)
    if clip:
        x = np.clip(x, lo, hi)
    return (x - lo) / (hi - lo)


def _squeeze(values: np.ndarray, like) -> np.ndarray | float:
    shape = like.shape if hasattr(like, "shape") else np.shape(like)
    return float(values[0]) if len(shape) == 2 else values


def psnr(pred, target, window=ASCON_WINDOW, *, clip: bool = True):
    """PSNR (dB) per slice on the [0, 1] scale of ``window`` (data range 1)."""
    p, t = _pair(pred, target)
    mse = ((to_unit(p, window, clip=clip) - to_unit(t, window, clip=clip)) ** 2).reshape(len(p), -1).mean(1)
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(1.0 / mse)
    return _squeeze(values, pred)


def rmse(pred, target, window=ASCON_WINDOW, *, clip: bool = True, unit: str = "scaled"):
    """RMSE per slice: on the [0, 1] scale of ``window`` (``unit="scaled"``, as
    ASCON's tables, which print it x 100) or in HU (``unit="hu"``)."""
    if unit not in ("scaled", "hu"):
        raise ParameterError(f"unit must be 'scaled' or 'hu', got {unit!r}")
    p, t = _pair(pred, target)
    lo, hi = window_range(window)
    values = np.sqrt(((to_unit(p, window, clip=clip) - to_unit(t, window, clip=clip)) ** 2).reshape(len(p), -1).mean(1))
    if unit == "hu":
        values = values * (hi - lo)
    return _squeeze(values, pred)


def ssim(pred, target, window=ASCON_WINDOW, *, clip: bool = True, form: str = "skimage"):
    """SSIM per slice on the [0, 1] scale of ``window`` (data range 1); ``form``
    ``"skimage"`` or ``"official"`` (see the module docstring)."""
    if form not in SSIM_FORMS:
        raise ParameterError(f"form must be one of {list(SSIM_FORMS)}, got {form!r}")
    p, t = _pair(pred, target)
    pu = torch.from_numpy(to_unit(p, window, clip=clip))[:, None]
    tu = torch.from_numpy(to_unit(t, window, clip=clip))[:, None]
    values = _ssim(pu, tu, data_range=1.0, reduction="none", **SSIM_FORMS[form]).numpy()
    return _squeeze(values, pred)


def slice_metrics(pred, target, window=ASCON_WINDOW, *, clip: bool = True) -> dict[str, np.ndarray]:
    """Every metric per slice: ``psnr``, ``rmse`` (scaled), ``rmse_hu``, ``ssim``
    (scikit-image form) and ``ssim_official``."""
    p, t = _pair(pred, target)
    return {"psnr": np.atleast_1d(psnr(p, t, window, clip=clip)),
            "rmse": np.atleast_1d(rmse(p, t, window, clip=clip)),
            "rmse_hu": np.atleast_1d(rmse(p, t, window, clip=clip, unit="hu")),
            "ssim": np.atleast_1d(ssim(p, t, window, clip=clip)),
            "ssim_official": np.atleast_1d(ssim(p, t, window, clip=clip, form="official"))}
