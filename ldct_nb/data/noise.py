"""Noise measurements for the data stage: noise versus dose, noise per tissue,
noise power spectrum (NPS) and the calibration of N0 to a noise level.

These are the checks of the simulation (noise standard deviation scales as
1 / sqrt(N0); mean HU unbiased), the motivation of ASCON's Fig. S1 (noise
differs between tissues), the noise *texture* (:func:`nps`, as defined by
ICRU Report 87 and AAPM TG-233: NPS(fx, fy) = dx dy / (Nx Ny) <|DFT(ROI - mean)|^2>)
and a dose given by its effect (:func:`calibrate_n0`: the N0 that gives a
target noise standard deviation in a water cylinder).

**Noise levels of LIDnet's N0.** LIDnet (Sec. 4) sets N0 = 3000 (PE-CT) and
1000 (L-CT-A, L-CT-G) in the convention of its reference [14]
(Gholizadeh-Ansari et al. 2019), which reports the noise of its simulation on
512 x 512 images with 512 views as about 12 / 37 / 51 HU at N0 = 1e5 / 1e4 /
5e3 (:data:`REFERENCE_14_NOISE_HU`). :func:`reference_14_noise_hu` fits
sigma = k / sqrt(N0) to those three points and returns the noise that [14]'s
convention gives at any N0: about 67 HU at 3000 and 116 HU at 1000. Applied
literally to this project's geometry, N0 = 3000 / 1000 give 3-5 times more
noise (the N0 convention differs), so the analogues are calibrated to [14]'s
noise level instead (:func:`calibrate_n0`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ldct_nb.data.simulate import simulate_ldct
from ldct_nb.errors import ParameterError

CLINICAL_NPS_PEAK_PER_MM: tuple[float, float] = (0.20, 0.30)
"""NPS peak frequency (cycles/mm) of clinical FBP body soft-tissue kernels, about
0.2-0.3 mm^-1 (e.g. Siemens B30f, the kernel of the Mayo data, and GE STANDARD):
J. Solomon, O. Christianson, E. Samei, "Quantitative comparison of noise texture
across CT scanners from different manufacturers", Med. Phys. 39(10):6048-6055,
2012; K. L. Boedeker, V. N. Cooper, M. F. McNitt-Gray, "Application of the noise
power spectrum in modern diagnostic MDCT: part I", Phys. Med. Biol.
52:4027-4046, 2007. At 0.7 mm pixels (Nyquist 0.714 mm^-1) that is 0.28-0.42
of the Nyquist frequency."""

REFERENCE_14_NOISE_HU: dict[float, float] = {1e5: 12.0, 1e4: 37.0, 5e3: 51.0}
"""Noise (HU) of [14]'s simulation at N0 = 1e5 / 1e4 / 5e3 (512 x 512, 512 views),
as read from [14] (Gholizadeh-Ansari et al., J. Digit. Imaging 2019)."""


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


# --------------------------------------------------------------------------- N0 -> noise of [14]


def reference_14_noise_hu(n0: float) -> float:
    """Noise standard deviation (HU) that LIDnet's reference [14] reports at ``n0``:
    k / sqrt(n0) with k fitted (least squares through the origin) to
    :data:`REFERENCE_14_NOISE_HU`. LIDnet's N0 = 3000 gives about 67 HU, 1000 about 116 HU."""
    if isinstance(n0, bool) or not isinstance(n0, (int, float)) or not math.isfinite(n0) or n0 <= 0:
        raise ParameterError(f"n0 must be a positive number of photons, got {n0!r}")
    x = np.array([1 / math.sqrt(v) for v in REFERENCE_14_NOISE_HU])
    y = np.array(list(REFERENCE_14_NOISE_HU.values()))
    k = float(np.sum(x * y) / np.sum(x * x))
    return k / math.sqrt(n0)


# --------------------------------------------------------------------------- NPS


