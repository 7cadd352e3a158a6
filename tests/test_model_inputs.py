"""Every user-facing network and loss refuses inputs it cannot use correctly, with a message
naming the argument and what was expected (issue: nothing silently wrong)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ldct_nb.errors import ParameterError
from ldct_nb.losses.ascon_loss import ascon_loss
from ldct_nb.models import available, build
from ldct_nb.models.mac_net import mac_net
from ldct_nb.train import make_step

torch.set_num_threads(1)
SMALL = {"esau_net": dict(stem=4, widths=(8, 8, 16), heads=(1, 2, 2), bottleneck_heads=2, bottleneck_hidden=16),
         "unet": dict(base=4, depth=2), "red_cnn": dict(channels=4), "edcnn": dict(sobel_ch=4, width=4),
         "wgan_vgg": dict(width=4), "du_gan": dict(channels=4), "cncl": dict(base=4, depth=2, fusion_width=4),
         "cpce": dict(width=4), "map_nn": dict(width=4), "ssms": dict(width=4), "res_hlf": dict(width=4, blocks=1)}
BAD = [
    (np.zeros((1, 1, 32, 32), np.float32), "numpy array, expected a torch tensor"),
    (torch.zeros(1, 1, 32, 32, dtype=torch.float64), "float64 but the .* parameters are torch.float32"),
    (torch.zeros(1, 1, 32, 32, dtype=torch.uint8), "uint8 tensor, expected a floating tensor"),
    (torch.zeros(0, 1, 32, 32), "empty batch"),
    (torch.full((1, 1, 32, 32), float("nan")), "1024 NaN"),
    (torch.full((1, 1, 32, 32), float("inf")), "1024 infinite"),
    (torch.full((1, 1, 32, 32), 40.0) + torch.rand(1, 1, 32, 32) * 900, "looks like Hounsfield units"),
    (torch.zeros(1, 2, 32, 32), "2 channel"),
]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_denoiser_refuses_bad_input_naming_it(name):
    assert set(SMALL) == set(available())
    net = build(name, **SMALL[name])
    for x, message in BAD:
        with pytest.raises(ParameterError, match=message):
            net(x)
    assert net(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)  # and a good input passes


@pytest.mark.parametrize("name, kwargs, message", [
    ("red_cnn", {"channels": -1}, "channels must be an int >= 1, got -1"),
    ("red_cnn", {"channels": 0}, "channels must be an int >= 1, got 0"),
    ("unet", {"base": 0}, "base must be an int >= 1"),
    ("esau_net", {"widths": (8, 0, 8)}, r"widths\[1\] must be an int >= 1"),
    ("wgan_vgg", {"width": -3}, "width must be an int >= 1"),
    # sizes that are not ints: torch failed deep inside ("out_channels must be divisible by groups") or the
    # message was torch's own ("empty(): argument 'size' ... found element of type bool")
    ("red_cnn", {"channels": 2.5}, "channels must be an int >= 1, got float 2.5"),
    ("unet", {"base": 2.5}, "base must be an int >= 1, got float 2.5"),
    ("red_cnn", {"channels": "8"}, "channels must be an int >= 1, got str '8'"),
    ("red_cnn", {"channels": True}, "channels must be an int >= 1, got bool True"),
    ("wgan_vgg", {"width": 4.0}, "width must be an int >= 1, got float 4.0"),
    ("edcnn", {"slope": "0.01"}, "slope of model 'edcnn' must be a finite number, got str"),
    ("cpce", {"residual": 1}, "residual of model 'cpce' must be True or False"),
    ("esau_net", {"bias": 3}, "bias must be True or False, got 3"),
    ("esau_net", {"slope": "0.2"}, "slope must be a finite number"),
    ("red_cnn", {"chanels": 8}, r"unknown keyword 'chanels' for model 'red_cnn'; valid: \['channels', 'kernel'\]"),
])
def test_impossible_sizes_are_refused(name, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        build(name, **kwargs)


def test_ascon_loss_and_mac_net_refuse_bad_input():
    torch.manual_seed(0)
    net = mac_net(0.125).train()
    loss = ascon_loss(mac_net=net, n_anchors=4, n_queries=16)
    good = torch.rand(2, 1, 32, 32)
    for x, message in BAD[:7]:
        with pytest.raises(ParameterError, match=message):
            loss(x, good)
    with pytest.raises(ParameterError, match="ndct .*looks like Hounsfield units"):
        loss(good, good * 1000)
    with pytest.raises(ParameterError, match="denoised is a numpy array"):
        net.online_features(good.numpy())
    with pytest.raises(ParameterError, match="denoised holds values in .* looks like Hounsfield"):
        net.online_features(good * 1000)
    with pytest.raises(ParameterError, match="ndct contains"):
        net.target_features(torch.full_like(good, float("nan")))
    assert float(loss(good, good.clone()).total) >= 0


def test_device_strings_are_refused():
    with pytest.raises(ParameterError, match="device 'banana' is not a torch device"):
        make_step("esau_net", device="banana", **SMALL["esau_net"])
