"""Low-dose CT simulation: HU -> attenuation -> sinogram -> Poisson counts -> FBP -> HU.

This is the projection-domain simulation of LIDnet's reference [14]
(Gholizadeh-Ansari et al. 2019), which LIDnet uses to make its LDCT images
(N0 = 3000 for PE-CT, 1000 for L-CT-A / L-CT-G), and which the project also
uses to make the NDCT / LDCT pairs of the embedded synthetic benchmark.

Pipeline (one slice, parallel beam)::

    mu   = mu_water_per_mm * (1 + HU / 1000)                 [1/mm]
    p    = sum_along_ray(mu) * pixel_size_mm                 [dimensionless line integral]
    I    = Poisson(N0 * exp(-p)) (+ Normal(0, sigma_e))      [photon counts per detector bin and view]
    I    = max(I, count_floor)                               (zero counts would give log(0))
    p~   = -log(I / N0)
    mu~  = FBP(p~) / pixel_size_mm                           (ramp, or a windowed ramp)
    HU~  = 1000 * (mu~ / mu_water_per_mm - 1)

**Units and the meaning of N0.** Lengths are in millimetres: the attenuation
of water defaults to 0.0171 /mm (the value of [14]) and a ray through 300 mm of
water has p = 5.1. ``n0`` is the expected number of photons *per detector bin
per view* reaching the detector with no object in the beam; the detector bin
is one pixel wide and there are ``n_views`` views over 180 degrees (default:
as many views as pixels across, as in [14]). Image noise therefore depends on
N0, ``n_views``, the pixel size and ``mu_water_per_mm`` together: quote all of
them with an N0 value. Measured here on a 250 mm water cylinder at 512 x 512,
0.7 mm pixels, 512 views, ramp filter: 17.6 HU at N0 = 1e6, hence about 56 /
176 / 249 HU at 1e5 / 1e4 / 5e3. [14] reports 12 / 37 / 51 HU at those N0 on
patient images, about 4.6 times less: its N0 convention evidently differs (an
unstated length unit or detector binning), so to match [14]'s *noise* set N0
about 21 times higher (about 6 times with the cosine filter). The data stage
therefore gives doses by their noise and calibrates N0 to it
(:func:`ldct_nb.data.noise.calibrate_n0`, :mod:`ldct_nb.data.dose`). At fixed
N0 and views = pixels across, the noise standard deviation grows by sqrt(2) per
doubling of the resolution.

**Implementation.** Projection and back-projection are written with
:func:`torch.nn.functional.grid_sample` (bilinear): the forward projector
rotates the sampling grid and sums along rays (ray-driven), the back-projector
interpolates every filtered view at ``t = x cos(theta) + y sin(theta)``. The
ramp filter is the band-limited Ram-Lak filter built in the spatial domain
(Kak & Slaney, eq. 61), zero-padded to a power of two, which keeps the DC term
right (no cupping, no offset); ``filter_name`` multiplies it by the windows
of scikit-image's ``iradon`` (``shepp-logan``, ``cosine``, ``hamming``,
``hann``), optionally compressed below a cut-off. [14] uses the bare ramp, whose
noise power spectrum peaks near half the Nyquist frequency: finer-grained noise
than clinical body kernels (notebook 01 compares them). The same code runs on
a GPU when ``device`` is a CUDA device. scikit-image's ``radon`` / ``iradon``
would give the same images; they are written by hand here because they work
on one slice at a time with a Python loop over views and are slower
(``benchmarks/simulate.py`` measures the ratio).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ldct_nb.env import select_device
from ldct_nb.errors import ParameterError
from ldct_nb.validate import check_hu_image

MU_WATER_PER_MM = 0.0171  # [14]: attenuation of water, 1/mm

__all__ = [
    "FILTER_NAMES",
    "MU_WATER_PER_MM",
    "ParallelBeam",
    "check_filter",
    "filter_response",
    "hu_to_mu",
    "mu_to_hu",
    "reconstruct_noise_free",
    "simulate_ldct",
    "simulate_pair",
]


def hu_to_mu(hu: torch.Tensor | np.ndarray, mu_water_per_mm: float = MU_WATER_PER_MM):
    """Linear attenuation in 1/mm from Hounsfield units: mu = mu_w (1 + HU / 1000)."""
    return mu_water_per_mm * (1.0 + hu / 1000.0)


def mu_to_hu(mu: torch.Tensor | np.ndarray, mu_water_per_mm: float = MU_WATER_PER_MM):
    """Hounsfield units from linear attenuation in 1/mm (inverse of :func:`hu_to_mu`)."""
    return 1000.0 * (mu / mu_water_per_mm - 1.0)


FILTER_NAMES: tuple[str, ...] = ("ramp", "shepp-logan", "cosine", "hamming", "hann")
"""FBP filters, named as scikit-image's ``iradon(filter_name=...)``."""