@dataclass(frozen=True, eq=False)
class NoisePowerSpectrum:
    """Noise power spectrum of a set of noise ROIs (see :func:`nps`).

    Attributes:
        frequency: radial frequencies (cycles/mm), bin centres from 0 to Nyquist.
        power: radially averaged NPS (HU^2 mm^2) at ``frequency``.
        peak_frequency: frequency (cycles/mm) of the maximum of ``power`` (DC
            excluded), refined by a parabola through the three highest bins.
        nyquist: Nyquist frequency 1 / (2 pixel_size_mm) (cycles/mm).
        nps_2d: the 2-D NPS (HU^2 mm^2), ``fftshift``-ed, shape of one ROI.
        fx, fy: the 2-D frequency axes (cycles/mm, ``fftshift``-ed).
        pixel_size_mm: pixel size of the ROIs.
        n_rois: number of ROIs averaged.
    """

    frequency: np.ndarray
    power: np.ndarray
    peak_frequency: float
    nyquist: float
    nps_2d: np.ndarray
    fx: np.ndarray
    fy: np.ndarray
    pixel_size_mm: float
    n_rois: int

    @property
    def peak_fraction_of_nyquist(self) -> float:
        """Peak frequency as a fraction of the Nyquist frequency."""
        return self.peak_frequency / self.nyquist

    @property
    def variance(self) -> float:
        """Integral of the 2-D NPS over all frequencies (HU^2): the noise variance."""
        df = (self.fx[1] - self.fx[0]) * (self.fy[1] - self.fy[0])
        return float(self.nps_2d.sum() * df)

    @property
    def mean_frequency(self) -> float:
        """Mean frequency of the radial NPS, sum f NPS(f) / sum NPS(f) (cycles/mm; TG-233's f_av)."""
        return float(np.sum(self.frequency * self.power) / np.sum(self.power))

    def __repr__(self) -> str:
        return (f"NoisePowerSpectrum(peak {self.peak_frequency:.3f} /mm = {self.peak_fraction_of_nyquist:.2f} "
                f"Nyquist, Nyquist {self.nyquist:.3f} /mm, std {math.sqrt(self.variance):.1f} HU, "
                f"{self.n_rois} ROIs of {self.nps_2d.shape[0]}x{self.nps_2d.shape[1]} px)")


def nps(noise_images, pixel_size_mm: float) -> NoisePowerSpectrum:
    """Noise power spectrum of noise-only ROIs (ICRU 87; AAPM TG-233).

    NPS(fx, fy) = dx dy / (Nx Ny) * mean over ROIs of |DFT2(ROI - mean(ROI))|^2,
    in HU^2 mm^2 for ROIs in HU and frequencies in cycles/mm; its integral over
    (fx, fy) is the variance of the ROIs (Parseval). The radial 1-D NPS
    averages the 2-D NPS over annuli of width 1 / (N dx) (the frequency
    sampling of an N-pixel ROI) up to the Nyquist frequency.

    Args:
        noise_images: noise-only ROIs in HU, ``H x W`` or ``M x H x W`` (e.g.
            the difference of two noise realisations divided by sqrt(2), or an
            image minus its noise-free version; see :func:`noise_rois`).
        pixel_size_mm: pixel size in mm (> 0).

    Returns:
        A :class:`NoisePowerSpectrum`.
    """
    rois = np.asarray(noise_images, dtype=np.float64)
    if rois.ndim == 2:
        rois = rois[None]
    if rois.ndim != 3 or min(rois.shape[1:]) < 4 or rois.shape[0] < 1:
        raise ParameterError(f"noise_images must be H x W or M x H x W with H, W >= 4, got shape {rois.shape}")
    if not np.isfinite(rois).all():
        raise ParameterError("noise_images contains NaN or infinite values")
    if (isinstance(pixel_size_mm, bool) or not isinstance(pixel_size_mm, (int, float))
            or not math.isfinite(pixel_size_mm) or pixel_size_mm <= 0):
        raise ParameterError(f"pixel_size_mm must be a positive number (mm), got {pixel_size_mm!r}")
    m, h, w = rois.shape
    d = float(pixel_size_mm)
    centred = rois - rois.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(centred)) ** 2
    nps2 = np.fft.fftshift(power.mean(axis=0) * d * d / (h * w))
    fx = np.fft.fftshift(np.fft.fftfreq(w, d))
    fy = np.fft.fftshift(np.fft.fftfreq(h, d))
    radius = np.hypot(fy[:, None], fx[None, :])
    nyquist = 1.0 / (2.0 * d)
    df = 1.0 / (max(h, w) * d)
    n_bins = int(round(nyquist / df))
    index = np.floor(radius / df + 0.5).astype(int)  # bin k holds |f| in [(k - 1/2) df, (k + 1/2) df)
    keep = index <= n_bins
    sums = np.bincount(index[keep], weights=nps2[keep], minlength=n_bins + 1)
    counts = np.bincount(index[keep], minlength=n_bins + 1)
    freq = np.arange(n_bins + 1) * df
    valid = counts > 0
    freq, radial = freq[valid], sums[valid] / counts[valid]
    k = 1 + int(np.argmax(radial[1:]))  # DC excluded (it is zero after removing the mean)
    peak = float(freq[k])
    if 1 <= k < len(radial) - 1:  # parabola through the maximum and its neighbours
        a, b, c = radial[k - 1], radial[k], radial[k + 1]
        denom = a - 2 * b + c
        if denom < 0:
            peak += float(0.5 * (a - c) / denom * (freq[k + 1] - freq[k]))
    return NoisePowerSpectrum(freq, radial, peak, nyquist, nps2, fx, fy, d, m)


