"""ESAU-Net (ASCON sec. 2.2): the official preset against the official code's output
(golden figures in tests/data), the paper preset against a plain-tensor transcription of
sec. 2.2 / eq. (1), the official-weights loader, presets, any input size."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ldct_nb.errors import ParameterError
from ldct_nb.losses.ssim import ssim
from ldct_nb.models import available, build, presets
from ldct_nb.models.esau_net import (
    ChannelAttention, ESAUNet, ESAUNetConfig, SpatialAttention, esau_net_official, esau_net_paper,
    load_official_state_dict, official_config,
)
from ldct_nb.models.profile import attention_cost, count_flops, count_parameters, spatial_attention_bytes
from ldct_nb.train.methods import build_method

torch.set_num_threads(1)
TINY = dict(stem=4, widths=(8, 8, 16), heads=(1, 2, 4), bottleneck_heads=4, bottleneck_hidden=16)
GOLDEN = Path(__file__).parent / "data" / "ascon_official_golden.safetensors"
# Made once, outside the project, by running the official hao1635/ASCON models/ESAU_net.py
# (ESAU(n_channels=n, num_heads=[1, 2, 4, 8]) in float64, temperatures drawn in [0.5, 2]):
# its state dict under the official names, the input (2 x 1 x 48 x 64) and the output.


def golden(n: int) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    g = load_file(GOLDEN)
    prefix = f"n{n}.state."
    state = {k[len(prefix):]: v for k, v in g.items() if k.startswith(prefix)}
    return state, g[f"n{n}.input"], g[f"n{n}.output"]


def naive_channel_attention(x, w_qkv, w_dw, w_proj, alpha, heads, *, temperature_mode="multiply", normalize=True):
    """Eq. (1) with explicit loops over batch, heads, channel pairs and pixels (float64).

    ``w_qkv`` is 3C x C (the 1x1 conv), ``w_dw`` 3C x 3 x 3 (depth-wise), ``w_proj`` C x C."""
    n, c, h, w = x.shape
    x, w_qkv, w_dw, w_proj, alpha = (t.detach().double() for t in (x, w_qkv, w_dw, w_proj, alpha))
    pre = torch.einsum("oc,nchw->nohw", w_qkv, x)
    padded = F.pad(pre, (1, 1, 1, 1))
    mixed = torch.zeros_like(pre)
    for dy in range(3):
        for dx in range(3):
            mixed += w_dw[None, :, dy, dx, None, None] * padded[:, :, dy : dy + h, dx : dx + w]
    q, k, v = mixed[:, :c], mixed[:, c : 2 * c], mixed[:, 2 * c :]
    d = c // heads
    out = torch.zeros(n, c, h * w, dtype=torch.float64)
    for b in range(n):
        for hd in range(heads):
            sl = slice(hd * d, (hd + 1) * d)
            qh, kh, vh = (t[b, sl].reshape(d, h * w) for t in (q, k, v))
            if normalize:
                qh = qh / qh.norm(dim=1, keepdim=True).clamp_min(1e-12)
                kh = kh / kh.norm(dim=1, keepdim=True).clamp_min(1e-12)
            a = float(alpha.reshape(-1)[hd])
            s = 1.0 / a if temperature_mode == "divide" else a
            logits = torch.tensor([[float((qh[i] * kh[j]).sum()) * s for j in range(d)] for i in range(d)], dtype=torch.float64)
            att = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
            att = att / att.sum(dim=1, keepdim=True)
            for i in range(d):
                out[b, hd * d + i] = sum(att[i, j] * vh[j] for j in range(d))
    return torch.einsum("oc,ncp->nop", w_proj, out).reshape(n, c, h, w)


def paper_forward(x: torch.Tensor, sd: dict[str, torch.Tensor], levels: int, heads: list[int]) -> torch.Tensor:
    """The paper preset written from sec. 2.2 with plain tensor operations on a state dict:
    F' = Attention(F) + F with Attention = w(V^T softmax(K Q^T / alpha)) (Q, K L2-normalised),
    F_l = Conv(F') + Iden(F) with Iden a 1x1 convolution, LeakyReLU(0.01) after each conv."""
    def attention(f, p, nh):
        n, c, h, w = f.shape
        qkv = F.conv2d(F.conv2d(f, sd[p + "attention.to_qkv.qkv.weight"]),
                       sd[p + "attention.to_qkv.qkv_dw.weight"], padding=1, groups=3 * c)
        q, k, v = (t.reshape(n, nh, c // nh, h * w) for t in qkv.split(c, dim=1))
        q, k = q / q.norm(dim=-1, keepdim=True), k / k.norm(dim=-1, keepdim=True)
        a = torch.softmax(q @ k.transpose(-1, -2) / sd[p + "attention.alpha"], dim=-1)
        return F.conv2d((a @ v).reshape(n, c, h, w), sd[p + "attention.project.weight"])

    def level(f, p, nh):
        fp = attention(f, p, nh) + f
        conv = F.leaky_relu(F.conv2d(F.leaky_relu(F.conv2d(fp, sd[p + "conv.0.weight"], padding=1), 0.01),
                                     sd[p + "conv.2.weight"], padding=1), 0.01)
        return conv + F.conv2d(f, sd[p + "identity.weight"])

    f = F.leaky_relu(F.conv2d(x, sd["stem.weight"], padding=1), 0.01)
    skips = []
    for i in range(levels):
        f = level(F.max_pool2d(f, 2) if i else f, f"encoder.{i}.", heads[i])
        skips.append(f)
    f = level(F.max_pool2d(f, 2), "bottleneck.", heads[-1])
    for j in range(levels):
        f = F.interpolate(f, scale_factor=2, mode="bilinear", align_corners=True) + skips[-1 - j]
        f = level(f, f"decoder.{j}.", heads[levels - 1 - j])
    f = F.leaky_relu(F.conv2d(f, sd["head.0.weight"], padding=1), 0.01)
    return F.conv2d(f, sd["head.2.weight"], padding=1)


@pytest.mark.parametrize("n_channels", [4, 8])
@pytest.mark.parametrize("channels_last", [True, False])
def test_official_preset_reproduces_the_official_code(n_channels, channels_last):
    state, x, expected = golden(n_channels)
    net = load_official_state_dict(esau_net_official(n_channels=n_channels, channels_last=channels_last).double(), state)
    with torch.no_grad():
        out = net(x)
    rel = ((out - expected).norm() / expected.norm()).item()
    assert rel < 1e-10, rel
    net32 = load_official_state_dict(esau_net_official(n_channels=n_channels, channels_last=channels_last),
                                     {k: v.float() for k, v in state.items()})
    with torch.no_grad():
        out32 = net32(x.float()).double()
    assert ((out32 - expected).abs().max() / expected.abs().max()).item() < 1e-5


def test_the_paper_wiring_does_not_reproduce_the_official_code():
    """Iden(F) (paper) instead of Iden(F') (official) is visible in the output: the golden
    test above would catch a wiring error."""
    state, x, expected = golden(8)
    cfg = ESAUNetConfig(**{**official_config(8).__dict__, "identity_from": "input"})
    official = load_official_state_dict(esau_net_official(n_channels=8).double(), state)
    paper_wired = ESAUNet(cfg).double()
    paper_wired.load_state_dict(official.state_dict())
    with torch.no_grad():
        rel = ((paper_wired(x) - expected).norm() / expected.norm()).item()
    assert rel > 0.01


@pytest.mark.parametrize("channels_last", [True, False])
def test_paper_preset_equals_a_plain_tensor_transcription_of_section_2_2(channels_last):
    torch.manual_seed(3)
    net = esau_net_paper(channels_last=channels_last, **TINY).double()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("alpha"):
                p.copy_(0.5 + 1.5 * torch.rand_like(p))
    x = torch.rand(2, 1, 32, 40, dtype=torch.float64)
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    with torch.no_grad():
        torch.testing.assert_close(net(x), paper_forward(x, sd, 3, [1, 2, 4, 4]), rtol=1e-10, atol=1e-12)


def test_official_weights_load_from_a_pth_file_with_dataparallel_prefix(tmp_path):
    state, x, expected = golden(4)
    path = tmp_path / "latest_net_G.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    net = load_official_state_dict(esau_net_official(n_channels=4).double(), path)
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected, rtol=1e-9, atol=1e-12)


def test_official_weights_refuse_what_does_not_fit(tmp_path):
    state, _, _ = golden(8)
    with pytest.raises(ParameterError, match=r"key '[\w.]+' has shape \(\d+, .*\) but the model's [\w.]+ has .*n_channels"):
        load_official_state_dict(esau_net_official(n_channels=16), state)
    with pytest.raises(ParameterError, match="'enc9.bogus.weight' is not a parameter"):
        load_official_state_dict(esau_net_official(n_channels=8), {**state, "enc9.bogus.weight": torch.zeros(1)})
    partial = {k: v for k, v in state.items() if "out2" not in k}
    with pytest.raises(ParameterError, match="no official key for the model's 'head.2.weight'"):
        load_official_state_dict(esau_net_official(n_channels=8), partial)
    with pytest.raises(ParameterError, match="identity_from is 'input'"):
        load_official_state_dict(esau_net_paper(), state)
    with pytest.raises(ParameterError, match="does not exist"):
        load_official_state_dict(esau_net_official(n_channels=8), tmp_path / "missing.pth")
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ParameterError, match="cannot read official weights .*broken.pth"):
        load_official_state_dict(esau_net_official(n_channels=8), bad)
    with pytest.raises(ParameterError, match="n_channels must be an even int"):
        official_config(7)


@pytest.mark.parametrize("mode", ["multiply", "divide"])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_channel_attention_matches_naive_eq1(mode, normalize, channels_last):
    torch.manual_seed(0)
    att = ChannelAttention(6, heads=2, temperature_mode=mode, normalize=normalize).double()
    with torch.no_grad():
        att.alpha.copy_(torch.tensor([0.7, 1.9], dtype=torch.float64).view(2, 1, 1))
    x = torch.randn(2, 6, 4, 5, dtype=torch.float64) * (1.0 if normalize else 0.3)
    ref = naive_channel_attention(
        x, att.to_qkv.qkv.weight[:, :, 0, 0], att.to_qkv.qkv_dw.weight[:, 0], att.project.weight[:, :, 0, 0],
        att.alpha.detach(), heads=2, temperature_mode=mode, normalize=normalize,
    )
    if channels_last:
        att, x = att.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
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


@pytest.mark.parametrize("hw", [(17, 23), (33, 8), (3, 5), (37, 53), (64, 64)])
def test_odd_sizes_round_trip(hw):
    """Any size: reflect-padded at the bottom / right to a multiple of 8 (replicate when the
    image is smaller than the padding), run, cropped back; checked against the transcription."""
    torch.manual_seed(0)
    net = esau_net_paper(**TINY).double()
    x = torch.rand(2, 1, *hw, dtype=torch.float64)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and y.dtype == x.dtype and y.is_contiguous()
    h, w = hw
    ph, pw = (-h) % 8, (-w) % 8
    mode = "reflect" if h > ph and w > pw else "replicate"
    padded = F.pad(x, (0, pw, 0, ph), mode=mode) if ph or pw else x
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    torch.testing.assert_close(y, paper_forward(padded, sd, 3, [1, 2, 4, 4])[..., :h, :w], rtol=1e-10, atol=1e-12)


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
    # SSIM forms: the official code's kornia SSIM (reflect padding, map clamped to [0, 1]) in
    # `official`, the default (valid region, no clamp) in `paper`; on this pair the two differ.
    y = (x + 0.2 * torch.rand_like(x)).clamp(0, 1)
    with torch.no_grad():
        _, parts_o, out_o = spec_o.generator_loss(x, y)
        _, parts_p, out_p = spec_p.generator_loss(x, y)
        official = float(1 - ssim(out_o, y, padding="reflect", clamp=True))
        assert abs(official - float(1 - ssim(out_o, y))) > 1e-4
        assert parts_o["ssim_loss"] == pytest.approx(official, rel=1e-6)
        assert parts_p["ssim_loss"] == pytest.approx(float(1 - ssim(out_p, y)), rel=1e-6)
