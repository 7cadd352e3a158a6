"""Tests of the low-dose CT simulation (ldct_nb.data.simulate).

The properties checked are those the simulation must have to stand in for
LIDnet's projection-domain noise (its reference [14]): noise standard deviation
proportional to 1 / sqrt(N0), unbiased mean HU, a projector that computes line
integrals (checked against the analytic chord of a disc and against
scikit-image's ``radon`` / ``iradon``), reproducible per-slice seeding, and
input validation that names the offending parameter.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.transform import iradon, radon

from ldct_nb.data.noise import disc_mask, uniform_cylinder
from ldct_nb.data.phantom import make_phantom
from ldct_nb.data.simulate import (
    MU_WATER_PER_MM,
    ParallelBeam,
    hu_to_mu,
    mu_to_hu,
    reconstruct_noise_free,
    simulate_ldct,
    simulate_pair,
)
from ldct_nb.errors import ParameterError

FOV_MM = 360.0  # uniform_cylinder's default field of view


def _pixel_mm(size: int) -> float:
    return FOV_MM / size


def _noise_std(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    """Noise std from two independent realisations: std(a - b) / sqrt(2) in ``region``."""
    return float(np.std((a - b)[..., region]) / math.sqrt(2))


def _smooth_disc(size: int, radius: float, x0: float, y0: float, oversample: int = 8) -> np.ndarray:
    """Area fraction of each pixel inside a disc (pixel units, centre offset from the image centre)."""
    c = (size - 1) / 2
    sub = (np.arange(size * oversample) + 0.5) / oversample - 0.5
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    inside = np.hypot(yy - c - y0, xx - c - x0) <= radius
    return inside.reshape(size, oversample, size, oversample).mean(axis=(1, 3)).astype(np.float32)


def _cylinder_with_insert(size: int, insert_hu: float = 200.0):
    """Water cylinder with a round insert right of centre; returns (hu, water region, insert core)."""
    hu = uniform_cylinder(size)
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    r_insert = np.hypot(yy - c, xx - (c + 0.23 * size))
    hu[r_insert <= 0.09 * size] = insert_hu
    core = r_insert <= 0.06 * size
    water = disc_mask(size, diameter_mm=150.0) & (r_insert > 0.13 * size)
    return hu, water, core


# ------------------------------------------------------------------ units


def test_hu_mu_conversion() -> None:
    assert hu_to_mu(0.0) == pytest.approx(MU_WATER_PER_MM)
    assert hu_to_mu(-1000.0) == pytest.approx(0.0)
    assert hu_to_mu(1000.0, 0.02) == pytest.approx(0.04)
    hu = np.array([-1000.0, -50.0, 0.0, 40.0, 1500.0])
    np.testing.assert_allclose(mu_to_hu(hu_to_mu(hu)), hu, atol=1e-9)


# -------------------------------------------------------------- projector


@pytest.mark.parametrize("circle", [True, False])
def test_project_matches_analytic_disc(circle: bool) -> None:
    """Line integral of a disc of radius r is the chord 2 sqrt(r^2 - (t - t0)^2),
    t0 = x0 cos(theta) + y0 sin(theta) (x along columns, y along rows)."""
    size, r, x0, y0 = 64, 20.0, 6.0, -4.0
    geom = ParallelBeam(size, size, 90, circle=circle)
    sino = geom.project(torch.from_numpy(_smooth_disc(size, r, x0, y0))[None])[0].numpy()
    assert sino.shape == (90, geom.n_det)
    t = np.arange(geom.n_det) - (geom.n_det - 1) / 2
    theta = geom.angles.numpy()[:, None]
    dt = t[None, :] - (x0 * np.cos(theta) + y0 * np.sin(theta))
    chord = 2 * np.sqrt(np.clip(r**2 - dt**2, 0, None))
    away = np.abs(dt) < r - 2
    err = np.abs(sino - chord)
    assert err[away].max() < 0.6  # pixel units, chords up to 40
    assert err[away].mean() < 0.1
    assert np.abs(sino[np.abs(dt) > r + 1.5]).max() < 0.01  # nothing outside the shadow


def _two_discs(size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    return ((np.hypot(yy - c - 8, xx - c + 5) <= 10) * 1.0 + (np.hypot(yy - c + 10, xx - c - 12) <= 5) * 2.0).astype(
        np.float32
    )


def test_project_and_fbp_match_skimage() -> None:
    """With an odd size (same detector centre) and circle=True the geometries coincide:
    our angle theta is scikit-image's -theta in degrees (its y axis points up)."""
    size = 65
    img = _two_discs(size)
    geom = ParallelBeam(size, size, 64, circle=True)
    degrees = -np.rad2deg(geom.angles.numpy())
    sk_sino = radon(img.astype(np.float64), theta=degrees, circle=True)  # D x V
    ours = geom.project(torch.from_numpy(img)[None])[0].numpy()
    np.testing.assert_allclose(ours, sk_sino.T, atol=1e-3 * sk_sino.max())

    sk_rec = iradon(sk_sino, theta=degrees, filter_name="ramp", circle=True)
    our_rec = geom.fbp(torch.from_numpy(np.ascontiguousarray(sk_sino.T, np.float32))[None])[0].numpy()
    yy, xx = np.mgrid[:size, :size]
    inside = np.hypot(yy - size // 2, xx - size // 2) < size / 2 - 3
    np.testing.assert_allclose(our_rec[inside], sk_rec[inside], atol=1e-4)


@pytest.mark.parametrize("kind", ["abdomen", "chest"])
def test_noise_free_reconstruction_as_good_as_skimage(kind: str) -> None:
    size = 128
    phantom = make_phantom(size, 0, kind)
    px = 0.7 * 512 / size
    ours = reconstruct_noise_free(phantom.hu, pixel_size_mm=px)
    mu = hu_to_mu(phantom.hu.astype(np.float64)) * px
    theta = np.arange(size) * 180.0 / size
    sk_mu = iradon(radon(mu, theta=theta, circle=False), theta=theta, filter_name="ramp", circle=False,
                   output_size=size)
    sk = mu_to_hu(sk_mu / px)
    body = ndimage.binary_erosion(phantom.labels > 0, iterations=3)
    rmse_ours = float(np.sqrt(np.mean((ours - phantom.hu)[body] ** 2)))
    rmse_sk = float(np.sqrt(np.mean((sk - phantom.hu)[body] ** 2)))
    spread = float(phantom.hu[body].std())
    assert rmse_sk < 0.5 * spread  # the comparison is meaningful: both are close to the phantom
    assert rmse_ours <= 1.2 * rmse_sk
    assert abs(float(np.mean((ours - phantom.hu)[body]))) < 5.0


# ------------------------------------------------------------ noise and bias


def test_noise_scales_as_inverse_sqrt_n0() -> None:
    size = 96
    hu = uniform_cylinder(size)
    region = disc_mask(size, diameter_mm=150.0)
    n0s = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    stds = []
    for i, n0 in enumerate(n0s):
        a, b = simulate_ldct(np.stack([hu, hu]), float(n0), seed=[2 * i, 2 * i + 1], pixel_size_mm=_pixel_mm(size))
        stds.append(_noise_std(a, b, region))
    stds = np.array(stds)
    x = 1 / np.sqrt(n0s)
    k = np.sum(x * stds) / np.sum(x * x)  # least squares through the origin
    np.testing.assert_array_less(np.abs(stds / (k * x) - 1), 0.15)
    assert stds[0] > 20 and np.all(np.diff(stds) < 0)  # the noise is real and falls with dose


def test_noise_level_matches_the_documented_pipeline() -> None:
    """Absolute noise: the same as counts ~ Poisson(N0 exp(-p)) drawn with numpy,
    p~ = -log(counts / N0), FBP (the module docstring's pipeline), within 10 %."""
    size, n0, px = 96, 1e4, _pixel_mm(96)
    hu = uniform_cylinder(size)
    region = disc_mask(size, diameter_mm=150.0)
    geom = ParallelBeam(size, size, size)
    p = geom.project(torch.from_numpy(hu_to_mu(hu) * px)[None]).double().numpy()
    counts = np.random.default_rng(0).poisson(n0 * np.exp(-p), size=(4, *p.shape[1:]))
    p_noisy = torch.from_numpy(-np.log(np.maximum(counts, 1) / n0)).float()
    reference = mu_to_hu(geom.fbp(p_noisy).numpy() / px)
    ours = simulate_ldct(np.stack([hu] * 4), n0, seed=[0, 1, 2, 3], pixel_size_mm=px)
    std_ref = _noise_std(reference[0::2], reference[1::2], region)
    std_ours = _noise_std(ours[0::2], ours[1::2], region)
    assert std_ours == pytest.approx(std_ref, rel=0.1)


def test_noise_grows_sqrt2_per_doubling_of_resolution() -> None:
    """Same field of view and N0, views = pixels across: halving the pixel multiplies the
    noise standard deviation by about sqrt(2) (module docstring)."""
    stds = {}
    for size in (64, 128):
        hu = uniform_cylinder(size)
        out = simulate_ldct(np.stack([hu] * 6), 1e4, seed=list(range(size, size + 6)), pixel_size_mm=_pixel_mm(size))
        stds[size] = _noise_std(out[0::2], out[1::2], disc_mask(size, diameter_mm=150.0))
    assert stds[128] / stds[64] == pytest.approx(math.sqrt(2), rel=0.15)


def test_mean_hu_unbiased_at_full_dose() -> None:
    size = 128
    hu, water, core = _cylinder_with_insert(size, 200.0)
    opts = dict(pixel_size_mm=_pixel_mm(size))
    clean = reconstruct_noise_free(hu, **opts)
    full = simulate_ldct(hu, 1e6, seed=0, **opts)
    for image in (clean, full):
        assert abs(float(image[water].mean())) < 5.0
        assert abs(float(image[core].mean()) - 200.0) < 10.0
    # the insert is not smeared into the water: the contrast is there
    assert float(clean[core].mean() - clean[water].mean()) == pytest.approx(200.0, abs=10.0)


def test_lidnet_doses_noise_ratio() -> None:
    """LIDnet's N0 = 1000 (L-CT) vs 3000 (PE-CT): noise ratio about sqrt(3) (128 views at 128 px)."""
    size = 128
    hu = uniform_cylinder(size)
    region = disc_mask(size, diameter_mm=150.0)
    opts = dict(pixel_size_mm=0.7 * 512 / size, n_views=128)
    clean = reconstruct_noise_free(hu, **opts)
    std = {n0: float(np.std((simulate_ldct(np.stack([hu, hu]), n0, seed=[n0, n0 + 1], **opts) - clean)[:, region]))
           for n0 in (1000, 3000)}
    assert std[1000] / std[3000] == pytest.approx(math.sqrt(3), rel=0.15)


def test_electronic_noise_increases_noise() -> None:
    size = 64
    hu = uniform_cylinder(size)
    region = disc_mask(size, diameter_mm=150.0)
    clean = reconstruct_noise_free(hu, pixel_size_mm=_pixel_mm(size))
    stds = []
    for sigma in (0.0, 50.0, 150.0):  # counts ~ 1e4 * exp(-p) ~ 2000-1e4 per bin, Poisson std ~ 50-100
        noisy = simulate_ldct(hu, 1e4, seed=3, pixel_size_mm=_pixel_mm(size), electronic_noise_std=sigma)
        stds.append(float(np.std((noisy - clean)[region])))
    assert stds[0] < stds[1] < stds[2]
    assert stds[2] > 1.3 * stds[0]


@pytest.mark.parametrize("n0", [1.0, 0.01])
def test_count_floor_keeps_images_finite(n0: float) -> None:
    hu = uniform_cylinder(64)
    for kwargs in ({}, {"electronic_noise_std": 5.0}, {"count_floor": 0.1}):
        out = simulate_ldct(hu, n0, seed=0, **kwargs)
        assert np.isfinite(out).all(), kwargs


# ------------------------------------------------------------------ seeding


def test_batch_with_per_slice_seeds_equals_single_slices() -> None:
    batch = np.stack([uniform_cylinder(64, hu=h) for h in (0.0, 60.0, -100.0)])
    seeds = [3, 5, 9]
    together = simulate_ldct(batch, 1e4, seed=seeds, electronic_noise_std=2.0)
    for i, seed in enumerate(seeds):
        alone = simulate_ldct(batch[i], 1e4, seed=seed, electronic_noise_std=2.0)
        np.testing.assert_array_equal(together[i], alone)


def test_int_seed_is_deterministic() -> None:
    hu = uniform_cylinder(64)
    a = simulate_ldct(hu, 1e4, seed=7)
    np.testing.assert_array_equal(a, simulate_ldct(hu, 1e4, seed=7))
    assert np.abs(a - simulate_ldct(hu, 1e4, seed=8)).mean() > 1.0
    # one stream for the batch: identical slices get different noise
    batch = simulate_ldct(np.stack([hu, hu]), 1e4, seed=7)
    np.testing.assert_array_equal(batch[0], a)
    assert np.abs(batch[0] - batch[1]).mean() > 1.0


def test_array_types_and_shapes() -> None:
    hu = uniform_cylinder(64)
    out_np = simulate_ldct(hu, 1e5, seed=1)
    assert isinstance(out_np, np.ndarray) and out_np.shape == (64, 64) and out_np.dtype == np.float32
    out_t = simulate_ldct(torch.from_numpy(hu), 1e5, seed=1)
    assert isinstance(out_t, torch.Tensor) and out_t.shape == (64, 64) and out_t.dtype == torch.float32
    np.testing.assert_array_equal(out_t.numpy(), out_np)
    out_64 = simulate_ldct(hu.astype(np.float64), 1e5, seed=1)
    assert out_64.dtype == np.float32
    np.testing.assert_array_equal(out_64, out_np)
    out_int = simulate_ldct(np.round(hu).astype(np.int16), 1e5, seed=1)
    assert out_int.dtype == np.float32
    np.testing.assert_array_equal(out_int, out_np)
    batch = simulate_ldct(torch.from_numpy(np.stack([hu, hu])), 1e5, seed=[1, 2])
    assert isinstance(batch, torch.Tensor) and batch.shape == (2, 64, 64) and batch.dtype == torch.float32
    ndct, ldct = simulate_pair(torch.from_numpy(hu), n0_full=1e5, dose_fraction=0.5, seed=0)
    assert isinstance(ndct, torch.Tensor) and ndct.shape == (64, 64) and ldct.dtype == torch.float32
    clean = reconstruct_noise_free(hu)
    assert isinstance(clean, np.ndarray) and clean.dtype == np.float32


def test_read_only_input_is_simulated_without_warning_and_left_untouched() -> None:
    # The cache hands the simulator read-only memory maps; torch warned about them and a write would crash.
    import warnings

    hu = uniform_cylinder(64)
    frozen = hu.copy()
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = simulate_ldct(frozen, 1e5, seed=1)
    np.testing.assert_array_equal(out, simulate_ldct(hu, 1e5, seed=1))
    np.testing.assert_array_equal(frozen, hu)


def test_explicit_cpu_device() -> None:
    hu = uniform_cylinder(64)
    np.testing.assert_array_equal(simulate_ldct(hu, 1e4, seed=2, device="cpu"), simulate_ldct(hu, 1e4, seed=2))
    out = simulate_ldct(torch.from_numpy(hu), 1e4, seed=2, device=torch.device("cpu"))
    assert out.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device() -> None:
    size = 64
    hu = uniform_cylinder(size)
    region = disc_mask(size, diameter_mm=150.0)
    clean_cpu = reconstruct_noise_free(hu)
    clean_gpu = reconstruct_noise_free(hu, device="cuda")
    assert isinstance(clean_gpu, np.ndarray)
    np.testing.assert_allclose(clean_gpu, clean_cpu, atol=0.5)
    out = simulate_ldct(torch.from_numpy(np.stack([hu, hu])).cuda(), 1e4, seed=[0, 1])
    assert out.device.type == "cuda" and out.dtype == torch.float32
    out = out.cpu().numpy()
    np.testing.assert_array_equal(out[0], simulate_ldct(torch.from_numpy(hu).cuda(), 1e4, seed=0).cpu().numpy())
    cpu = simulate_ldct(np.stack([hu, hu]), 1e4, seed=[0, 1])
    assert _noise_std(*out, region) == pytest.approx(_noise_std(*cpu, region), rel=0.15)


# --------------------------------------------------------------- the pair


@pytest.mark.parametrize("dose_fraction", [0.25, 0.5])
def test_pair_noise_ratio_and_independence(dose_fraction: float) -> None:
    size = 96
    batch = np.stack([uniform_cylinder(size, hu=h) for h in (0.0, 40.0, -30.0, 10.0)])
    opts = dict(pixel_size_mm=_pixel_mm(size))
    ndct, ldct = simulate_pair(batch, n0_full=1e5, dose_fraction=dose_fraction, seed=[0, 1, 2, 3], **opts)
    clean = reconstruct_noise_free(batch, **opts)
    region = disc_mask(size, diameter_mm=150.0)
    noise_nd, noise_ld = (ndct - clean)[:, region], (ldct - clean)[:, region]
    assert noise_ld.std() / noise_nd.std() == pytest.approx(math.sqrt(1 / dose_fraction), rel=0.15)
    for a, b in zip(noise_nd, noise_ld):
        assert abs(np.corrcoef(a, b)[0, 1]) < 0.1


def test_pair_is_simulate_ldct_with_documented_seeds() -> None:
    hu = np.stack([uniform_cylinder(64), uniform_cylinder(64, hu=40.0)])
    ndct, ldct = simulate_pair(hu, n0_full=1e5, dose_fraction=0.25, seed=[3, 4])
    np.testing.assert_array_equal(ndct, simulate_ldct(hu, 1e5, seed=[6, 8]))
    np.testing.assert_array_equal(ldct, simulate_ldct(hu, 2.5e4, seed=[7, 9]))
    ndct, ldct = simulate_pair(hu, n0_full=1e5, dose_fraction=1.0, seed=3)
    np.testing.assert_array_equal(ndct, simulate_ldct(hu, 1e5, seed=6))
    assert np.abs(ndct - ldct).mean() > 0.5  # same dose, still independent noise


# ------------------------------------------------------- geometry options


def test_circle_false_keeps_corner_content() -> None:
    size = 64
    hu = np.full((size, size), -1000.0, np.float32)
    hu[0:8, 0:8] = 1000.0  # wholly outside the inscribed disc
    core = np.zeros_like(hu, bool)
    core[2:6, 2:6] = True
    rec = reconstruct_noise_free(hu, circle=False)
    assert abs(float(rec[core].mean()) - 1000.0) < 50.0


def test_circle_true_ignores_corner_content() -> None:
    size = 64
    body = uniform_cylinder(size, diameter_mm=300.0)
    with_corner = body.copy()
    with_corner[0:8, 0:8] = 1000.0
    core = np.zeros_like(body, bool)
    core[2:6, 2:6] = True
    rec = reconstruct_noise_free(with_corner, circle=True)
    assert float(rec[core].mean()) < -800.0  # treated as air, not reconstructed
    yy, xx = np.mgrid[:size, :size]
    outside = np.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2) > (size - 1) / 2 + 0.01
    np.testing.assert_array_equal(rec[outside], -1000.0)  # nothing measured there: air
    # and it leaves no streaks: the reconstruction is that of the body alone
    np.testing.assert_array_equal(rec, reconstruct_noise_free(body, circle=True))
    noisy = simulate_ldct(with_corner, 1e5, seed=0, circle=True)
    np.testing.assert_array_equal(noisy, simulate_ldct(body, 1e5, seed=0, circle=True))


