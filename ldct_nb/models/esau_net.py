"""ESAU-Net: the efficient self-attention U-Net of ASCON (MICCAI 2023, section 2.2, Fig. 1(a)).

Every level of the U-Net (three down, one bottleneck, three up) is a
:class:`LevelBlock`::

    F'  = Attention(F) + F                      (channel-wise MHSA, eq. (1))
    F_l = Conv(F') + Iden(F)                    (two 3x3 convs; 1x1 identity)

:class:`ChannelAttention` is eq. (1): Q, K, V from a 1x1 conv followed by a 3x3
depth-wise conv, a C x C attention map per head, softmax, V re-weighted, a 1x1
output projection.

Layer arrangement (reconstructed from the official code's settings, which give
4,914,230 parameters exactly; see :func:`esau_net_official`)::

    stem     3x3 conv 1 -> 32, LeakyReLU                            H
    enc1     LevelBlock 32 -> 64,   1 head                          H
    enc2     max-pool, LevelBlock 64 -> 128,  2 heads               H/2
    enc3     max-pool, LevelBlock 128 -> 256, 4 heads               H/4
    bottle   max-pool, LevelBlock 256 -> 256, 8 heads,              H/8
             two-layer conv 256 -> 512 -> 256 (the "FFN hidden 512")
    dec3     bilinear x2, + enc3, LevelBlock 256 -> 128, 4 heads    H/4
    dec2     bilinear x2, + enc2, LevelBlock 128 -> 64,  2 heads    H/2
    dec1     bilinear x2, + enc1, LevelBlock 64 -> 32,   1 head     H
    head     3x3 conv 32 -> 32, LeakyReLU, 3x3 conv 32 -> 1         H

Attention acts on a level's input channels (eq. (1) is applied to F_{l-1}),
and a level's two-layer convolution goes ``C_in -> C_in -> C_out`` (official
``Conv_FFN(in, in, out)``; the bottleneck's hidden layer is 512); up-sampling
is bilinear with ``align_corners=True``; skips are added, not concatenated; no norm layers and no biases; the output is
the image itself (no global residual). Inputs of any size are reflect-padded to
a multiple of 8 and cropped back.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError

__all__ = [
    "ChannelAttention",
    "SpatialAttention",
    "LevelBlock",
    "ESAUNet",
    "ESAUNetConfig",
    "esau_net_paper",
    "esau_net_official",
    "channel_attention_reference",
    "PRESETS",
]


class _QKV(nn.Module):
    """Q, K, V by a 1x1 conv to 3C channels, then a 3x3 depth-wise conv on the 3C channels."""

    def __init__(self, channels: int, bias: bool = False):
        super().__init__()
        self.qkv = nn.Conv2d(channels, 3 * channels, 1, bias=bias)
        self.qkv_dw = nn.Conv2d(3 * channels, 3 * channels, 3, padding=1, groups=3 * channels, bias=bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.qkv_dw(self.qkv(x)).chunk(3, dim=1)


class ChannelAttention(nn.Module):
    """Channel-wise multi-head self-attention, ASCON eq. (1).

    Per head (c = C / heads channels, HW pixels)::

        Q, K, V in R^{c x HW}
        A = softmax(Q K^T * s)  in R^{c x c}, softmax over the last axis (rows sum to one)
        out = A V                               reshaped to c x H x W

    with ``s = 1 / alpha`` (``temperature_mode="divide"``, the paper's
    ``/ alpha``) or ``s = alpha`` (``"multiply"``, the official code's
    temperature). Eq. (1) writes ``V^T softmax(K Q^T / alpha)``; that is
    ``(softmax(Q K^T / alpha) V)^T`` with the softmax normalising each
    query channel's weights, which is what we compute. ``alpha`` is one
    learnable scalar per head, initialised to 1. With ``normalize=True`` Q and
    K are L2-normalised over space first (official code; Restormer [28]),
    which bounds the logits to [-1, 1] * s at any image size. The heads are
    concatenated and mixed by a 1x1 convolution (``w(.)`` in eq. (1)).
    """

    def __init__(
        self,
        channels: int,
        heads: int = 1,
        *,
        temperature_mode: str = "multiply",
        normalize: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        if channels % heads:
            raise ParameterError(f"heads must divide channels: got channels={channels}, heads={heads}")
        if temperature_mode not in ("divide", "multiply"):
            raise ParameterError(f"temperature_mode must be 'divide' or 'multiply', got {temperature_mode!r}")
        self.channels, self.heads = channels, heads
        self.temperature_mode, self.normalize = temperature_mode, normalize
        self.alpha = nn.Parameter(torch.ones(heads, 1, 1))
        self.to_qkv = _QKV(channels, bias)
        self.project = nn.Conv2d(channels, channels, 1, bias=bias)
        self.last_attention: torch.Tensor | None = None
        self.keep_attention = False

    def attention_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, V): A is N x heads x c x c (rows sum to one), V is N x heads x c x HW."""
        n, c, h, w = x.shape
        q, k, v = self.to_qkv(x)
        q, k, v = (t.reshape(n, self.heads, c // self.heads, h * w) for t in (q, k, v))
        if self.normalize:
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        scale = 1.0 / self.alpha if self.temperature_mode == "divide" else self.alpha
        attn = torch.softmax((q @ k.transpose(-2, -1)) * scale, dim=-1)
        return attn, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        attn, v = self.attention_map(x)
        if self.keep_attention:
            self.last_attention = attn.detach()
        return self.project((attn @ v).reshape(n, c, h, w))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, heads={self.heads}, alpha={self.temperature_mode}, normalize={self.normalize}"


def channel_attention_reference(
    x: torch.Tensor,
    w_qkv: torch.Tensor,
    w_dw: torch.Tensor,
    w_proj: torch.Tensor,
    alpha: torch.Tensor,
    heads: int,
    *,
    temperature_mode: str = "multiply",
    normalize: bool = True,
) -> torch.Tensor:
    """A deliberately naive eq. (1) (explicit loops over batch, heads, channel
    pairs and pixels) for testing :class:`ChannelAttention` against.

    ``w_qkv`` is 3C x C (the 1x1 conv), ``w_dw`` is 3C x 3 x 3 (depth-wise),
    ``w_proj`` is C x C, ``alpha`` has ``heads`` entries.
    """
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


class SpatialAttention(nn.Module):
    """Regular (spatial, HW x HW) multi-head self-attention with the same Q, K,
    V and projection layers as :class:`ChannelAttention`; the baseline of the
    paper's efficiency claim ("more efficient than the regular attention map
    of size HW x HW"). Scaled by 1 / sqrt(c) as in ViT [3]."""

    def __init__(self, channels: int, heads: int = 1, *, bias: bool = False):
        super().__init__()
        if channels % heads:
            raise ParameterError(f"heads must divide channels: got channels={channels}, heads={heads}")
        self.channels, self.heads = channels, heads
        self.to_qkv = _QKV(channels, bias)
        self.project = nn.Conv2d(channels, channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        d = c // self.heads
        q, k, v = (t.reshape(n, self.heads, d, h * w) for t in self.to_qkv(x))
        attn = torch.softmax((q.transpose(-2, -1) @ k) / d**0.5, dim=-1)  # N x heads x HW x HW
        return self.project((v @ attn.transpose(-2, -1)).reshape(n, c, h, w))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, heads={self.heads}"


class LevelBlock(nn.Module):
    """One ESAU-Net level: ``F' = Attn(F) + F``; ``F_l = Conv(F') + Iden(F)``.

    ``Conv`` is two 3x3 convolutions (``in -> hidden -> out``, ``hidden``
    defaulting to ``in`` as in the official code), each followed by
    LeakyReLU(``slope``); ``Iden`` is a 1x1 convolution, used when channels
    change or always with ``identity_conv="always"`` (the paper's wording),
    else the plain identity (official code).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int,
        *,
        hidden_channels: int | None = None,
        identity_conv: str = "when_needed",
        temperature_mode: str = "multiply",
        normalize: bool = True,
        slope: float = 0.01,
        bias: bool = False,
    ):
        super().__init__()
        if identity_conv not in ("when_needed", "always"):
            raise ParameterError(f"identity_conv must be 'when_needed' or 'always', got {identity_conv!r}")
        hidden = hidden_channels or in_channels
        self.attention = ChannelAttention(in_channels, heads, temperature_mode=temperature_mode, normalize=normalize, bias=bias)
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1, bias=bias),
            nn.LeakyReLU(slope),
            nn.Conv2d(hidden, out_channels, 3, padding=1, bias=bias),
            nn.LeakyReLU(slope),
        )
        needs = in_channels != out_channels or identity_conv == "always"
        self.identity = nn.Conv2d(in_channels, out_channels, 1, bias=bias) if needs else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.attention(x) + x) + self.identity(x)


@dataclass(frozen=True)
class ESAUNetConfig:
    """Every architectural choice of :class:`ESAUNet` (defaults: the official code)."""

    stem: int = 32
    widths: tuple[int, ...] = (64, 128, 256)
    heads: tuple[int, ...] = (1, 2, 4)
    bottleneck_heads: int = 8
    bottleneck_hidden: int = 512
    identity_conv: str = "when_needed"
    temperature_mode: str = "multiply"
    normalize: bool = True
    slope: float = 0.01
    bias: bool = False


class ESAUNet(nn.Module):
    """ESAU-Net (ASCON Fig. 1(a)) assembled from lists of widths and heads.

    ``widths[i]`` / ``heads[i]`` are the output width and head count of
    encoder level i (resolution H / 2**i); the decoder mirrors them
    (decoder level i maps ``widths[i]`` to ``widths[i-1]``, or to ``stem`` at
    full resolution, with ``heads[i]`` heads). Input: N x 1 x H x W on the
    [0, 1] scale, any H and W; output: the same shape.
    """

    def __init__(self, config: ESAUNetConfig | None = None, **overrides):
        super().__init__()
        cfg = config or ESAUNetConfig()
        if overrides:
            unknown = set(overrides) - set(ESAUNetConfig.__dataclass_fields__)
            if unknown:
                raise ParameterError(f"unknown ESAU-Net option(s) {sorted(unknown)}; valid: {sorted(ESAUNetConfig.__dataclass_fields__)}")
            cfg = ESAUNetConfig(**{**cfg.__dict__, **overrides})
        for name in ("widths", "heads"):
            value = getattr(cfg, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise ParameterError(f"{name} must be a sequence of positive ints, got {value!r}")
        cfg = ESAUNetConfig(**{**cfg.__dict__, "widths": tuple(cfg.widths), "heads": tuple(cfg.heads)})
        for name, value in [("stem", cfg.stem), ("bottleneck_heads", cfg.bottleneck_heads),
                            ("bottleneck_hidden", cfg.bottleneck_hidden), *[("widths", v) for v in cfg.widths],
                            *[("heads", v) for v in cfg.heads]]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name} must hold positive ints, got {value!r}")
        if len(cfg.widths) != len(cfg.heads) or not cfg.widths:
            raise ParameterError(f"widths and heads must be non-empty and of equal length, got {cfg.widths} and {cfg.heads}")
        self.config = cfg
        kw = dict(identity_conv=cfg.identity_conv, temperature_mode=cfg.temperature_mode,
                  normalize=cfg.normalize, slope=cfg.slope, bias=cfg.bias)
        self.stem = nn.Conv2d(1, cfg.stem, 3, padding=1, bias=cfg.bias)
        ins = (cfg.stem,) + cfg.widths[:-1]
        self.encoder = nn.ModuleList(LevelBlock(i, o, h, **kw) for i, o, h in zip(ins, cfg.widths, cfg.heads))
        self.bottleneck = LevelBlock(cfg.widths[-1], cfg.widths[-1], cfg.bottleneck_heads,
                                     hidden_channels=cfg.bottleneck_hidden, **kw)
        self.decoder = nn.ModuleList(
            LevelBlock(o, i, h, **kw) for i, o, h in reversed(list(zip(ins, cfg.widths, cfg.heads)))
        )
        self.head = nn.Sequential(
            nn.Conv2d(cfg.stem, cfg.stem, 3, padding=1, bias=cfg.bias),
            nn.LeakyReLU(cfg.slope),
            nn.Conv2d(cfg.stem, 1, 3, padding=1, bias=cfg.bias),
        )

    @property
    def multiple(self) -> int:
        """Inputs are padded to a multiple of this (one factor 2 per max-pool)."""
        return 2 ** len(self.config.widths)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every level's output (for the notebook's shape table and attention maps)."""
        feats: dict[str, torch.Tensor] = {}
        h = F.leaky_relu(self.stem(x), self.config.slope)
        feats["stem"] = h
        skips = []
        for i, block in enumerate(self.encoder):
            if i:
                h = F.max_pool2d(h, 2)
            h = block(h)
            skips.append(h)
            feats[f"enc{i + 1}"] = h
        h = self.bottleneck(F.max_pool2d(h, 2))
        feats["bottleneck"] = h
        for j, block in enumerate(self.decoder):
            skip = skips[-1 - j]
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=True) + skip
            h = block(h)
            feats[f"dec{len(self.decoder) - j}"] = h
        feats["output"] = self.head(h)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ParameterError(f"ESAU-Net expects an N x 1 x H x W tensor, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if h > ph and w > pw else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return self.features(x)["output"][..., :h, :w]

    def attention_modules(self) -> dict[str, ChannelAttention]:
        """The ChannelAttention of every level, by level name."""
        names = [f"enc{i + 1}" for i in range(len(self.encoder))] + ["bottleneck"]
        names += [f"dec{len(self.decoder) - j}" for j in range(len(self.decoder))]
        blocks = list(self.encoder) + [self.bottleneck] + list(self.decoder)
        return {n: b.attention for n, b in zip(names, blocks)}

    def extra_repr(self) -> str:
        c = self.config
        return (f"stem={c.stem}, widths={c.widths}, heads={c.heads}, bottleneck=({c.widths[-1]}, heads={c.bottleneck_heads}, "
                f"hidden={c.bottleneck_hidden}), alpha={c.temperature_mode}, identity_conv={c.identity_conv}")


OFFICIAL = ESAUNetConfig()
"""The official code's settings (hao1635/ASCON): 4,914,230 parameters."""

PAPER = ESAUNetConfig(identity_conv="always", temperature_mode="divide")
"""The paper's text: ``Iden`` is a 1x1 convolution in every level (adds one
256 x 256 conv at the bottleneck: 4,979,766 parameters) and alpha divides the
logits (``K Q^T / alpha``). Where the paper is silent (widths, heads, sampling,
norms, biases, Q/K normalisation; Fig. S2 is not public here) it uses the
official choices."""

PRESETS = {"paper": PAPER, "official": OFFICIAL}


def esau_net_paper(**overrides) -> ESAUNet:
    """ESAU-Net as the paper's text describes it (see :data:`PAPER`)."""
    return ESAUNet(PAPER, **overrides)


def esau_net_official(**overrides) -> ESAUNet:
    """ESAU-Net with the official code's choices (see :data:`OFFICIAL`); 4,914,230 parameters."""
    return ESAUNet(OFFICIAL, **overrides)