def clinical_peak_fraction(pixel_size_mm: float = 0.7) -> tuple[float, float]:
    """:data:`CLINICAL_NPS_PEAK_PER_MM` as fractions of the Nyquist frequency of
    ``pixel_size_mm`` (the clinical 512 x 512 pixel by default)."""
    nyquist = 1.0 / (2.0 * pixel_size_mm)
    return CLINICAL_NPS_PEAK_PER_MM[0] / nyquist, CLINICAL_NPS_PEAK_PER_MM[1] / nyquist


def nearest_filter(spectra: dict[str, "NoisePowerSpectrum"], target_fraction: float | None = None) -> str:
    """The filter whose NPS peak (fraction of Nyquist) is nearest ``target_fraction``
    (default: the middle of :func:`clinical_peak_fraction`)."""
    if not spectra:
        raise ParameterError("spectra is empty: measure at least one filter")
    if target_fraction is None:
        target_fraction = sum(clinical_peak_fraction()) / 2
    return min(spectra, key=lambda name: abs(spectra[name].peak_fraction_of_nyquist - target_fraction))


def noise_rois(noise_images, mask: np.ndarray, roi_size: int, *, stride: int | None = None) -> np.ndarray:
    """Square ``roi_size`` ROIs lying entirely inside ``mask``, on a grid of step
    ``stride`` (default ``roi_size``: no overlap; ``roi_size // 2`` is the usual half
    overlap) centred on the mask, cut out of each noise image (``H x W`` or
    ``M x H x W``). Returns ``K x roi_size x roi_size``."""
    images = np.asarray(noise_images, dtype=np.float64)
    if images.ndim == 2:
        images = images[None]
    mask = np.asarray(mask, bool)
    if images.ndim != 3 or mask.shape != images.shape[1:]:
        raise ParameterError(f"mask {mask.shape} must match the image shape {images.shape[1:]}")
    if isinstance(roi_size, bool) or not isinstance(roi_size, (int, np.integer)) or roi_size < 4:
        raise ParameterError(f"roi_size must be an int >= 4 (pixels), got {roi_size!r}")
    stride = roi_size if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ParameterError(f"stride must be an int >= 1 (pixels), got {stride!r}")
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ParameterError("mask is empty")

    def starts(lo: int, hi: int, n: int) -> list[int]:  # grid centred on [lo, hi]
        span = hi - lo + 1
        if span < roi_size:
            return []
        k = (span - roi_size) // stride
        first = lo + (span - roi_size - k * stride) // 2
        return [first + i * stride for i in range(k + 1) if first + i * stride + roi_size <= n]

    h, w = mask.shape
    corners = [(i, j) for i in starts(rows.min(), rows.max(), h) for j in starts(cols.min(), cols.max(), w)
               if mask[i:i + roi_size, j:j + roi_size].all()]
    if not corners:
        raise ParameterError(f"no {roi_size} x {roi_size} ROI fits inside the mask; use a smaller roi_size")
    return np.stack([img[i:i + roi_size, j:j + roi_size] for img in images for i, j in corners])


def simulated_nps(
    hu: np.ndarray,
    region: np.ndarray,
    n0: float,
    *,
    roi_size: int,
    stride: int | None = None,
    n_pairs: int = 4,
    seed: int = 0,
    **simulation,
) -> NoisePowerSpectrum:
    """NPS of the simulation: ``n_pairs`` pairs of independent acquisitions of ``hu`` at
    ``n0``; the noise images are (a - b) / sqrt(2) (no discretisation error), cut into
    ROIs inside ``region``. Keywords go to :func:`~ldct_nb.data.simulate.simulate_ldct`
    (``pixel_size_mm``, ``filter_name``, ...)."""
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
        raise ParameterError(f"n_pairs must be an int >= 1, got {n_pairs!r}")
    stack = np.stack([hu] * (2 * n_pairs))
    out = simulate_ldct(stack, float(n0), seed=[seed * 1000 + i for i in range(2 * n_pairs)], **simulation)
    noise = (out[0::2] - out[1::2]) / math.sqrt(2)
    return nps(noise_rois(noise, region, roi_size, stride=stride), float(simulation.get("pixel_size_mm", 0.7)))