@pytest.mark.parametrize("circle", [False, True])
def test_non_square_images(circle: bool) -> None:
    h, w = 48, 64
    yy, xx = np.mgrid[:h, :w]
    hu = np.full((h, w), -1000.0, np.float32)
    hu[np.hypot(yy - 23.5, xx - 31.5) <= 20] = 0.0
    hu[np.hypot(yy - 23.5, xx - 40.0) <= 5] = 300.0
    core = np.hypot(yy - 23.5, xx - 40.0) <= 2.5
    water = (np.hypot(yy - 23.5, xx - 31.5) <= 15) & (np.hypot(yy - 23.5, xx - 40.0) > 8)
    rec = reconstruct_noise_free(hu, circle=circle)
    assert rec.shape == (h, w) and rec.dtype == np.float32
    assert abs(float(rec[water].mean())) < 5.0
    assert abs(float(rec[core].mean()) - 300.0) < 15.0
    # the geometry has no preferred axis: the transposed image gives the transposed result
    np.testing.assert_allclose(reconstruct_noise_free(np.ascontiguousarray(hu.T), circle=circle).T, rec, atol=0.05)
    noisy = simulate_ldct(hu, 1e5, seed=0, circle=circle)
    assert noisy.shape == (h, w) and np.abs(noisy - rec)[water].std() > 1.0


