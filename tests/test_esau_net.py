"""ESAU-Net (ASCON sec. 2.2): eq. (1) against a naive reference, presets, any input size."""
from __future__ import annotations

import pytest
import torch

from ldct_nb.errors import ParameterError
from ldct_nb.models import available, build, build_method, presets
from ldct_nb.models.esau_net import (
    ChannelAttention, ESAUNet, LevelBlock, SpatialAttention, channel_attention_reference, esau_net_official,
    esau_net_paper,
)
from ldct_nb.models.profile import attention_cost, count_flops, count_parameters, spatial_attention_bytes

torch.set_num_threads(1)
TINY = dict(stem=4, widths=(8, 8, 16), heads=(1, 2, 4), bottleneck_heads=4, bottleneck_hidden=16)


@pytest.mark.parametrize("mode", ["multiply", "divide"])
@pytest.mark.parametrize("normalize", [True, False])
def test_channel_attention_matches_naive_eq1(mode, normalize):
    torch.manual_seed(0)
    att = ChannelAttention(6, heads=2, temperature_mode=mode, normalize=normalize).double()
    with torch.no_grad():
        att.alpha.copy_(torch.tensor([0.7, 1.9], dtype=torch.float64).view(2, 1, 1))
    x = torch.randn(2, 6, 4, 5, dtype=torch.float64) * (1.0 if normalize else 0.3)
    ref = channel_attention_reference(
        x, att.to_qkv.qkv.weight[:, :, 0, 0], att.to_qkv.qkv_dw.weight[:, 0], att.project.weight[:, :, 0, 0],
        att.alpha.detach(), heads=2, temperature_mode=mode, normalize=normalize,
    )
    torch.testing.assert_close(att(x), ref, rtol=1e-9, atol=1e-10)


def test_divide_and_multiply_differ_unless_alpha_is_one():
    torch.manual_seed(1)
    a, b = ChannelAttention(4, 1, temperature_mode="divide"), ChannelAttention(4, 1, temperature_mode="multiply")
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 4, 6, 6)
    torch.testing.assert_close(a(x), b(x))  # alpha = 1 at init: identical
    with torch.no_grad():
        a.alpha.fill_(2.0)
        b.alpha.fill_(0.5)
    torch.testing.assert_close(a(x), b(x))  # 1/2 == 0.5
    with torch.no_grad():
        b.alpha.fill_(2.0)
    assert not torch.allclose(a(x), b(x))


def test_attention_rows_sum_to_one_and_map_is_c_by_c():
    torch.manual_seed(0)
    att = ChannelAttention(8, heads=4)
    attn, v = att.attention_map(torch.randn(3, 8, 7, 9))
    assert attn.shape == (3, 4, 2, 2) and v.shape == (3, 4, 2, 63)
    torch.testing.assert_close(attn.sum(-1), torch.ones(3, 4, 2))
    assert (attn >= 0).all()


def test_gradients_reach_alpha():
    torch.manual_seed(0)
    for mode in ("divide", "multiply"):
        att = ChannelAttention(8, heads=2, temperature_mode=mode)
        (att(torch.randn(2, 8, 5, 5)) ** 2).sum().backward()
        assert att.alpha.grad is not None and att.alpha.grad.abs().sum() > 0


def test_official_preset_parameter_count():
    n = count_parameters(esau_net_official())
    assert abs(n - 4_914_230) <= 0.01 * 4_914_230
    assert n == 4_914_230  # the arrangement documented in esau_net's module docstring is exact


def test_paper_preset_differs_only_by_documented_identity_conv():
    paper, official = esau_net_paper(), esau_net_official()
    assert count_parameters(paper) - count_parameters(official) == 256 * 256  # bottleneck 1x1 identity
    assert paper.config.temperature_mode == "divide" and official.config.temperature_mode == "multiply"
    assert isinstance(official.bottleneck.identity, torch.nn.Identity)
    assert isinstance(paper.bottleneck.identity, torch.nn.Conv2d)


def test_level_block_is_attention_residual_then_conv_plus_identity():
    torch.manual_seed(0)
    blk = LevelBlock(4, 6, 2)
    x = torch.randn(1, 4, 5, 5)
    expected = blk.conv(blk.attention(x) + x) + blk.identity(x)
    torch.testing.assert_close(blk(x), expected)
    assert isinstance(blk.identity, torch.nn.Conv2d) and blk.identity.kernel_size == (1, 1)


