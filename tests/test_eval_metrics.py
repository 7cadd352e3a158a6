"""PSNR / RMSE / SSIM on HU images against scikit-image on the same windowed arrays."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ldct_nb.errors import ParameterError
from ldct_nb.eval.metrics import WINDOWS, psnr, rmse, slice_metrics, ssim, to_unit


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:48, :64]
    target = -1000 + 1040 * ((x - 32) ** 2 / 900 + (y - 24) ** 2 / 400 < 1) + 60 * np.sin(x / 5.0)
    pred = target + rng.normal(0, 25, target.shape)
    pred[0, 0] = 2500.0  # a value above every window: clipping matters
    return np.stack([pred, pred + 10.0, pred - 3.0]), np.stack([target] * 3)


@pytest.mark.parametrize("window", ["ascon", "red_cnn", (-100.0, 300.0)])
def test_psnr_rmse_ssim_equal_scikit_image_on_the_windowed_arrays(pair, window):
    pred, target = pair
    lo, hi = WINDOWS[window] if isinstance(window, str) else window
    ours_p, ours_s, ours_r = psnr(pred, target, window), ssim(pred, target, window), rmse(pred, target, window, unit="hu")
    for i in range(3):
        p = (np.clip(pred[i], lo, hi) - lo) / (hi - lo)
        t = (np.clip(target[i], lo, hi) - lo) / (hi - lo)
        assert abs(ours_p[i] - peak_signal_noise_ratio(t, p, data_range=1.0)) < 1e-4
        ref = structural_similarity(t, p, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert abs(ours_s[i] - ref) < 1e-4
        assert abs(ours_r[i] - np.sqrt(((p - t) ** 2).mean()) * (hi - lo)) < 1e-6


def test_hand_values_and_conventions():
    target = np.zeros((16, 16))
    pred = np.full((16, 16), 300.0)  # 300 HU off everywhere: 0.1 of the ASCON range
    assert rmse(pred, target) == pytest.approx(0.1)
    assert rmse(pred, target, unit="hu") == pytest.approx(300.0)
    assert psnr(pred, target) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    # RED-CNN window [-160, 240]: 300 HU clipped to 240, so 240 HU off in a 400 HU range
    assert rmse(pred, target, "red_cnn") == pytest.approx(0.6)
    assert rmse(pred, target, "red_cnn", clip=False) == pytest.approx(0.75)
    assert ssim(target, target) == pytest.approx(1.0)
    m = slice_metrics(np.stack([pred, pred]), np.stack([target, target]))
    assert set(m) == {"psnr", "rmse", "rmse_hu", "ssim", "ssim_official"} and m["psnr"].shape == (2,)
    torch.testing.assert_close(torch.as_tensor(to_unit(np.array([[-1000.0, 2000.0]]))), torch.tensor([[[0.0, 1.0]]], dtype=torch.float64))


def test_official_ssim_form_differs_and_is_clamped(pair):
    pred, target = pair
    a, b = ssim(pred, target), ssim(pred, target, form="official")
    assert np.all(np.abs(a - b) > 1e-5)
    texture = -1000.0 + 3000.0 * np.random.default_rng(1).random((32, 32))
    anti = 1000.0 - texture  # the same texture with inverted contrast: negative SSIM, clamped to 0 by the official form
    assert ssim(anti, texture) < -0.5 and ssim(anti, texture, form="official") == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("bad, message", [
    (dict(window="brain"), "window 'brain' is not one of"),
    (dict(window=(100, 0)), "low < high"),
    (dict(window="-160,abc"), "must be a name of .* or 'low,high' in HU"),
    (dict(window="240,-160"), "low < high"),
])
def test_bad_windows(bad, message):
    with pytest.raises(ParameterError, match=message):
        psnr(np.zeros((4, 4)), np.zeros((4, 4)), **bad)


def test_a_window_given_as_text_equals_the_pair_and_the_name():
    # a papermill profile passes notebook 06's string parameter window as "low,high"
    from ldct_nb.eval.metrics import window_range

    assert window_range("-160,240") == window_range((-160, 240)) == window_range("red_cnn") == (-160.0, 240.0)
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1000, 1000, (16, 16)), rng.uniform(-1000, 1000, (16, 16))
    assert psnr(a, b, window=" -160, 240") == psnr(a, b, window="abdomen")


def test_bad_images():
    with pytest.raises(ParameterError, match="differ in shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ParameterError, match="NaN"):
        ssim(np.full((16, 16), np.nan), np.zeros((16, 16)))
    with pytest.raises(ParameterError, match="H x W slice or an N x H x W stack"):
        rmse(np.zeros(5), np.zeros(5))
    with pytest.raises(ParameterError, match="unit must be"):
        rmse(np.zeros((4, 4)), np.zeros((4, 4)), unit="percent")
