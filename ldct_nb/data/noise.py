"""Noise measurements for the data stage: noise versus dose and noise per tissue.

These are the checks of the simulation (noise standard deviation scales as
1 / sqrt(N0); mean HU unbiased) and the motivation of ASCON's Fig. S1 (noise
differs between tissues).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ldct_nb.data.simulate import simulate_ldct
from ldct_nb.errors import ParameterError


def uniform_cylinder(size: int, *, diameter_mm: float = 250.0, fov_mm: float = 360.0, hu: float = 0.0) -> np.ndarray:
    """A water-like cylinder (``hu``) in air, ``size`` x ``size`` pixels over ``fov_mm``."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ParameterError(f"size must be an int >= 8, got {size!r}")
    if not 0 < diameter_mm < fov_mm:
        raise ParameterError(f"diameter_mm must be in (0, fov_mm={fov_mm}), got {diameter_mm!r}")
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    r_mm = np.hypot(yy - c, xx - c) * fov_mm / size
    out = np.full((size, size), -1000.0, np.float32)
    out[r_mm <= diameter_mm / 2] = hu
    return out


def disc_mask(size: int, *, diameter_mm: float, fov_mm: float = 360.0) -> np.ndarray:
    """Central disc of ``diameter_mm`` (a measurement region)."""
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    return np.hypot(yy - c, xx - c) * fov_mm / size <= diameter_mm / 2


@dataclass(frozen=True)
class NoiseFit:
    """Least-squares fit std = k / sqrt(N0) of measured noise."""

    n0: np.ndarray
    std_hu: np.ndarray
    mean_hu: np.ndarray
    k: float

    @property
    def predicted(self) -> np.ndarray:
        return self.k / np.sqrt(self.n0)

    @property
    def max_relative_error(self) -> float:
        return float(np.max(np.abs(self.std_hu / self.predicted - 1)))

    def __repr__(self) -> str:
        return f"NoiseFit(std = {self.k:.4g} / sqrt(N0), {len(self.n0)} doses, max deviation {self.max_relative_error:.1%})"


def noise_vs_dose(
    hu: np.ndarray,
    n0s: Sequence[float],
    region: np.ndarray,
    *,
    seed: int = 0,
    **simulation,
) -> NoiseFit:
    """Measure the noise standard deviation in ``region`` at each N0.

    Two independent acquisitions are simulated per dose; the noise is
    std(a - b) / sqrt(2) inside the region, which removes the (deterministic)
    discretisation error. The mean HU is the mean of a and b in the region.
    Keywords go to :func:`~ldct_nb.data.simulate.simulate_ldct`.
    """
    n0s = np.asarray(n0s, dtype=float)
    if n0s.ndim != 1 or len(n0s) < 2 or not np.all(np.isfinite(n0s) & (n0s > 0)):
        raise ParameterError(f"n0s must be at least two finite positive doses (a 1-D list), got {n0s!r}")
    region = np.asarray(region, bool)
    if region.shape != hu.shape or region.sum() < 10:
        raise ParameterError(f"region must be a boolean mask of shape {hu.shape} with >= 10 pixels")
    stds, means = [], []
    for i, n0 in enumerate(n0s):
        pair = np.stack([hu, hu])
        a, b = simulate_ldct(pair, float(n0), seed=[2 * (seed + i), 2 * (seed + i) + 1], **simulation)
        stds.append(float(np.std((a - b)[region]) / np.sqrt(2)))
        means.append(float(np.mean(np.concatenate([a[region], b[region]]))))
    stds_arr = np.asarray(stds)
    x = 1 / np.sqrt(n0s)
    k = float(np.sum(x * stds_arr) / np.sum(x * x))  # least squares through the origin
    return NoiseFit(n0s, stds_arr, np.asarray(means), k)


def noise_by_tissue(
    noise: np.ndarray,
    labels: np.ndarray,
    tissues: Sequence[str],
    *,
    erode_px: int = 2,
    min_pixels: int = 30,
) -> dict[str, float]:
    """Standard deviation of a noise image (e.g. LDCT minus its noise-free
    reconstruction) inside each tissue, with masks eroded by ``erode_px`` so
    edges (partial volume, blur) do not count. ``noise`` and ``labels`` are
    H x W or S x H x W. Tissues with fewer than ``min_pixels`` pixels are left out."""
    noise = np.asarray(noise)
    labels = np.asarray(labels)
    if noise.shape != labels.shape:
        raise ParameterError(f"noise {noise.shape} and labels {labels.shape} must have the same shape")
    if noise.ndim == 2:
        noise, labels = noise[None], labels[None]
    out: dict[str, float] = {}
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)  # erode within slices only
    for i, name in enumerate(tissues):
        mask = labels == i
        if erode_px > 0 and mask.any():
            mask = ndimage.binary_erosion(mask, structure, iterations=erode_px)
        if mask.sum() >= min_pixels:
            out[name] = float(noise[mask].std())
    return out