@pytest.mark.parametrize("hw", [(17, 23), (33, 8), (3, 5), (37, 53), (64, 64)])
def test_odd_sizes_round_trip(hw):
    torch.manual_seed(0)
    net = ESAUNet(**TINY)
    x = torch.rand(2, 1, *hw)
    y = net(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    # the output is the top-left H x W of the network applied to the bottom/right padded input
    h, w = hw
    ph, pw = (-h) % 8, (-w) % 8
    mode = "reflect" if h > ph and w > pw else "replicate"
    padded = torch.nn.functional.pad(x, (0, pw, 0, ph), mode=mode) if ph or pw else x
    torch.testing.assert_close(y, net.features(padded)["output"][..., :h, :w])


def test_official_wiring_matches_a_hand_assembled_forward():
    """Official hao1635/ASCON: stem conv + LeakyReLU; each level's Conv goes in -> in -> out
    (Conv_FFN(in, in, out)), the bottleneck's 256 -> 512 -> 256; max-pool down; bilinear x2
    with align_corners=True up; skips added; head conv, LeakyReLU, conv; no global residual."""
    net = esau_net_official()
    convs = [b.conv[0] for b in [*net.encoder, net.bottleneck, *net.decoder]]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (32, 32), (64, 64), (128, 128), (256, 512), (256, 256), (128, 128), (64, 64)]
    torch.manual_seed(0)
    tiny = ESAUNet(**TINY)
    x = torch.rand(1, 1, 16, 24)
    lrelu = torch.nn.functional.leaky_relu
    up = lambda t: torch.nn.functional.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)
    pool = lambda t: torch.nn.functional.max_pool2d(t, 2)
    s = lrelu(tiny.stem(x), 0.01)
    e1 = tiny.encoder[0](s)
    e2 = tiny.encoder[1](pool(e1))
    e3 = tiny.encoder[2](pool(e2))
    b = tiny.bottleneck(pool(e3))
    d3 = tiny.decoder[0](up(b) + e3)
    d2 = tiny.decoder[1](up(d3) + e2)
    d1 = tiny.decoder[2](up(d2) + e1)
    torch.testing.assert_close(tiny(x), tiny.head(d1))


def test_feature_shapes_per_level():
    net = ESAUNet(**TINY)
    feats = net.features(torch.rand(1, 1, 32, 32))
    assert feats["enc1"].shape == (1, 8, 32, 32)
    assert feats["enc3"].shape == (1, 16, 8, 8)
    assert feats["bottleneck"].shape == (1, 16, 4, 4)
    assert feats["dec1"].shape == (1, 4, 32, 32)
    assert set(net.attention_modules()) == {"enc1", "enc2", "enc3", "bottleneck", "dec3", "dec2", "dec1"}


def test_spatial_attention_cost_grows_quadratically_and_refuses_huge():
    assert spatial_attention_bytes(128) == 16 * spatial_attention_bytes(64)
    row = attention_cost("spatial", 32, 512, max_bytes=2**30)
    assert row["fits"] is False and row["attention_matrix_mb"] == 512**4 * 4 / 2**20
    small = attention_cost("spatial", 8, 16, repeats=1)
    assert small["fits"] and small["time_s"] > 0
    sp = SpatialAttention(8, 2)
    assert sp(torch.randn(1, 8, 6, 6)).shape == (1, 8, 6, 6)


def test_flops_channel_attention_linear_in_pixels():
    att = ChannelAttention(16, 2)
    f32 = count_flops(att, 32, channels=16)
    f64 = count_flops(att, 64, channels=16)
    assert f64 == 4 * f32  # every term of eq. (1) is linear in HW


def test_registry_errors_name_the_parameter():
    assert "esau_net" in available() and presets("esau_net") == ["paper", "official"]
    with pytest.raises(ParameterError, match="unknown model name 'nope'.*esau_net"):
        build("nope")
    with pytest.raises(ParameterError, match="preset 'fast'.*paper"):
        build("esau_net", preset="fast")
    with pytest.raises(ParameterError, match="heads must divide channels"):
        ChannelAttention(6, heads=4)
    with pytest.raises(ParameterError, match="unknown ESAU-Net option"):
        build("esau_net", depth=3)
    with pytest.raises(ParameterError, match="N x 1 x H x W"):
        ESAUNet(**TINY)(torch.rand(1, 2, 8, 8))


def test_esau_method_loss_presets():
    spec_p = build_method("esau_net", "paper", **TINY)
    spec_o = build_method("esau_net", "official", **TINY)
    assert spec_p.critic is None and spec_p.generator_optim.betas == (0.9, 0.99)
    assert spec_o.generator_optim.lr == 2e-4 and spec_o.generator_optim.weight_decay == 0.01
    x = torch.rand(1, 1, 32, 32)
    loss, parts, out = spec_o.generator_loss(x, x.clone())
    assert out.shape == x.shape
    assert loss.item() == pytest.approx(100 * parts["pixel"] + 10 * parts["ssim_loss"], rel=1e-5)
