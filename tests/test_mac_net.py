"""Tests of MAC-Net (ldct_nb.models.mac_net): shapes, the cut connection, EMA, gradients."""
from __future__ import annotations

import copy

import pytest
import torch

from ldct_nb.errors import ParameterError
from ldct_nb.losses import ascon_loss
from ldct_nb.models.mac_net import PAPER_WIDTHS, DisentangledUNet, MACNet, ema_update, mac_net


@pytest.fixture(scope="module")
def tiny() -> MACNet:
    torch.manual_seed(0)
    return mac_net(0.125)


def test_paper_widths_and_shapes() -> None:
    torch.manual_seed(0)
    net = mac_net(1.0)
    assert net.widths == PAPER_WIDTHS == (64, 128, 256, 256, 512)
    f_g, f_l = net.online(torch.rand(2, 1, 32, 48))
    assert f_g.shape == (2, 512, 2, 3)  # 512 x H/16 x W/16
    assert f_l.shape == (2, 64, 32, 48)  # 64 x H x W
    # heads: projector 512 -> 1024 -> 256, predictor 256 -> 1024 -> 256, local 64 -> 256 -> 256
    assert [m.weight.shape for m in net.online.projector if isinstance(m, torch.nn.Linear)] == [(1024, 512), (256, 1024)]
    assert [m.weight.shape for m in net.predictor if isinstance(m, torch.nn.Linear)] == [(1024, 256), (256, 1024)]
    v = net.local_mlp(torch.randn(5, 64))
    assert v.shape == (5, 256)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(5))


def test_width_multiplier(tiny: MACNet) -> None:
    assert tiny.widths == (8, 16, 32, 32, 64)
    assert "F_g 64 x H/16" in repr(tiny)


def test_coarsest_level_is_cut_from_the_decoder() -> None:
    """F_l must not depend on the H/16 level (the cut connection), F_g must."""
    torch.manual_seed(1)
    net = DisentangledUNet((4, 4, 4, 4, 8))
    x = torch.rand(1, 1, 32, 32)
    f_g, f_l = net(x)
    net.down4.zero_grad()
    f_l.sum().backward(retain_graph=True)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in net.down4.parameters())
    f_g.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.down4.parameters())
    # and the local features do depend on the shallow levels
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.up3.parameters())


@pytest.mark.parametrize("size", [(30, 32), (32, 40)])
def test_size_not_divisible_by_16_is_refused(tiny: MACNet, size) -> None:
    with pytest.raises(ParameterError, match="divisible by 16") as err:
        tiny.online(torch.rand(1, 1, *size))
    assert f"{size[0]} x {size[1]}" in str(err.value)


def test_target_starts_equal_and_gets_no_gradient(tiny: MACNet) -> None:
    for p_t, p_o in zip(tiny.target.parameters(), tiny.online.parameters()):
        assert torch.equal(p_t, p_o)
        assert not p_t.requires_grad
    net = copy.deepcopy(tiny)
    loss = ascon_loss(mac_net=net, n_anchors=4, n_queries=32)
    ndct = torch.rand(2, 1, 32, 32) * 0.5 + 0.2
    out = loss.mac_loss(ndct + 0.05 * torch.randn_like(ndct), ndct, generator=torch.Generator().manual_seed(0))
    out.total.backward()
    assert all(p.grad is None for p in net.target.parameters())
    grads = [p.grad for p in net.online_parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_ema_update_follows_its_formula() -> None:
    torch.manual_seed(2)
    online = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.data.normal_()
    online(torch.randn(8, 3))  # changes the online BN running statistics
    before = [p.detach().clone() for p in target.parameters()]
    ema_update(target, online, 0.9)
    for p_t, p_0, p_o in zip(target.parameters(), before, online.parameters()):
        torch.testing.assert_close(p_t, 0.9 * p_0 + 0.1 * p_o)
    for b_t, b_o in zip(target.buffers(), online.buffers()):
        assert torch.equal(b_t, b_o)
    ema_update(target, online, 0.0)
    for p_t, p_o in zip(target.parameters(), online.parameters()):
        assert torch.equal(p_t, p_o)


@pytest.mark.parametrize("momentum", [None, 0.5])
def test_update_target_follows_the_ema_formula(momentum) -> None:
    """p_t <- m p_t + (1 - m) p_o, with m = 0.99 by default; the target never requires gradients."""
    torch.manual_seed(3)
    kwargs = {} if momentum is None else {"momentum": momentum}
    net = MACNet((2, 2, 2, 2, 4), proj_hidden=8, proj_dim=4, local_hidden=8, local_dim=4, **kwargs)
    m = 0.99 if momentum is None else momentum
    assert net.momentum == m
    if momentum is None:
        assert mac_net(0.125).momentum == 0.99
    with torch.no_grad():
        for p in [*net.online.parameters(), *net.local_mlp.parameters()]:
            p.add_(1.0)
    t0 = [p.clone() for p in net.target.parameters()]
    l0 = [p.clone() for p in net.target_local_mlp.parameters()]
    net.update_target()
    for p_t, p_0, p_o in zip(net.target.parameters(), t0, net.online.parameters()):
        torch.testing.assert_close(p_t, m * p_0 + (1 - m) * p_o)
        assert not p_t.requires_grad
    # the EMA copy of the local MLP (official code: mlp2 of netProjection_target) moves the same way
    for p_t, p_0, p_o in zip(net.target_local_mlp.parameters(), l0, net.local_mlp.parameters()):
        torch.testing.assert_close(p_t, m * p_0 + (1 - m) * p_o)
        assert not p_t.requires_grad


def test_denoiser_loss_freezes_mac_net_but_reaches_the_image(tiny: MACNet) -> None:
    net = copy.deepcopy(tiny)
    loss = ascon_loss(mac_net=net, n_anchors=4, n_queries=32)
    ndct = torch.rand(1, 1, 32, 32) * 0.5 + 0.2
    denoised = (ndct + 0.05 * torch.randn_like(ndct)).requires_grad_(True)
    out = loss.denoiser_loss(denoised, ndct, generator=torch.Generator().manual_seed(0))
    out.total.backward()
    assert denoised.grad is not None and float(denoised.grad.abs().sum()) > 0
    assert all(p.grad is None for p in net.parameters())
    assert all(p.requires_grad for p in net.online_parameters())  # flags restored


@pytest.mark.parametrize(
    "kwargs, name",
    [({"momentum": 1.5}, "momentum"), ({"momentum": "high"}, "momentum"), ({"proj_dim": 0}, "proj_dim")],
)
def test_bad_parameters(kwargs, name) -> None:
    with pytest.raises(ParameterError, match=name):
        MACNet((2, 2, 2, 2, 4), **kwargs)


def test_bad_width_and_widths() -> None:
    with pytest.raises(ParameterError, match="width"):
        mac_net(0)
    with pytest.raises(ParameterError, match="widths"):
        DisentangledUNet((8, 16, 32))
    with pytest.raises(ParameterError, match="momentum"):
        ema_update(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), -0.1)


def test_single_value_per_channel_in_train_mode_is_a_clear_error(tiny: MACNet) -> None:
    net = copy.deepcopy(tiny).train()
    with pytest.raises(ParameterError, match="batch"):
        net.online(torch.rand(1, 1, 16, 16))
    net.online(torch.rand(2, 1, 16, 16))  # two values per channel: fine
    net.eval()
    f_g, _ = net.online(torch.rand(1, 1, 16, 16))  # eval mode uses running statistics
    assert f_g.shape == (1, 64, 1, 1)