# --------------------------------------------------------------------------- dose calibration


def water_reference(size: int, *, diameter_mm: float = 250.0, fov_mm: float = 360.0) -> tuple[np.ndarray, np.ndarray]:
    """The noise reference of the dose calibration: a water cylinder of ``diameter_mm``
    in a ``fov_mm`` field of view at ``size`` pixels, and the central disc of 60 % of
    its diameter where the noise is measured. Returns ``(hu, region)``."""
    return (uniform_cylinder(size, diameter_mm=diameter_mm, fov_mm=fov_mm),
            disc_mask(size, diameter_mm=0.6 * diameter_mm, fov_mm=fov_mm))


@dataclass(frozen=True)
class N0Calibration:
    """Result of :func:`calibrate_n0`: ``n0`` gives ``measured_hu`` (checked by a
    simulation with fresh seeds) for the target ``target_hu``; ``history`` lists the
    (N0, measured noise) of every simulation made."""

    n0: float
    target_hu: float
    measured_hu: float
    history: tuple[tuple[float, float], ...] = field(default=())

    @property
    def relative_error(self) -> float:
        return self.measured_hu / self.target_hu - 1.0

    def __repr__(self) -> str:
        return (f"N0Calibration(n0={self.n0:.4g}, target {self.target_hu:.2f} HU, measured "
                f"{self.measured_hu:.2f} HU ({self.relative_error:+.1%}), {len(self.history)} simulations)")


def _pair_noise(hu, region, n0: float, seeds: list[int], simulation: dict) -> float:
    stack = np.stack([hu] * len(seeds))
    out = simulate_ldct(stack, float(n0), seed=seeds, **simulation)
    diff = (out[0::2] - out[1::2])[:, region]
    return float(np.sqrt(np.mean(diff.var(axis=1)) / 2.0))


