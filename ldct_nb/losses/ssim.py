"""SSIM and the SSIM loss (ASCON sec. 2.4: ``L_SSIM``; official code settings).

Gaussian window of 11 x 11 pixels with sigma 1.5, K1 = 0.01, K2 = 0.03,
``data_range`` = 1 for images scaled to [0, 1] over [-1000, 2000] HU. The
local statistics use population (not sample) covariances, and the mean SSIM is
taken over the "valid" part of the map (the pixels whose window lies inside
the image). This is what scikit-image's
``structural_similarity(x, y, data_range=1, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`` computes: it filters with a truncated Gaussian
(radius ``int(3.5 * 1.5 + 0.5) = 5``, so 11 taps) and averages the map after
cropping ``(11 - 1) // 2 = 5`` border pixels, where its reflect padding has no
effect.

The official ASCON code's form is also offered (``padding="reflect",
clamp=True``, :data:`OFFICIAL_FORM`): its ``util.compute_ssim`` filters with
kornia's ``filter2d``, which reflect-pads the image (mirror without repeating
the edge, ``torch.nn.functional.pad(mode="reflect")``) so the map covers every
pixel, and clamps the map to [0, 1] before the mean. On smooth, similar
images the two forms differ in the fourth decimal (e.g. 0.98608 against
0.98632); on an anti-correlated pair the clamp turns a negative SSIM into 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError

WIN_SIZE = 11
SIGMA = 1.5
K1 = 0.01
K2 = 0.03
PADDINGS = ("valid", "reflect")
OFFICIAL_FORM = {"padding": "reflect", "clamp": True}
"""Keywords of :func:`ssim` that give the official ASCON code's SSIM."""


def gaussian_window(win_size: int = WIN_SIZE, sigma: float = SIGMA, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """The normalised 1-D Gaussian of ``win_size`` taps (sum 1)."""
    if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 1 or win_size % 2 == 0:
        raise ParameterError(f"win_size must be an odd int >= 1, got {win_size!r}")
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0:
        raise ParameterError(f"sigma must be a number > 0, got {sigma!r}")
    x = torch.arange(win_size, dtype=torch.float64) - (win_size - 1) / 2
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable depth-wise Gaussian filter, 'valid' (no padding)."""
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def ssim_map(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    data_range: float = 1.0,
    win_size: int = WIN_SIZE,
    sigma: float = SIGMA,
    k1: float = K1,
    k2: float = K2,
    padding: str = "valid",
) -> torch.Tensor:
    """The SSIM map of two (B, C, H, W) batches.

    ``padding="valid"`` (scikit-image): the pixels whose window lies inside the
    image, (B, C, H - win_size + 1, W - win_size + 1). ``padding="reflect"``
    (official ASCON code, kornia ``filter2d``): the images are reflect-padded by
    ``win_size // 2`` first, so the map is (B, C, H, W)."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or x.ndim != 4 or x.shape != y.shape:
        sx = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        sy = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ParameterError(f"ssim expects two (B, C, H, W) tensors of the same shape, got {sx} and {sy}")
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ParameterError(f"data_range must be a number > 0, got {data_range!r}")
    if padding not in PADDINGS:
        raise ParameterError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if min(x.shape[-2:]) < win_size:
        raise ParameterError(f"images of {tuple(x.shape[-2:])} pixels are smaller than win_size = {win_size}")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    x, y = x.to(dtype), y.to(dtype)
    g = gaussian_window(win_size, sigma, dtype=dtype, device=x.device)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    if padding == "reflect":
        r = win_size // 2
        x, y = F.pad(x, (r, r, r, r), mode="reflect"), F.pad(y, (r, r, r, r), mode="reflect")
    mu_x, mu_y = _filter(x, g), _filter(y, g)
    vx = _filter(x * x, g) - mu_x**2
    vy = _filter(y * y, g) - mu_y**2
    cxy = _filter(x * y, g) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (vx + vy + c2)
    return num / den


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    data_range: float = 1.0,
    reduction: str = "mean",
    padding: str = "valid",
    clamp: bool = False,
    **kwargs,
) -> torch.Tensor:
    """Mean SSIM: a scalar (``reduction="mean"``) or one value per image (``"none"``).

    ``padding`` (``"valid"`` or ``"reflect"``) is passed to :func:`ssim_map`;
    ``clamp=True`` clips the map to [0, 1] before the mean (official ASCON code).
    Keywords ``win_size``, ``sigma``, ``k1``, ``k2`` go to :func:`ssim_map`.
    """
    if reduction not in ("mean", "none"):
        raise ParameterError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if not isinstance(clamp, bool):
        raise ParameterError(f"clamp must be True or False, got {clamp!r}")
    smap = ssim_map(x, y, data_range=data_range, padding=padding, **kwargs)
    if clamp:
        smap = smap.clamp(0.0, 1.0)
    per_image = smap.flatten(1).mean(1)
    return per_image.mean() if reduction == "mean" else per_image


class SSIMLoss(nn.Module):
    """``L_SSIM = 1 - SSIM(denoised, ndct)`` (mean over the batch)."""

    def __init__(self, data_range: float = 1.0, win_size: int = WIN_SIZE, sigma: float = SIGMA, *,
                 padding: str = "valid", clamp: bool = False) -> None:
        super().__init__()
        gaussian_window(win_size, sigma)  # validates
        if padding not in PADDINGS:
            raise ParameterError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if not isinstance(clamp, bool):
            raise ParameterError(f"clamp must be True or False, got {clamp!r}")
        self.padding, self.clamp = padding, clamp
        if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
            raise ParameterError(f"data_range must be a number > 0, got {data_range!r}")
        self.data_range = float(data_range)
        self.win_size = win_size
        self.sigma = float(sigma)

    def forward(self, denoised: torch.Tensor, ndct: torch.Tensor) -> torch.Tensor:
        return 1.0 - ssim(denoised, ndct, data_range=self.data_range, win_size=self.win_size, sigma=self.sigma,
                          padding=self.padding, clamp=self.clamp)

    def extra_repr(self) -> str:
        return (f"gaussian window {self.win_size}, sigma {self.sigma:g}, data_range {self.data_range:g}, "
                f"padding {self.padding}, clamp {self.clamp}")


def multiscale_ssim_loss(x: torch.Tensor, y: torch.Tensor, scales: int = 3, *, data_range: float = 1.0) -> torch.Tensor:
    """Mean of ``1 - SSIM`` over up to ``scales`` dyadic scales (SSMS's structural
    term as we read its "multi-scale"; You et al. 2018): 2x2 average pooling
    between scales, scales whose smaller side is under the 11-pixel window are
    skipped. Not Wang et al.'s MS-SSIM (no contrast/structure product)."""
    if isinstance(scales, bool) or not isinstance(scales, int) or scales < 1:
        raise ParameterError(f"scales must be an int >= 1, got {scales!r}")
    losses = []
    for s in range(scales):
        if s:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        if min(x.shape[-2:]) < WIN_SIZE:
            break
        losses.append(1 - ssim(x, y, data_range=data_range))
    if not losses:
        raise ParameterError(f"images must be at least {WIN_SIZE} x {WIN_SIZE} pixels for SSIM, got {tuple(x.shape[-2:])}")
    return sum(losses) / len(losses)


__all__ = [
    "K1", "K2", "OFFICIAL_FORM", "PADDINGS", "SIGMA", "WIN_SIZE", "SSIMLoss", "gaussian_window", "multiscale_ssim_loss",
    "ssim", "ssim_map",
]
