"""Noise power spectrum and dose calibration (ldct_nb.data.noise).

Known answers: white noise has a flat NPS equal to sigma^2 dx^2 whose integral
is the variance (Parseval); noise filtered by a known kernel has NPS
sigma^2 dx^2 |H|^2; noise shaped to peak at a chosen frequency peaks there.
The calibrated N0 is checked by an independent simulation (fresh seeds).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from ldct_nb.data import noise
from ldct_nb.errors import ParameterError


def test_white_noise_is_flat_and_integrates_to_the_variance() -> None:
    rng = np.random.default_rng(0)
    sigma, dx = 7.0, 0.5
    rois = rng.normal(0.0, sigma, size=(200, 32, 32))
    res = noise.nps(rois, dx)
    expected = sigma**2 * dx**2  # HU^2 mm^2: white noise spreads sigma^2 over 1/dx^2 of frequencies
    assert res.nyquist == pytest.approx(1.0)
    assert res.frequency[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(res.power[1:], expected, rtol=0.08)
    # Parseval: the integral is exactly the mean variance of the (mean-removed) ROIs
    assert res.variance == pytest.approx(float(rois.var(axis=(1, 2)).mean()), rel=1e-9)
    assert res.variance == pytest.approx(sigma**2, rel=0.02)


def test_filtered_noise_has_the_kernel_spectrum() -> None:
    """Binomial [1, 2, 1] / 4 filtering (circular) multiplies the NPS by
    cos^4(pi fx dx) cos^4(pi fy dx): the square of its transfer function cos^2(pi f dx)."""
    rng = np.random.default_rng(1)
    sigma, dx = 10.0, 0.8
    white = rng.normal(0.0, sigma, size=(800, 32, 32))
    k = np.array([0.25, 0.5, 0.25])
    smooth = ndimage.convolve1d(ndimage.convolve1d(white, k, axis=1, mode="wrap"), k, axis=2, mode="wrap")
    res = noise.nps(smooth, dx)
    fx, fy = np.meshgrid(res.fx, res.fy)
    model = sigma**2 * dx**2 * np.cos(np.pi * fx * dx) ** 4 * np.cos(np.pi * fy * dx) ** 4
    big = (model > 0.05 * model.max()) & (np.hypot(fx, fy) > 0)  # DC is 0: each ROI's mean is removed
    np.testing.assert_allclose(res.nps_2d[big], model[big], rtol=0.2)  # 800 ROIs: ~3.5 % per bin
    assert res.variance == pytest.approx(float(model.sum() * (res.fx[1] - res.fx[0]) ** 2), rel=0.03)


def test_peak_of_band_pass_noise() -> None:
    """|H(f)|^2 = (f / s)^2 exp(1 - (f / s)^2) peaks at f = s (here 0.3 of Nyquist)."""
    rng = np.random.default_rng(2)
    n, dx = 64, 1.0
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(n, dx), np.fft.fftfreq(n, dx)))
    s = 0.3 * 0.5 / dx
    h = (f / s) * np.exp(0.5 * (1 - (f / s) ** 2))
    white = rng.normal(size=(150, n, n))
    shaped = np.real(np.fft.ifft2(np.fft.fft2(white) * h))
    res = noise.nps(shaped, dx)
    assert res.peak_fraction_of_nyquist == pytest.approx(0.3, abs=0.5 / (n / 2))  # within half a bin


def test_pixel_size_scales_frequency_and_power() -> None:
    rois = np.random.default_rng(3).normal(size=(20, 16, 16))
    a, b = noise.nps(rois, 1.0), noise.nps(rois, 2.0)
    np.testing.assert_allclose(b.frequency, a.frequency / 2)
    np.testing.assert_allclose(b.power, a.power * 4)
    assert b.variance == pytest.approx(a.variance)


def test_noise_rois_lie_inside_the_mask() -> None:
    mask = noise.disc_mask(64, diameter_mm=200.0)
    images = np.where(mask, 1.0, np.nan)[None].repeat(2, axis=0)
    rois = noise.noise_rois(images, mask, 16, stride=8)
    assert rois.shape[1:] == (16, 16) and len(rois) % 2 == 0 and len(rois) >= 4
    assert np.isfinite(rois).all()  # no pixel from outside the mask
    with pytest.raises(ParameterError, match="roi_size"):
        noise.noise_rois(images, mask, 60)


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros((3, 3)), 1.0), "noise_images"),
        ((np.zeros((2, 8, 8, 1)), 1.0), "noise_images"),
        ((np.full((8, 8), np.nan), 1.0), "NaN"),
        ((np.zeros((8, 8)), 0.0), "pixel_size_mm"),
        ((np.zeros((8, 8)), "1"), "pixel_size_mm"),
    ],
)
def test_nps_bad_input(args, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        noise.nps(*args)


# ----------------------------------------------------------------------- dose calibration


def test_reference_14_noise_levels() -> None:
    """Hand arithmetic: x = 1/sqrt(N0) = (0.0031623, 0.01, 0.0141421), y = (12, 37, 51) HU;
    k = sum(x y) / sum(x^2) = (0.037947 + 0.37 + 0.721249) / (1e-5 + 1e-4 + 2e-4) = 3642.5;
    k / sqrt(3000) = 66.50 HU, k / sqrt(1000) = 115.19 HU."""
    assert noise.reference_14_noise_hu(3000) == pytest.approx(66.50, abs=0.01)
    assert noise.reference_14_noise_hu(1000) == pytest.approx(115.19, abs=0.01)
    assert noise.reference_14_noise_hu(1000) / noise.reference_14_noise_hu(4000) == pytest.approx(2.0)
    with pytest.raises(ParameterError, match="n0"):
        noise.reference_14_noise_hu(0)


@pytest.mark.parametrize("target, filter_name", [(12.0, "cosine"), (67.0, "ramp"), (116.0, "cosine")])
def test_calibrated_n0_gives_the_target_noise(target: float, filter_name: str) -> None:
    """The calibrated N0, simulated again with seeds the calibration never used, gives
    the target noise within 5 %."""
    size = 64
    hu, region = noise.water_reference(size)
    sim = dict(pixel_size_mm=360.0 / size, circle=True, filter_name=filter_name)
    cal = noise.calibrate_n0(target, hu, region, seed=1, **sim)
    assert abs(cal.relative_error) <= 0.03
    check = noise.noise_vs_dose(hu, [cal.n0] * 12, region, seed=777, **sim)
    assert float(np.sqrt(np.mean(check.std_hu**2))) == pytest.approx(target, rel=0.05)


def test_calibration_follows_inverse_sqrt_n0() -> None:
    """Four times the noise needs a sixteenth of the photons (within the 3 % tolerance each)."""
    hu, region = noise.water_reference(64)
    sim = dict(pixel_size_mm=360.0 / 64, circle=True)
    low, high = (noise.calibrate_n0(t, hu, region, **sim).n0 for t in (10.0, 40.0))
    assert low / high == pytest.approx(16.0, rel=0.15)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(target_hu=0.0), "target_hu"),
        (dict(target_hu=float("inf")), "target_hu"),
        (dict(n0_guess=-1.0), "n0_guess"),
        (dict(n_pairs=0), "n_pairs"),
        (dict(region=np.zeros((64, 64), bool)), "region"),
    ],
)
def test_calibration_bad_input(kwargs: dict, message: str) -> None:
    hu, region = noise.water_reference(64)
    args = dict(target_hu=10.0, hu=hu, region=region)
    args.update(kwargs)
    with pytest.raises(ParameterError, match=message):
        noise.calibrate_n0(args.pop("target_hu"), args.pop("hu"), args.pop("region"), pixel_size_mm=5.625, **args)


def test_unreachable_target_is_refused() -> None:
    """A count floor of N0 itself makes every measurement zero noise: no N0 reaches the target."""
    hu, region = noise.water_reference(32)
    with pytest.raises(ParameterError, match="no N0"):
        noise.calibrate_n0(10.0, hu, region, max_iterations=2, pixel_size_mm=11.25, count_floor=1e12)


# ----------------------------------------------------------------------- helpers of notebook 01


def test_clinical_band_and_nearest_filter() -> None:
    """0.2-0.3 cycles/mm over the 0.714 cycles/mm Nyquist of 0.7 mm pixels = 0.28-0.42."""
    lo, hi = noise.clinical_peak_fraction(0.7)
    assert (lo, hi) == (pytest.approx(0.28), pytest.approx(0.42))
    rng = np.random.default_rng(4)

    def shaped(peak: float) -> noise.NoisePowerSpectrum:
        n = 32
        f = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n)))
        s = peak * 0.5
        h = (f / s) * np.exp(0.5 * (1 - (f / s) ** 2))
        return noise.nps(np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(60, n, n))) * h)), 1.0)

    spectra = {"a": shaped(0.6), "b": shaped(0.35), "c": shaped(0.2)}
    assert noise.nearest_filter(spectra) == "b"
    assert noise.nearest_filter(spectra, 0.15) == "c"
    with pytest.raises(ParameterError, match="spectra"):
        noise.nearest_filter({})


def test_texture_stats_of_gaussian_filtered_noise() -> None:
    """A Gaussian filter of sigma s (pixels) gives the autocorrelation exp(-r^2 / (4 s^2)), which
    falls to 1/2 at r = 2 s sqrt(ln 2) = 1.665 s; white noise falls below 1/2 within a pixel."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(5)
    for sigma in (2.0, 4.0):
        field = ndi.gaussian_filter(rng.normal(size=(256, 256)), sigma, mode="wrap")
        stats = noise.texture_stats(field * 10.0, 0.5)
        assert stats["correlation_length_mm"] == pytest.approx(1.665 * sigma * 0.5, rel=0.1)
        assert stats["std_hu"] == pytest.approx(10.0 * field.std())
    assert noise.texture_stats(rng.normal(size=(64, 64)), 1.0)["correlation_length_mm"] < 1.0


def test_square_patch_takes_the_deepest_point() -> None:
    img = np.arange(100.0).reshape(10, 10)
    mask = np.zeros((10, 10), bool)
    mask[2:9, 3:10] = True  # deepest point (5, 6)
    patch, (r0, c0) = noise.square_patch(img, mask, 4)
    assert (r0, c0) == (3, 4) and patch.shape == (4, 4) and mask[r0:r0 + 4, c0:c0 + 4].all()
    with pytest.raises(ParameterError, match="side"):
        noise.square_patch(img, mask, 11)
    with pytest.raises(ParameterError, match="mask"):
        noise.square_patch(img, np.zeros((10, 10), bool), 4)


def test_square_patch_inside_shrinks_to_the_inscribed_disc() -> None:
    """A 7 x 7 mask has depth 4 at its centre (distance to the nearest outside pixel):
    the largest centred square inside the disc of radius 4 has side floor(4 sqrt(2)) = 5."""
    img = np.zeros((20, 20))
    mask = np.zeros((20, 20), bool)
    mask[5:12, 5:12] = True
    patch, (r0, c0) = noise.square_patch(img, mask, 12, inside=True)
    assert patch.shape == (5, 5) and mask[r0:r0 + 5, c0:c0 + 5].all()