def _filter_size(n_det: int) -> int:
    """FFT length: a power of two at least twice the detector (as scikit-image), so the
    circular convolution does not wrap."""
    return max(64, 1 << int(math.ceil(math.log2(2 * n_det))))


def check_filter(filter_name: str, filter_cutoff: float | None) -> tuple[str, float]:
    """Validate an FBP filter choice; return ``(filter_name, cutoff)`` with the cut-off
    as a fraction of the Nyquist frequency (1.0 when ``filter_cutoff`` is None)."""
    if not isinstance(filter_name, str) or filter_name not in FILTER_NAMES:
        raise ParameterError(f"filter_name must be one of {', '.join(FILTER_NAMES)} "
                             f"(scikit-image's iradon names), got {filter_name!r}")
    if filter_cutoff is None:
        return filter_name, 1.0
    if (isinstance(filter_cutoff, bool) or not isinstance(filter_cutoff, (int, float))
            or not math.isfinite(filter_cutoff) or not 0 < filter_cutoff <= 1):
        raise ParameterError(f"filter_cutoff must be None or a fraction of the Nyquist frequency "
                             f"in (0, 1], got {filter_cutoff!r}")
    return filter_name, float(filter_cutoff)


def filter_response(n_det: int, filter_name: str = "ramp", filter_cutoff: float | None = None):
    """Frequency response of the FBP filter for ``n_det`` detector bins.

    The ramp is the band-limited Ram-Lak filter built in the spatial domain
    (Kak & Slaney 1988, eq. 61, unit bin spacing): h(0) = 1/4,
    h(n odd) = -1 / (pi n)^2, h(n even) = 0, zero-padded to :func:`_filter_size`.
    The other filters multiply it by a window of the frequency u in cycles per
    bin (Nyquist u = 1/2), as scikit-image's ``iradon`` does: ``shepp-logan``
    sinc(u) = sin(pi u) / (pi u), ``cosine`` cos(pi u), ``hamming``
    0.54 + 0.46 cos(2 pi u), ``hann`` (0.5 + 0.5 cos(2 pi u)). A cut-off ``c``
    (fraction of Nyquist) compresses the window onto [0, c / 2] (the window is
    evaluated at u / c) and zeroes the response above it, as the frequency
    scaling of MATLAB's ``iradon``.

    Returns:
        ``(u, response)``: numpy arrays of length ``size // 2 + 1`` (rfft bins),
        ``u`` in cycles per detector bin.
    """
    filter_name, cutoff = check_filter(filter_name, filter_cutoff)
    size = _filter_size(n_det)
    n = np.concatenate([np.arange(1, size // 2 + 1, 2), np.arange(size // 2 - 1, 0, -2)])
    h = np.zeros(size)
    h[0] = 0.25
    h[1::2] = -1.0 / (np.pi * n) ** 2
    response = np.real(np.fft.rfft(h))
    u = np.fft.rfftfreq(size)
    x = u / cutoff  # window argument (cycles per bin, stretched by the cut-off)
    if filter_name == "shepp-logan":
        window = np.sinc(x)
    elif filter_name == "cosine":
        window = np.cos(np.pi * x)
    elif filter_name == "hamming":
        window = 0.54 + 0.46 * np.cos(2 * np.pi * x)
    elif filter_name == "hann":
        window = 0.5 + 0.5 * np.cos(2 * np.pi * x)
    else:
        window = np.ones_like(u)
    window[x > 0.5 + 1e-12] = 0.0
    return u, response * window


@lru_cache(maxsize=16)
def _filter_tensor(n_det: int, filter_name: str, cutoff: float, device: str) -> torch.Tensor:
    _, response = filter_response(n_det, filter_name, cutoff)
    return torch.as_tensor(response, dtype=torch.float32, device=device)


@dataclass(frozen=True)
class ParallelBeam:
    """Parallel-beam geometry for ``height x width`` images, angles in [0, pi).

    Detector bins and ray samples are one pixel apart. With ``circle=True``
    only the disc inscribed in the image is projected (the detector is
    ``max(height, width)`` bins long, as scikit-image's ``circle=True``); with
    ``circle=False`` the detector covers the image diagonal, so content in the
    corners (a patient table, real data) is projected too. With ``circle=True``
    content outside the disc of radius ``(n_det - 1) / 2`` is set to zero (air)
    before projecting, since only some of the views would see it.
    """

    height: int
    width: int
    n_views: int
    circle: bool = False

    def __post_init__(self) -> None:
        for name in ("height", "width", "n_views"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ParameterError(f"ParallelBeam: {name} must be an int >= 2, got {value!r}")

    @property
    def n_det(self) -> int:
        """Number of detector bins."""
        if self.circle:
            return max(self.height, self.width)
        return int(math.ceil(math.hypot(self.height, self.width))) | 1  # odd: a bin at t = 0

    @property
    def angles(self) -> torch.Tensor:
        """View angles in radians, ``n_views`` equally spaced over [0, pi)."""
        return torch.arange(self.n_views, dtype=torch.float64) * (math.pi / self.n_views)

    # -- grids, cached per geometry and device (bounded, see _cached_grid) ---------------
    def _forward_grid(self, device: str, views: slice) -> torch.Tensor:
        return _cached_grid(_forward_grid, self, device, views.start, views.stop)

    def _back_grid(self, device: str, views: slice) -> torch.Tensor:
        return _cached_grid(_back_grid, self, device, views.start, views.stop)

    def _chunks(self, budget: int = 2**24) -> list[slice]:
        per_view = max(self.n_det * self.n_det, self.height * self.width)  # samples per view
        step = max(1, min(self.n_views, budget // per_view))
        return [slice(s, min(s + step, self.n_views)) for s in range(0, self.n_views, step)]

    # -- operators ----------------------------------------------------------------------
    def project(self, image: torch.Tensor) -> torch.Tensor:
        """Line integrals (in pixel units) of ``image`` (B x H x W) -> sinogram B x V x D."""
        image = self._check_image(image)
        if self.circle:  # content outside the disc would be seen by some views only (streaks)
            image = image * _inscribed_disc(self, str(image.device))
        b = image.shape[0]
        inp = image.unsqueeze(0)  # batch as channels: every slice shares the grid
        out = []
        for views in self._chunks():
            grid = self._forward_grid(str(image.device), views)  # 1 x (v*D) x D x 2
            samples = F.grid_sample(inp, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            nv = views.stop - views.start
            out.append(samples.view(b, nv, self.n_det, self.n_det).sum(dim=-1))
        return torch.cat(out, dim=1)

    def backproject(self, sinogram: torch.Tensor) -> torch.Tensor:
        """Unfiltered back-projection of a B x V x D sinogram -> B x H x W (sum over views)."""
        b = sinogram.shape[0]
        image = sinogram.new_zeros(b, self.height * self.width)
        for views in self._chunks():
            grid = self._back_grid(str(sinogram.device), views)  # v x 1 x HW x 2
            inp = sinogram[:, views, :].transpose(0, 1).unsqueeze(2)  # v x B x 1 x D
            vals = F.grid_sample(inp, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            image += vals.sum(dim=0).view(b, -1)
        return image.view(b, self.height, self.width)

    def filter(self, sinogram: torch.Tensor, filter_name: str = "ramp",
               filter_cutoff: float | None = None) -> torch.Tensor:
        """Apply the FBP filter (:func:`filter_response`) along the detector axis."""
        filter_name, cutoff = check_filter(filter_name, filter_cutoff)
        response = _filter_tensor(self.n_det, filter_name, cutoff, str(sinogram.device))
        size = 2 * (response.shape[0] - 1)
        spectrum = torch.fft.rfft(sinogram, n=size, dim=-1) * response
        return torch.fft.irfft(spectrum, n=size, dim=-1)[..., : self.n_det]

    def fbp(self, sinogram: torch.Tensor, filter_name: str = "ramp",
            filter_cutoff: float | None = None) -> torch.Tensor:
        """Filtered back-projection (pixel units in, per-pixel attenuation out) with the
        filter ``filter_name`` (one of :data:`FILTER_NAMES`) and optional cut-off."""
        if sinogram.ndim != 3 or sinogram.shape[1:] != (self.n_views, self.n_det):
            raise ParameterError(
                f"ParallelBeam.fbp: sinogram must be B x {self.n_views} x {self.n_det}, "
                f"got {tuple(sinogram.shape)}"
            )
        image = self.backproject(self.filter(sinogram, filter_name, filter_cutoff)) * (math.pi / self.n_views)
        if self.circle:  # outside the scanned disc nothing was measured: zero attenuation (air)
            image = image * _inscribed_disc(self, str(image.device))
        return image

    def _check_image(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 3 or image.shape[1:] != (self.height, self.width):
            raise ParameterError(
                f"ParallelBeam.project: image must be B x {self.height} x {self.width}, "
                f"got {tuple(image.shape)}"
            )
        return image.float()


GRID_CACHE_BYTES = 768 * 2**20
"""Memory the sampling grids may keep between calls (making a grid costs about
three times as much as sampling with it; at 512 x 512 the grids of all views
take gigabytes, so the least recently used ones are dropped)."""
_GRID_CACHE: OrderedDict[tuple, torch.Tensor] = OrderedDict()


def _cached_grid(make, geom: ParallelBeam, device: str, v0: int, v1: int) -> torch.Tensor:
    key = (make.__name__, geom, device, v0, v1)
    grid = _GRID_CACHE.get(key)
    if grid is None:
        grid = make(geom, device, v0, v1)
        nbytes = grid.numel() * grid.element_size()
        if nbytes <= GRID_CACHE_BYTES:
            _GRID_CACHE[key] = grid
            total = sum(g.numel() * g.element_size() for g in _GRID_CACHE.values())
            while total > GRID_CACHE_BYTES:
                _, old = _GRID_CACHE.popitem(last=False)
                total -= old.numel() * old.element_size()
    else:
        _GRID_CACHE.move_to_end(key)
    return grid


@lru_cache(maxsize=8)
def _inscribed_disc(geom: ParallelBeam, device: str) -> torch.Tensor:
    """1 inside the disc of radius (n_det - 1) / 2 that every view sees whole, else 0 (H x W)."""
    x = torch.arange(geom.width, dtype=torch.float32, device=device) - (geom.width - 1) / 2
    y = torch.arange(geom.height, dtype=torch.float32, device=device) - (geom.height - 1) / 2
    radius = (geom.n_det - 1) / 2
    return ((y[:, None] ** 2 + x[None, :] ** 2) <= radius**2 + 1e-3).float()


def _forward_grid(geom: ParallelBeam, device: str, v0: int, v1: int) -> torch.Tensor:
    """Sampling points of rays (theta, t) at steps s, normalised for grid_sample.

    x = t cos(theta) - s sin(theta) (columns), y = t sin(theta) + s cos(theta)
    (rows); written straight into the output with outer differences / sums,
    which is about twice as fast as broadcasting and stacking.
    """
    d = geom.n_det
    theta = geom.angles[v0:v1].to(device=device, dtype=torch.float32)
    t = torch.arange(d, dtype=torch.float32, device=device) - (d - 1) / 2  # detector t and ray step s alike
    t_cos, t_sin = t[None, :] * torch.cos(theta)[:, None], t[None, :] * torch.sin(theta)[:, None]
    kx, ky = 2.0 / (geom.width - 1), 2.0 / (geom.height - 1)
    grid = torch.empty(len(theta), d, d, 2, dtype=torch.float32, device=device)
    torch.sub((t_cos * kx)[:, :, None], (t_sin * kx)[:, None, :], out=grid[..., 0])
    torch.add((t_sin * ky)[:, :, None], (t_cos * ky)[:, None, :], out=grid[..., 1])
    return grid.view(1, -1, d, 2)


def _back_grid(geom: ParallelBeam, device: str, v0: int, v1: int) -> torch.Tensor:
    """Detector coordinate t = x cos + y sin of every pixel, per view, normalised."""
    theta = geom.angles[v0:v1].to(device=device, dtype=torch.float32)
    x = torch.arange(geom.width, dtype=torch.float32, device=device) - (geom.width - 1) / 2
    y = torch.arange(geom.height, dtype=torch.float32, device=device) - (geom.height - 1) / 2
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    t = xx.reshape(1, -1) * torch.cos(theta)[:, None] + yy.reshape(1, -1) * torch.sin(theta)[:, None]
    gx = t * (2.0 / (geom.n_det - 1))
    return torch.stack([gx, torch.zeros_like(gx)], dim=-1).unsqueeze(1)  # v x 1 x HW x 2


def _as_batch(hu, name: str) -> tuple[torch.Tensor, bool, bool]:
    """Validate an HU image or batch; return (B x H x W tensor, was_2d, was_numpy)."""
    was_numpy = isinstance(hu, np.ndarray)
    if not (was_numpy or isinstance(hu, torch.Tensor)):
        raise ParameterError(f"{name} must be a numpy array or torch tensor, got {type(hu).__name__}")
    if was_numpy:
        arr = np.ascontiguousarray(hu)
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # read-only memory maps (the cache)
    else:
        t = hu
    if t.ndim not in (2, 3):
        raise ParameterError(f"{name} must be H x W or B x H x W, got shape {tuple(t.shape)}")
    if not torch.is_floating_point(t):
        t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise ParameterError(f"{name} contains NaN or infinite values")
    was_2d = t.ndim == 2
    return (t.unsqueeze(0) if was_2d else t), was_2d, was_numpy


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ParameterError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _generators(seed, batch: int, device: torch.device) -> list[torch.Generator]:
    """One generator for the batch (int seed) or one per slice (sequence of seeds)."""

    def make(value) -> torch.Generator:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ParameterError(f"seed values must be ints >= 0, got {value!r}")
        gen = torch.Generator(device=device)
        gen.manual_seed(int(value))
        return gen

    if isinstance(seed, (int, np.integer, bool)):
        return [make(seed)] * batch  # one stream, slices drawn in order
    if not isinstance(seed, (list, tuple, np.ndarray)) or len(seed) != batch:
        raise ParameterError(f"seed must be an int or a sequence of {batch} ints (one per slice), got {seed!r}")
    return [make(s) for s in seed]


def _check_options(pixel_size_mm, mu_water_per_mm, electronic_noise_std, count_floor) -> None:
    _check_positive("pixel_size_mm", pixel_size_mm)
    _check_positive("mu_water_per_mm", mu_water_per_mm)
    _check_positive("count_floor", count_floor)
    if (
        isinstance(electronic_noise_std, bool)
        or not isinstance(electronic_noise_std, (int, float))
        or not electronic_noise_std >= 0
    ):
        raise ParameterError(f"electronic_noise_std must be a number >= 0, got {electronic_noise_std!r}")


def _line_integrals(image: torch.Tensor, geom: ParallelBeam, pixel_size_mm: float, mu_water_per_mm: float, dev):
    """Noise-free line integrals p (dimensionless) of B x H x W HU images."""
    mu_pixel = hu_to_mu(image.to(dev, torch.float32), mu_water_per_mm) * pixel_size_mm
    return geom.project(mu_pixel).double()


def _noisy_fbp(
    line_integrals: torch.Tensor,
    geom: ParallelBeam,
    n0: float,
    gens: list[torch.Generator],
    *,
    pixel_size_mm: float,
    mu_water_per_mm: float,
    electronic_noise_std: float,
    count_floor: float,
    filter_name: str = "ramp",
    filter_cutoff: float | None = None,
) -> torch.Tensor:
    """Poisson (+ Gaussian) counts at ``n0``, log, FBP, back to HU (B x H x W)."""
    if n0 == math.inf:  # noise-free reconstruction
        return mu_to_hu(geom.fbp(line_integrals.float(), filter_name, filter_cutoff) / pixel_size_mm,
                        mu_water_per_mm)
    expected = n0 * torch.exp(-line_integrals)
    counts = torch.empty_like(expected)
    for i, gen in enumerate(gens):
        counts[i] = torch.poisson(expected[i], generator=gen)
        if electronic_noise_std > 0:
            noise = torch.randn(expected[i].shape, generator=gen, dtype=expected.dtype, device=expected.device)
            counts[i] += electronic_noise_std * noise
    noisy = (-torch.log(counts.clamp_min(count_floor) / n0)).float()
    return mu_to_hu(geom.fbp(noisy, filter_name, filter_cutoff) / pixel_size_mm, mu_water_per_mm)


def simulate_ldct(
    hu,
    n0: float,
    *,
    seed: int | Sequence[int],
    pixel_size_mm: float = 0.7,
    mu_water_per_mm: float = MU_WATER_PER_MM,
    n_views: int | None = None,
    electronic_noise_std: float = 0.0,
    count_floor: float = 1.0,
    circle: bool = False,
    filter_name: str = "ramp",
    filter_cutoff: float | None = None,
    device: str | torch.device | None = None,
):
    """Simulate a CT acquisition of ``hu`` at ``n0`` incident photons and reconstruct it.

    Args:
        hu: image(s) in Hounsfield units, H x W or B x H x W (numpy or torch).
        n0: incident photons per detector bin per view (blank scan), > 0. LIDnet
            uses 3000 (PE-CT) and 1000 (L-CT-A, L-CT-G) in this convention.
        seed: int (one random stream for the batch) or one int per slice, so a
            slice's noise does not depend on which batch it was simulated in.
        pixel_size_mm: pixel size in mm (the ray step and detector bin width).
        mu_water_per_mm: attenuation of water in 1/mm (0.0171, [14]).
        n_views: views over 180 degrees; default max(H, W), as in [14].
        electronic_noise_std: standard deviation of additive Gaussian noise on
            the counts (Zeng et al. 2015); 0 disables it.
        count_floor: counts below this are set to it before the log (> 0).
        circle: project only the inscribed disc (see :class:`ParallelBeam`).
        filter_name: FBP filter, one of :data:`FILTER_NAMES` (scikit-image's
            ``iradon`` names); ``"ramp"`` is [14]'s. The smoother windows shift
            the noise power spectrum to lower frequencies (clinical kernels).
        filter_cutoff: optional cut-off as a fraction of the Nyquist frequency
            in (0, 1] (see :func:`filter_response`); None means 1.
        device: torch device for the computation (default: the input's).

    Returns:
        The reconstructed image(s) in HU, float32, same shape and array type
        (numpy or torch, on the input's device) as ``hu``.
    """
    check_hu_image(hu, "hu")  # HU, not [0, 1]; finite; within [-1100, 4000]
    if device is not None:
        device = select_device(device, name="device")
    if not (isinstance(n0, (int, float)) and not isinstance(n0, bool) and math.isfinite(n0)):
        raise ParameterError(f"n0 must be a finite positive number of photons, got {n0!r}")
    return _simulate(
        hu, [n0], [seed], pixel_size_mm=pixel_size_mm, mu_water_per_mm=mu_water_per_mm, n_views=n_views,
        electronic_noise_std=electronic_noise_std, count_floor=count_floor, circle=circle,
        filter_name=filter_name, filter_cutoff=filter_cutoff, device=device,
    )[0]


def reconstruct_noise_free(hu, **kwargs):
    """FBP of the noise-free projections of ``hu`` (keywords as :func:`simulate_ldct`).

    The difference between this and :func:`simulate_ldct` at the same geometry
    is pure quantum noise; the difference between this and ``hu`` is the
    discretisation error of projecting and reconstructing.
    """
    check_hu_image(hu, "hu")  # HU, not [0, 1]; finite; within [-1100, 4000]
    if kwargs.get("device") is not None:
        kwargs["device"] = select_device(kwargs["device"], name="device")
    kwargs.pop("seed", None)
    return _simulate(hu, [math.inf], [0], **kwargs)[0]


def simulate_pair(
    hu,
    *,
    n0_full: float,
    dose_fraction: float,
    seed: int | Sequence[int],
    **kwargs,
):
    """NDCT and LDCT of the same object: the pipeline of :func:`simulate_ldct` at
    ``n0_full`` and at ``dose_fraction * n0_full`` (Mayo's quarter dose is 0.25),
    with independent noise, projecting the object once.

    ``seed`` (an int, or one per slice) seeds the two noise streams as
    ``2 * seed`` (full dose) and ``2 * seed + 1`` (low dose). Other keywords go
    to :func:`simulate_ldct`. Returns ``(ndct_hu, ldct_hu)``.
    """
    check_hu_image(hu, "hu")  # HU, not [0, 1]; finite; within [-1100, 4000]
    if kwargs.get("device") is not None:
        kwargs["device"] = select_device(kwargs["device"], name="device")
    fraction = _check_positive("dose_fraction", dose_fraction)
    if fraction > 1:
        raise ParameterError(f"dose_fraction must be in (0, 1], got {dose_fraction!r}")
    n0_full = _check_positive("n0_full", n0_full)
    if isinstance(seed, (list, tuple, np.ndarray)):
        for value in seed:  # checked here: the message must quote the user's value, not 2 * value
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ParameterError(f"seed values must be ints >= 0, got {value!r}")
        seeds = ([2 * int(s) for s in seed], [2 * int(s) + 1 for s in seed])
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be an int >= 0 or a sequence of them, got {seed!r}")
    else:
        seeds = (2 * int(seed), 2 * int(seed) + 1)
    ndct, ldct = _simulate(hu, [n0_full, n0_full * fraction], list(seeds), **kwargs)
    return ndct, ldct


def _simulate(
    hu,
    n0s: list[float],
    seeds: list,
    *,
    pixel_size_mm: float = 0.7,
    mu_water_per_mm: float = MU_WATER_PER_MM,
    n_views: int | None = None,
    electronic_noise_std: float = 0.0,
    count_floor: float = 1.0,
    circle: bool = False,
    filter_name: str = "ramp",
    filter_cutoff: float | None = None,
    device: str | torch.device | None = None,
) -> list:
    """Project once, then reconstruct at each dose in ``n0s`` with its seed."""
    image, was_2d, was_numpy = _as_batch(hu, "hu")
    filter_name, cutoff = check_filter(filter_name, filter_cutoff)
    n0s = [n0 if n0 == math.inf else _check_positive("n0", n0) for n0 in n0s]
    _check_options(pixel_size_mm, mu_water_per_mm, electronic_noise_std, count_floor)
    b, h, w = image.shape
    if n_views is None:
        n_views = max(h, w)
    dev = torch.device(device) if device is not None else image.device
    geom = ParallelBeam(h, w, n_views, circle)
    gens = [_generators(seed, b, dev) for seed in seeds]
    options = dict(pixel_size_mm=float(pixel_size_mm), mu_water_per_mm=float(mu_water_per_mm),
                   electronic_noise_std=float(electronic_noise_std), count_floor=float(count_floor),
                   filter_name=filter_name, filter_cutoff=cutoff)
    outputs = []
    with torch.no_grad():
        p = _line_integrals(image, geom, options["pixel_size_mm"], options["mu_water_per_mm"], dev)
        if dev.type == "mps":  # no float64 on Apple GPUs
            p = p.float()
        for n0, gen in zip(n0s, gens):
            out = _noisy_fbp(p, geom, n0, gen, **options).to(image.device)
            out = out[0] if was_2d else out
            outputs.append(out.numpy() if was_numpy else out)
    return outputs