def calibrate_n0(
    target_hu: float,
    hu: np.ndarray,
    region: np.ndarray,
    *,
    n0_guess: float = 1e5,
    tolerance: float = 0.03,
    max_iterations: int = 6,
    n_pairs: int | None = None,
    seed: int = 0,
    significant_digits: int = 3,
    **simulation,
) -> N0Calibration:
    """The N0 at which the simulation of ``hu`` has noise ``target_hu`` (standard
    deviation in ``region``, HU).

    Photon noise gives sigma = k / sqrt(N0). Each simulation at some N0 gives
    an estimate sigma sqrt(N0) of k; their mean gives the next N0 = (k /
    target)^2 (rounded to ``significant_digits``). The first simulation is at
    ``n0_guess``; every later one, with fresh seeds, checks the N0 proposed so
    far, and the loop ends when the check is within ``tolerance`` (relative)
    of the target: the returned ``measured_hu`` is that independent check.
    The noise is measured as in :func:`noise_vs_dose`: std(a - b) / sqrt(2)
    over ``n_pairs`` pairs of acquisitions (default: enough pairs for about
    20000 region pixels, so small images are measured as precisely as large
    ones). Keywords go to :func:`~ldct_nb.data.simulate.simulate_ldct`
    (``pixel_size_mm``, ``filter_name``, ``n_views``, ``circle`` ...).

    Raises:
        ParameterError: bad arguments, or no N0 within ``max_iterations``.
    """
    for name, value in (("target_hu", target_hu), ("n0_guess", n0_guess), ("tolerance", tolerance)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ParameterError(f"{name} must be a positive number, got {value!r}")
    hu = np.asarray(hu, dtype=np.float32)
    region = np.asarray(region, bool)
    if hu.ndim != 2 or region.shape != hu.shape or region.sum() < 10:
        raise ParameterError(f"hu must be an H x W image and region a boolean mask of its shape with >= 10 pixels; "
                             f"got {hu.shape} and {region.shape}")
    if n_pairs is None:
        n_pairs = max(2, math.ceil(20_000 / int(region.sum())))
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
        raise ParameterError(f"n_pairs must be an int >= 1, got {n_pairs!r}")

    history: list[tuple[float, float]] = []
    n0 = float(n0_guess)
    for it in range(max_iterations + 1):
        seeds = [seed * 100_000 + 2 * n_pairs * it + i for i in range(2 * n_pairs)]
        measured = _pair_noise(hu, region, n0, seeds, simulation)
        history.append((n0, measured))
        if not (math.isfinite(measured) and measured > 0):
            raise ParameterError(f"calibrate_n0: no N0 gives {target_hu} HU: the simulation at N0 {n0:.4g} has "
                                 f"noise {measured} (check count_floor and the geometry)")
        if it > 0 and abs(measured / target_hu - 1) <= tolerance:
            return N0Calibration(n0, float(target_hu), measured, tuple(history))
        k = float(np.mean([m * math.sqrt(n) for n, m in history]))
        n0 = float(f"{(k / target_hu) ** 2:.{significant_digits}g}")
    raise ParameterError(f"calibrate_n0: no N0 gives {target_hu} HU within {tolerance:.0%} after "
                         f"{max_iterations} corrections (last: N0 {history[-1][0]:.4g} gave "
                         f"{history[-1][1]:.2f} HU); the geometry or the count floor may prevent it")


# --------------------------------------------------------------------------- texture of patches


def square_patch(image: np.ndarray, mask: np.ndarray, side: int, *, inside: bool = False
                 ) -> tuple[np.ndarray, tuple[int, int]]:
    """The ``side`` x ``side`` patch of ``image`` centred on the point of ``mask``
    farthest from its border (the most interior point). With ``inside`` the side is
    reduced (not below 2) until the patch lies within the mask's inscribed disc there.
    Returns ``(patch, (row, col))`` of its top-left corner."""
    image = np.asarray(image)
    mask = np.asarray(mask, bool)
    if image.ndim != 2 or mask.shape != image.shape or not mask.any():
        raise ParameterError(f"image must be H x W and mask a non-empty boolean mask of its shape; got "
                             f"{image.shape} and {mask.shape}")
    if isinstance(side, bool) or not isinstance(side, (int, np.integer)) or not 2 <= side <= min(image.shape):
        raise ParameterError(f"side must be an int in [2, {min(image.shape)}], got {side!r}")
    depth = ndimage.distance_transform_edt(mask)
    r, c = np.unravel_index(int(np.argmax(depth)), depth.shape)
    if inside:  # a square of side a centred in a disc of radius d fits when a / sqrt(2) <= d
        side = int(max(2, min(side, math.floor(math.sqrt(2) * float(depth[r, c])))))
    r0 = int(min(max(0, r - side // 2), image.shape[0] - side))
    c0 = int(min(max(0, c - side // 2), image.shape[1] - side))
    return image[r0:r0 + side, c0:c0 + side], (r0, c0)


def texture_stats(patch: np.ndarray, pixel_size_mm: float) -> dict[str, float]:
    """Standard deviation (HU) and correlation length (mm) of a patch: the lag at which
    its radially averaged autocorrelation (mean removed, circular, via the FFT) first
    falls below 1/2, linearly interpolated; 0 for white noise (below one pixel)."""
    patch = np.asarray(patch, dtype=np.float64)
    if patch.ndim != 2 or min(patch.shape) < 4:
        raise ParameterError(f"patch must be H x W with H, W >= 4, got shape {patch.shape}")
    x = patch - patch.mean()
    var = float(np.mean(x * x))
    if var == 0:
        return {"std_hu": 0.0, "correlation_length_mm": math.nan}
    acf = np.real(np.fft.ifft2(np.abs(np.fft.fft2(x)) ** 2)) / x.size / var
    h, w = x.shape
    dy = np.minimum(np.arange(h), h - np.arange(h))[:, None]
    dx = np.minimum(np.arange(w), w - np.arange(w))[None, :]
    lag = np.rint(np.hypot(dy, dx)).astype(int)
    n = min(h, w) // 2
    radial = np.bincount(lag.ravel(), weights=acf.ravel())[:n] / np.bincount(lag.ravel())[:n]
    below = np.nonzero(radial < 0.5)[0]
    if below.size == 0:
        length = float(n)
    else:
        k = int(below[0])
        length = k - 1 + (radial[k - 1] - 0.5) / (radial[k - 1] - radial[k])
    return {"std_hu": math.sqrt(var), "correlation_length_mm": length * float(pixel_size_mm)}
