"""Tests of ldct_nb.validate and of the input checks of the CT simulation that use it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ldct_nb.data.noise import uniform_cylinder
from ldct_nb.data.simulate import simulate_ldct, simulate_pair
from ldct_nb.env import select_device
from ldct_nb.errors import ParameterError
from ldct_nb.validate import check_hu_image, check_image_batch, check_int, check_positive

HU = uniform_cylinder(16)  # water disc (0 HU) in air (-1000 HU)


# ----------------------------------------------------------------- HU images (the simulation's input)


@pytest.mark.parametrize("bad, needle", [
    ((HU + 1000) / 3000, r"holds values in \[0, 0\.3333\]: it looks normalised to \[0, 1\]"),
    (np.where(HU < -500, -2000.0, HU), r"holds values in \[-2000, 0\], expected Hounsfield units within \[-1100, 4000\]"),
    (np.where(HU < -500, -1000.0, 5000.0), r"holds values in \[-1000, 5000\]"),
    (np.where(HU < -500, np.nan, HU), r"contains \d+ NaN or infinite values"),
    (np.where(HU < -500, -np.inf, HU), r"contains \d+ NaN or infinite values"),
    (np.zeros((16, 16), np.uint8), r"is a numpy uint8 array, expected HU values"),
    (torch.zeros(16, 16, dtype=torch.uint8), r"is a torch\.uint8 tensor, expected HU values"),
    (np.zeros((0, 16), np.float32), r"is empty"),
    (HU.tolist(), r"must be a numpy array or torch tensor of HU values, got list"),
])
def test_check_hu_image_refuses_what_is_not_hu(bad, needle):
    with pytest.raises(ParameterError, match=r"^hu " + needle):
        check_hu_image(bad, "hu")


def test_check_hu_image_accepts_hu_of_every_real_type():
    check_hu_image(HU, "hu")
    check_hu_image(np.round(HU).astype(np.int16), "hu")
    check_hu_image(torch.from_numpy(HU).double(), "hu")
    check_hu_image(np.zeros((8, 8)), "hu")  # all water: constant, so not "normalised"
    check_hu_image(np.full((8, 8), -1024.0), "hu")


@pytest.mark.parametrize("call", [
    lambda hu: simulate_ldct(hu, 1e4, seed=0),
    lambda hu: simulate_pair(hu, n0_full=1e5, dose_fraction=0.25, seed=0),
])
@pytest.mark.parametrize("bad, needle", [
    ((HU + 1000) / 3000, "looks normalised to"),  # formerly simulated as ~ -1000 HU everywhere
    (np.where(HU < -500, -3024.0, HU), "expected Hounsfield units within"),  # padding: negative attenuation
    (np.where(HU < -500, np.nan, HU), "NaN"),
])
def test_the_simulation_refuses_images_that_are_not_hu(call, bad, needle):
    with pytest.raises(ParameterError, match=r"^hu .*" + needle):
        call(bad)


def test_the_simulation_refuses_a_bad_device_naming_it():
    # Formerly a RuntimeError from deep inside torch ("Expected one of cpu, cuda, ... device type").
    with pytest.raises(ParameterError, match=r"^device 'banana' is not a torch device"):
        simulate_ldct(HU, 1e4, seed=0, device="banana")
    with pytest.raises(ParameterError, match=r"^device 'banana' is not a torch device"):
        simulate_pair(HU, n0_full=1e5, dose_fraction=0.25, seed=0, device="banana")


def test_select_device_names_the_parameter():
    with pytest.raises(ParameterError, match=r"^MACNet\(device=\) 'banana' is not a torch device"):
        select_device("banana", name="MACNet(device=)")


# ----------------------------------------------------------------- [0, 1] batches (denoisers, MAC-Net, losses)


def _batch(*shape, fill=0.5, dtype=torch.float32):
    return torch.full(shape or (2, 1, 8, 8), fill, dtype=dtype)


@pytest.mark.parametrize("bad, needle", [
    (np.full((2, 1, 8, 8), 0.5, np.float32), r"is a numpy array, expected a torch tensor \(B, C, H, W\): use "
                                             r"torch\.from_numpy\(x\)\.float\(\)"),
    ([[0.5]], r"must be a torch tensor \(B, C, H, W\), got list"),
    (_batch(1, 8, 8), r"must be a \(B, C, H, W\) tensor, got shape \(1, 8, 8\)"),
    (_batch(0, 1, 8, 8), r"is an empty batch \(shape \(0, 1, 8, 8\)\)"),
    (_batch(2, 1, 0, 8), r"is an empty batch"),
    (_batch(2, 3, 8, 8), r"has 3 channel\(s\), expected 1"),
    (torch.full((2, 1, 8, 8), 128, dtype=torch.uint8), r"is a torch\.uint8 tensor, expected a floating tensor on the "
                                                       r"\[0, 1\] scale \(an 8-bit image"),
    (torch.full((2, 1, 8, 8), 1, dtype=torch.int64), r"is a torch\.int64 tensor"),
    (_batch(fill=float("nan")), r"contains 128 NaN and 0 infinite values"),
    (_batch(fill=float("inf")), r"contains 0 NaN and 128 infinite values"),
    (_batch(fill=-1000.0), r"holds values in \[-1000, -1000\], expected the \[0, 1\] scale; it looks like Hounsfield"),
    (_batch(fill=1.6), r"holds values in \[1\.6, 1\.6\], expected the \[0, 1\] scale$"),
])
def test_check_image_batch_refuses(bad, needle):
    with pytest.raises(ParameterError, match=r"^x " + needle):
        check_image_batch(bad, "x")


def test_check_image_batch_compares_dtype_and_device_with_the_model():
    model = nn.Conv2d(1, 1, 3)
    with pytest.raises(ParameterError, match=r"^ldct is torch\.float64 but the Conv2d's parameters are "
                                             r"torch\.float32: convert it with ldct\.to\(torch\.float32\)"):
        check_image_batch(_batch(dtype=torch.float64), "ldct", like=model)
    meta = torch.empty(1, device="meta")
    with pytest.raises(ParameterError, match=r"^ldct is on cpu but the reference tensor is on meta"):
        check_image_batch(_batch(), "ldct", like=meta)
    check_image_batch(_batch(dtype=torch.float64), "ldct", like=model.double())  # same dtype: fine


def test_check_image_batch_accepts_and_returns_a_good_batch():
    x = torch.rand(3, 1, 8, 8) * 1.4 - 0.2  # a network output may overshoot [0, 1] a little
    assert check_image_batch(x, "x") is x
    check_image_batch(torch.rand(2, 4, 8, 8), "features", channels=None, value_range=None)
    check_image_batch(_batch(fill=-1000.0), "hu", value_range=None)  # value check switched off


# ----------------------------------------------------------------- sizes and scalars


@pytest.mark.parametrize("bad", [-1, 0, 2.0, True, "3", None])
def test_check_int_refuses_impossible_sizes(bad):
    with pytest.raises(ParameterError, match=r"^channels must be an int >= 1, got "):
        check_int(bad, "channels")


def test_check_int_bounds_and_values():
    assert check_int(np.int64(4), "channels") == 4 and type(check_int(np.int64(4), "channels")) is int
    assert check_int(0, "depth", minimum=0) == 0
    with pytest.raises(ParameterError, match=r"^heads must be an int >= 1 and <= 8, got 9"):
        check_int(9, "heads", maximum=8)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "1"])
def test_check_positive(bad):
    with pytest.raises(ParameterError, match=r"^tau must be a finite number > 0"):
        check_positive(bad, "tau")
    assert check_positive(0, "weight", allow_zero=True) == 0.0 and check_positive(2, "tau") == 2.0