# ------------------------------------------------------------- bad input

HU = uniform_cylinder(16)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: simulate_ldct(HU, 0, seed=0), "n0"),
        (lambda: simulate_ldct(HU, -5.0, seed=0), "n0"),
        (lambda: simulate_ldct(HU, float("nan"), seed=0), "n0"),
        (lambda: simulate_ldct(HU, True, seed=0), "n0"),
        (lambda: simulate_ldct(HU, 1e4, seed=0, pixel_size_mm=0), "pixel_size_mm"),
        (lambda: simulate_ldct(HU, 1e4, seed=0, mu_water_per_mm=-0.01), "mu_water_per_mm"),
        (lambda: simulate_ldct(HU, 1e4, seed=0, electronic_noise_std=-1), "electronic_noise_std"),
        (lambda: simulate_ldct(HU, 1e4, seed=0, count_floor=0), "count_floor"),
        (lambda: simulate_ldct(HU, 1e4, seed=0, n_views=1), "n_views"),
        (lambda: simulate_ldct(HU[0], 1e4, seed=0), "hu"),
        (lambda: simulate_ldct(HU[None, None], 1e4, seed=0), "hu"),
        (lambda: simulate_ldct(np.where(HU >= 0, np.nan, HU), 1e4, seed=0), "hu"),
        (lambda: simulate_ldct(HU.tolist(), 1e4, seed=0), "hu"),
        (lambda: simulate_ldct(HU, 1e4, seed=-1), "seed"),
        (lambda: simulate_ldct(HU, 1e4, seed=1.5), "seed"),
        (lambda: simulate_ldct(np.stack([HU, HU]), 1e4, seed=[1, 2, 3]), "seed"),
        (lambda: simulate_pair(HU, n0_full=1e5, dose_fraction=0, seed=0), "dose_fraction"),
        (lambda: simulate_pair(HU, n0_full=1e5, dose_fraction=1.5, seed=0), "dose_fraction"),
        (lambda: simulate_pair(HU, n0_full=0, dose_fraction=0.5, seed=0), "n0_full"),
        (lambda: simulate_pair(HU, n0_full=1e5, dose_fraction=0.5, seed=-1), "seed"),
        (lambda: simulate_pair(np.stack([HU, HU]), n0_full=1e5, dose_fraction=0.5, seed=[0, -1]), "seed"),
        (lambda: reconstruct_noise_free(HU, pixel_size_mm=float("inf")), "pixel_size_mm"),
        (lambda: reconstruct_noise_free((HU + 1000) / 3000), "hu"),  # an image already scaled to [0, 1]
        (lambda: reconstruct_noise_free(np.where(HU >= 0, np.nan, HU)), "hu"),
        (lambda: reconstruct_noise_free(HU, device="banana"), "device"),
        (lambda: ParallelBeam(16, 16, 8).fbp(torch.zeros(1, 8, 16)), "sinogram"),
        (lambda: ParallelBeam(16, 16, 8).fbp(torch.zeros(8, 23)), "sinogram"),
        (lambda: ParallelBeam(16, 16, 8).project(torch.zeros(1, 16, 15)), "image"),
        (lambda: ParallelBeam(1, 16, 8), "height"),
        (lambda: ParallelBeam(16, 16, True), "n_views"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_bad_input_names_parameter(call, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        call()


def test_pair_seed_error_quotes_the_given_value() -> None:
    with pytest.raises(ParameterError, match=r"got -1\b"):
        simulate_pair(np.stack([HU, HU]), n0_full=1e5, dose_fraction=0.5, seed=[0, -1])
