"""ESAU-Net: the efficient self-attention U-Net of ASCON (MICCAI 2023, section 2.2, Fig. 1(a)).

Every level of the U-Net (three down, one bottleneck, three up) is a
:class:`LevelBlock`::

    F'  = Attention(F) + F                      (channel-wise MHSA, eq. (1))
    F_l = Conv(F') + Iden(F)                    (paper, sec. 2.2)
    F_l = Conv(F') + Iden(F')                   (official code: Conv_FFN receives F')

:class:`ChannelAttention` is eq. (1): Q, K, V from a 1x1 conv followed by a 3x3
depth-wise conv, a C x C attention map per head, softmax, V re-weighted, a 1x1
output projection.

Layer arrangement (reconstructed from the official code's settings, which give
4,914,230 parameters exactly; see :func:`esau_net_official`; checked against the
official code's output for the same weights by ``tests/test_esau_net.py``)::

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

Presets: :data:`PAPER` and :data:`OFFICIAL`; :func:`load_official_state_dict`
loads a checkpoint saved by the official code into :func:`esau_net_official`.
The network runs in channels-last memory format by default
(``channels_last=True``: weights and activations), which makes the depth-wise
and 1x1 convolutions of the attention 2-3 times faster on CPU with oneDNN and
suits tensor cores under bf16 autocast on CUDA; the arithmetic is unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

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
    "load_official_state_dict",
    "official_config",
    "PRESETS",
]


class _QKV(nn.Module):
    """Q, K, V by a 1x1 conv to 3C channels, then a 3x3 depth-wise conv on the 3C channels."""

    def __init__(self, channels: int, bias: bool = False):
        super().__init__()
        self.qkv = nn.Conv2d(channels, 3 * channels, 1, bias=bias)
        self.qkv_dw = nn.Conv2d(3 * channels, 3 * channels, 3, padding=1, groups=3 * channels, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The 3C-channel Q|K|V map (N x 3C x H x W)."""
        return self.qkv_dw(self.qkv(x))


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


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

    Implementation: the L2 normalisation is applied to the c x c logits,
    ``(Q K^T)_ij / (|Q_i| |K_j|)``, which equals normalising Q and K first
    but touches c x c numbers instead of two c x HW maps; with a
    channels-last input (``ESAUNet`` uses one on CPU) Q, K and V are strided
    views of the convolution output, with no copies. The softmax runs in
    float32 under autocast.
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

    def _split(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Q, K, V as N x heads x c x HW views of the 3C-channel map (either memory layout)."""
        n, c3, h, w = qkv.shape
        d = c3 // (3 * self.heads)
        # unbind along the memory's own "3" axis, so that its backward (a stack) writes the
        # gradient straight into the convolution's layout, with no extra copy
        if _is_channels_last(qkv):  # memory N, H, W, 3, heads, c
            q, k, v = qkv.permute(0, 2, 3, 1).reshape(n, h * w, 3, self.heads, d).unbind(2)
            return tuple(t.permute(0, 2, 3, 1) for t in (q, k, v))
        return qkv.reshape(n, 3, self.heads, d, h * w).unbind(1)  # memory N, 3, heads, c, H, W

    def attention_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, V): A is N x heads x c x c (rows sum to one), V is N x heads x c x HW."""
        q, k, v = self._split(self.to_qkv(x))
        logits = q @ k.transpose(-2, -1)
        if self.normalize:
            qn = torch.linalg.vector_norm(q, dim=-1).clamp_min(1e-12)
            kn = torch.linalg.vector_norm(k, dim=-1).clamp_min(1e-12)
            logits = logits / (qn.unsqueeze(-1) * kn.unsqueeze(-2))
        scale = 1.0 / self.alpha if self.temperature_mode == "divide" else self.alpha
        wide = torch.promote_types(logits.dtype, torch.float32)  # bf16 / fp16 logits: softmax in float32
        attn = torch.softmax(logits.to(wide) * scale.to(wide), dim=-1).to(v.dtype)
        return attn, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        attn, v = self.attention_map(x)
        if self.keep_attention:
            self.last_attention = attn.detach()
        if _is_channels_last(x):  # N x heads x HW x c -> N x HW x C: a channels-last image
            out = (v.transpose(-2, -1) @ attn.transpose(-2, -1)).transpose(1, 2).reshape(n, h, w, c).permute(0, 3, 1, 2)
        else:
            out = (attn @ v).reshape(n, c, h, w)
        return self.project(out)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, heads={self.heads}, alpha={self.temperature_mode}, normalize={self.normalize}"


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
        q, k, v = (t.reshape(n, self.heads, d, h * w) for t in self.to_qkv(x).chunk(3, dim=1))
        attn = torch.softmax((q.transpose(-2, -1) @ k) / d**0.5, dim=-1)  # N x heads x HW x HW
        return self.project((v @ attn.transpose(-2, -1)).reshape(n, c, h, w))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, heads={self.heads}"


class LevelBlock(nn.Module):
    """One ESAU-Net level: ``F' = Attn(F) + F``, then ``F_l = Conv(F') + Iden(.)``.

    ``Conv`` is two 3x3 convolutions (``in -> hidden -> out``, ``hidden``
    defaulting to ``in`` as in the official code), each followed by
    LeakyReLU(``slope``). ``Iden`` is a 1x1 convolution, used when channels
    change or always with ``identity_conv="always"`` (the paper's wording),
    else the plain identity (official code). What ``Iden`` receives is
    ``identity_from``:

    * ``"input"``: ``Iden(F)``, the paper's equation (sec. 2.2,
      ``F_l = Conv(F'_{l-1}) + Iden(F_{l-1})``);
    * ``"attended"``: ``Iden(F')``, the official code (its ``Conv_FFN``
      receives ``F'`` for both branches).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int,
        *,
        hidden_channels: int | None = None,
        identity_conv: str = "when_needed",
        identity_from: str = "attended",
        temperature_mode: str = "multiply",
        normalize: bool = True,
        slope: float = 0.01,
        bias: bool = False,
    ):
        super().__init__()
        if identity_conv not in ("when_needed", "always"):
            raise ParameterError(f"identity_conv must be 'when_needed' or 'always', got {identity_conv!r}")
        if identity_from not in IDENTITY_FROM:
            raise ParameterError(f"identity_from must be one of {IDENTITY_FROM}, got {identity_from!r}")
        hidden = hidden_channels or in_channels
        self.identity_from = identity_from
        self.attention = ChannelAttention(in_channels, heads, temperature_mode=temperature_mode, normalize=normalize, bias=bias)
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1, bias=bias),
            nn.LeakyReLU(slope, inplace=True),
            nn.Conv2d(hidden, out_channels, 3, padding=1, bias=bias),
            nn.LeakyReLU(slope, inplace=True),
        )
        needs = in_channels != out_channels or identity_conv == "always"
        self.identity = nn.Conv2d(in_channels, out_channels, 1, bias=bias) if needs else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended = self.attention(x) + x
        return self.conv(attended) + self.identity(attended if self.identity_from == "attended" else x)

    def extra_repr(self) -> str:
        return f"identity_from={self.identity_from}"


IDENTITY_FROM = ("attended", "input")


@dataclass(frozen=True)
class ESAUNetConfig:
    """Every architectural choice of :class:`ESAUNet` (defaults: the official code)."""

    stem: int = 32
    widths: tuple[int, ...] = (64, 128, 256)
    heads: tuple[int, ...] = (1, 2, 4)
    bottleneck_heads: int = 8
    bottleneck_hidden: int = 512
    identity_conv: str = "when_needed"
    identity_from: str = "attended"
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

    def __init__(self, config: ESAUNetConfig | None = None, *, channels_last: bool = True, **overrides):
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
        for name in ("normalize", "bias"):
            if not isinstance(getattr(cfg, name), bool):
                raise ParameterError(f"{name} must be True or False, got {getattr(cfg, name)!r}")
        if isinstance(cfg.slope, bool) or not isinstance(cfg.slope, (int, float)) or not math.isfinite(cfg.slope):
            raise ParameterError(f"slope must be a finite number (LeakyReLU negative slope), got {cfg.slope!r}")
        if len(cfg.widths) != len(cfg.heads) or not cfg.widths:
            raise ParameterError(f"widths and heads must be non-empty and of equal length, got {cfg.widths} and {cfg.heads}")
        self.config = cfg
        kw = dict(identity_conv=cfg.identity_conv, identity_from=cfg.identity_from, temperature_mode=cfg.temperature_mode,
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
        if not isinstance(channels_last, bool):
            raise ParameterError(f"channels_last must be True or False, got {channels_last!r}")
        self.channels_last = channels_last
        if channels_last:  # weights too, so that no convolution converts them at every call
            self.to(memory_format=torch.channels_last)

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
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 1:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ParameterError(f"ESAU-Net expects an N x 1 x H x W tensor, got shape {shape}")
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if h > ph and w > pw else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.features(x)["output"][..., :h, :w].contiguous()

    def attention_modules(self) -> dict[str, ChannelAttention]:
        """The ChannelAttention of every level, by level name."""
        names = [f"enc{i + 1}" for i in range(len(self.encoder))] + ["bottleneck"]
        names += [f"dec{len(self.decoder) - j}" for j in range(len(self.decoder))]
        blocks = list(self.encoder) + [self.bottleneck] + list(self.decoder)
        return {n: b.attention for n, b in zip(names, blocks)}

    def extra_repr(self) -> str:
        c = self.config
        return (f"stem={c.stem}, widths={c.widths}, heads={c.heads}, bottleneck=({c.widths[-1]}, heads={c.bottleneck_heads}, "
                f"hidden={c.bottleneck_hidden}), alpha={c.temperature_mode}, identity_conv={c.identity_conv}, "
                f"identity_from={c.identity_from}")


OFFICIAL = ESAUNetConfig(identity_from="attended")
"""The official code's settings (hao1635/ASCON ``ESAU(n_channels=64, num_heads=[1, 2, 4, 8])``):
4,914,230 parameters; ``Iden`` receives ``F'`` (its ``Conv_FFN`` takes the attended map)."""

PAPER = ESAUNetConfig(identity_conv="always", identity_from="input", temperature_mode="divide")
"""The paper's text (sec. 2.2): ``F_l = Conv(F'_{l-1}) + Iden(F_{l-1})`` with ``Iden`` a 1x1
convolution in every level (adds one 256 x 256 conv at the bottleneck: 4,979,766
parameters), and alpha divides the logits (``K Q^T / alpha``). Where the paper is silent
(widths, heads, sampling, norms, biases, Q/K normalisation; Fig. S2 is not public here) it
uses the official choices."""

PRESETS = {"paper": PAPER, "official": OFFICIAL}


def official_config(n_channels: int = 64) -> ESAUNetConfig:
    """The official preset at the official code's width parameter ``n_channels``:
    stem ``n/2``, levels ``n, 2n, 4n``, bottleneck ``4n`` with hidden ``8n``, heads 1, 2, 4, 8."""
    if isinstance(n_channels, bool) or not isinstance(n_channels, int) or n_channels < 2 or n_channels % 2:
        raise ParameterError(f"n_channels must be an even int >= 2, got {n_channels!r}")
    n = n_channels
    return ESAUNetConfig(stem=n // 2, widths=(n, 2 * n, 4 * n), heads=(1, 2, 4), bottleneck_heads=8,
                         bottleneck_hidden=8 * n, identity_from="attended")


def esau_net_paper(**overrides) -> ESAUNet:
    """ESAU-Net as the paper's text describes it (see :data:`PAPER`)."""
    return ESAUNet(PAPER, **overrides)


def esau_net_official(n_channels: int = 64, **overrides) -> ESAUNet:
    """ESAU-Net with the official code's choices (see :data:`OFFICIAL`) at width
    ``n_channels`` (64: 4,914,230 parameters)."""
    return ESAUNet(official_config(n_channels), **overrides)


# ----------------------------------------------------------------------------- official weights

_OFFICIAL_LEVELS = {  # official module prefix -> ours, for the three levels of each side
    "enc1.esaublock.": "encoder.0.",
    "enc2.encoder.1.esaublock.": "encoder.1.",
    "enc3.encoder.1.esaublock.": "encoder.2.",
    "dec1.conv.esaublock.": "decoder.0.",
    "dec2.conv.esaublock.": "decoder.1.",
    "dec3.conv.esaublock.": "decoder.2.",
}
_OFFICIAL_BLOCK = {  # inside an ESAU_Block: 0 = Attention_Block, 1 = Conv_FFN
    "0.attention_s.temperature": "attention.alpha",
    "0.attention_s.qkv.weight": "attention.to_qkv.qkv.weight",
    "0.attention_s.qkv_dwconv.weight": "attention.to_qkv.qkv_dw.weight",
    "0.attention_s.project_out.weight": "attention.project.weight",
    "1.conv_1.weight": "conv.0.weight",
    "1.conv_2.weight": "conv.2.weight",
    "1.shortcut.weight": "identity.weight",
}
_OFFICIAL_SINGLE = {"firstconv.conv.weight": "stem.weight", "out1.conv.weight": "head.0.weight",
                    "out2.conv.weight": "head.2.weight"}


def official_key(key: str) -> str | None:
    """Our parameter name for an official ``ESAU`` state-dict key (None if it has no counterpart)."""
    if key in _OFFICIAL_SINGLE:
        return _OFFICIAL_SINGLE[key]
    for prefix, ours in _OFFICIAL_LEVELS.items():
        if key.startswith(prefix) and key[len(prefix):] in _OFFICIAL_BLOCK:
            return ours + _OFFICIAL_BLOCK[key[len(prefix):]]
    if key.startswith("enc4.encoder."):  # LastDown: 0 max-pool, 1 Attention_Block, 2 Conv_FFN
        rest = key[len("enc4.encoder."):]
        if rest[:2] in ("1.", "2.") and f"{int(rest[0]) - 1}.{rest[2:]}" in _OFFICIAL_BLOCK:
            return "bottleneck." + _OFFICIAL_BLOCK[f"{int(rest[0]) - 1}.{rest[2:]}"]
    return None


def load_official_state_dict(model: ESAUNet, state_dict: dict[str, torch.Tensor] | str | Path) -> ESAUNet:
    """Load weights saved by the official ASCON code (``models/ESAU_net.py``) into ``model``.

    ``state_dict`` is the official generator's state dict or the path of a
    ``.pth`` file the official code saved (``<epoch>_net_G.pth``), read with
    ``torch.load(weights_only=True)``; a ``module.`` prefix (DataParallel) is
    removed. ``model`` must be an :class:`ESAUNet` with the official wiring
    (:func:`esau_net_official`, any ``n_channels``). Every official key is
    mapped (``firstconv``, ``enc1..enc4``, ``dec1..dec3``, ``out1``, ``out2``;
    ``attention_s``, ``qkv``, ``qkv_dwconv``, ``project_out``, ``temperature``,
    ``conv_1``, ``conv_2``, ``shortcut``) and its shape checked; the first key
    that has no counterpart or does not fit raises a
    :class:`~ldct_nb.errors.ParameterError` naming it. Returns ``model``.
    """
    if not isinstance(model, ESAUNet):
        raise ParameterError(f"model must be an ESAUNet (esau_net_official(n_channels=...)), got {type(model).__name__}")
    cfg = model.config
    wanted = {"identity_from": "attended", "identity_conv": "when_needed", "temperature_mode": "multiply",
              "normalize": True, "bias": False}
    for field_name, value in wanted.items():
        if getattr(cfg, field_name) != value:
            raise ParameterError(
                f"official weights need the official wiring: model.config.{field_name} is "
                f"{getattr(cfg, field_name)!r}, the official code uses {value!r} (build esau_net_official(n_channels=...))"
            )
    if len(cfg.widths) != 3:
        raise ParameterError(f"official weights have 3 encoder levels; the model has widths {cfg.widths}")
    source = "state_dict"
    if isinstance(state_dict, (str, Path)):
        source = str(state_dict)
        path = Path(state_dict)
        if not path.is_file():
            raise ParameterError(f"official weights file {path} does not exist")
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # unpickling errors, truncated files
            raise ParameterError(f"cannot read official weights {path}: {exc}") from exc
    if not isinstance(state_dict, dict) or not state_dict:
        raise ParameterError(f"{source}: expected a non-empty state dict (name -> tensor), got {type(state_dict).__name__}")
    ours = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        bare = key[len("module."):] if key.startswith("module.") else key
        name = official_key(bare)
        if name is None or name not in ours:
            raise ParameterError(f"{source}: key {key!r} is not a parameter of the official ESAU-Net (or has no "
                                 f"counterpart in this model)")
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(ours[name].shape):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ParameterError(
                f"{source}: key {key!r} has shape {shape} but the model's {name} has {tuple(ours[name].shape)}; "
                f"build the model with the checkpoint's width (esau_net_official(n_channels=...))"
            )
        mapped[name] = value
    missing = [k for k in ours if k not in mapped]
    if missing:
        raise ParameterError(f"{source}: no official key for the model's {missing[0]!r} ({len(missing)} missing)")
    model.load_state_dict(mapped)
    return model
