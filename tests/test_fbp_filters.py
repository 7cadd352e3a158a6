"""FBP filters (ldct_nb.data.simulate: filter_name / filter_cutoff) against scikit-image.

scikit-image's ``iradon`` is the reference: our frequency responses are compared
with the one it builds, and our FBP of a scikit-image sinogram with each filter
with its ``iradon`` of the same sinogram. The windows are the textbook ones;
scikit-image samples numpy's ``hamming`` / ``hanning`` windows of length N,
which are (N - 1)-periodic, so those two differ from ours by O(1/N).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.transform import iradon, radon
from skimage.transform.radon_transform import _get_fourier_filter

from ldct_nb.data.noise import disc_mask, uniform_cylinder
from ldct_nb.data.simulate import (
    FILTER_NAMES,
    ParallelBeam,
    filter_response,
    reconstruct_noise_free,
    simulate_ldct,
    simulate_pair,
)
from ldct_nb.errors import ParameterError


@pytest.mark.parametrize("name", FILTER_NAMES)
def test_response_matches_skimage(name: str) -> None:
    u, ours = filter_response(100, name)  # 100 bins -> FFT length 256, as skimage pads
    sk = _get_fourier_filter(256, name)[: len(u), 0] / 2  # skimage's ramp is 2x ours; its backprojection halves it
    tolerance = 1e-9 if name in ("ramp", "shepp-logan", "cosine") else 0.025
    np.testing.assert_allclose(ours, sk, atol=tolerance * sk.max())
    assert u[0] == 0 and u[-1] == pytest.approx(0.5)


def _rings(size: int) -> np.ndarray:
    """Concentric rings (sharp edges, so the filters differ) plus an off-centre disc."""
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - c, xx - c)
    img = (r < 0.4 * size) * 1.0 + (r < 0.25 * size) * 0.5 - (r < 0.1 * size) * 1.2
    img += (np.hypot(yy - c - 7, xx - c + 9) <= 4) * 2.0
    return img.astype(np.float64)


def test_fbp_matches_iradon_filter_by_filter() -> None:
    """Our FBP with filter F of a scikit-image sinogram equals iradon with F, and is
    far closer to it than to iradon with any other filter."""
    size = 65
    img = _rings(size)
    geom = ParallelBeam(size, size, 64, circle=True)
    degrees = -np.rad2deg(geom.angles.numpy())  # our theta is skimage's -theta (test_simulate)
    sino = radon(img, theta=degrees, circle=True)
    yy, xx = np.mgrid[:size, :size]
    inside = np.hypot(yy - size // 2, xx - size // 2) < size / 2 - 3
    sk = {name: iradon(sino, theta=degrees, filter_name=name, circle=True) for name in FILTER_NAMES}
    for name in FILTER_NAMES:
        ours = geom.fbp(torch.from_numpy(np.ascontiguousarray(sino.T, np.float32))[None], name)[0].numpy()
        errors = {other: float(np.abs(ours - rec)[inside].max()) for other, rec in sk.items()}
        assert errors[name] < 0.01 * img.max(), (name, errors)
        nearest_other = min(v for k, v in errors.items() if k != name)
        assert errors[name] < 0.2 * nearest_other, (name, errors)


def test_cutoff_compresses_the_window() -> None:
    """Hand values: hann with cut-off c at u = c / 4 is 0.5 + 0.5 cos(pi / 2) = 0.5 of the
    ramp; above u = c / 2 the response is 0; c = 1 is the plain window."""
    u, ramp = filter_response(200, "ramp")
    _, hann = filter_response(200, "hann", 0.5)
    _, hann_full = filter_response(200, "hann", None)
    k = int(np.argmin(np.abs(u - 0.125)))
    assert u[k] == pytest.approx(0.125)
    assert hann[k] == pytest.approx(0.5 * ramp[k])
    assert np.all(hann[u > 0.25 + 1e-9] == 0) and hann[u < 0.25].min() >= 0
    np.testing.assert_allclose(filter_response(200, "hann", 1.0)[1], hann_full)


def test_smoother_filters_lower_the_noise_and_keep_the_mean() -> None:
    """Same N0: noise falls from ramp to hann (the windows cut high frequencies); every
    window is 1 at zero frequency, so the mean HU of water stays 0."""
    size = 96
    hu = uniform_cylinder(size)
    region = disc_mask(size, diameter_mm=150.0)
    opts = dict(pixel_size_mm=360.0 / size, circle=True)
    stds = []
    for name in ("ramp", "shepp-logan", "cosine", "hamming", "hann"):
        clean = reconstruct_noise_free(hu, filter_name=name, **opts)
        assert abs(float(clean[region].mean())) < 3.0, name
        a, b = simulate_ldct(np.stack([hu, hu]), 1e4, seed=[1, 2], filter_name=name, **opts)
        stds.append(float(np.std((a - b)[region]) / math.sqrt(2)))
    assert all(x > y for x, y in zip(stds, stds[1:])), stds
    assert stds[-1] < 0.6 * stds[0]


def test_pair_and_noise_free_use_the_filter() -> None:
    hu = uniform_cylinder(64)
    opts = dict(pixel_size_mm=360.0 / 64, filter_name="hamming", filter_cutoff=0.8)
    ndct, ldct = simulate_pair(hu, n0_full=1e5, dose_fraction=0.5, seed=3, **opts)
    np.testing.assert_array_equal(ndct, simulate_ldct(hu, 1e5, seed=6, **opts))
    np.testing.assert_array_equal(ldct, simulate_ldct(hu, 5e4, seed=7, **opts))
    assert not np.array_equal(ndct, simulate_ldct(hu, 1e5, seed=6, pixel_size_mm=360.0 / 64))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(filter_name="butterworth"), "filter_name.*ramp.*hann"),
        (dict(filter_name=None), "filter_name"),
        (dict(filter_cutoff=0.0), "filter_cutoff"),
        (dict(filter_cutoff=1.5), "filter_cutoff"),
        (dict(filter_cutoff=float("nan")), "filter_cutoff"),
        (dict(filter_cutoff=True), "filter_cutoff"),
    ],
)
def test_bad_filter_refused(kwargs: dict, message: str) -> None:
    hu = uniform_cylinder(32)
    with pytest.raises(ParameterError, match=message):
        simulate_ldct(hu, 1e4, seed=0, **kwargs)
    with pytest.raises(ParameterError, match=message):
        reconstruct_noise_free(hu, **kwargs)
