"""MAC-Net: ASCON's multi-scale anatomical contrastive network (MICCAI 2023, sec. 2.3).

A disentangled U-shaped network (U-Net [22]) gives two representations of a
CT image in [0, 1]:

* the **global** representation ``F_g`` (512 x H/16 x W/16), the coarsest
  encoder level after four down-samplings; each of its pixels is a "patch";
* the **local** representation ``F_l`` (64 x H x W), the decoder output
  without the final 1x1 output layer.

"We cut the connection between the coarsest feature and its upper level": the
decoder starts from the H/8 level, so ``F_g`` never feeds ``F_l`` (Fig. S2(b)).

Two branches share this architecture. The **online** branch sees the denoised
image Y' and is trained; the **target** branch sees the NDCT image Y and is an
exponential moving average (EMA) of the online one (BYOL [7], MoCo [8]); it
never receives gradients. On top of the backbone:

* global projector ``p_g``: 512 -> 1024 -> BN -> ReLU -> 256 (online and target);
* predictor ``q``: 256 -> 1024 -> BN -> ReLU -> 256 (online only);
* local MLP: 64 -> 256 -> ReLU -> 256, then L2 normalisation (K = 256).

Widths and heads follow the official code (GitHub hao1635/ASCON): blocks of
(3x3 conv, BatchNorm, ReLU) x 2; encoder widths 64, 128, 256, 256, 512; max-pool
down-sampling; bilinear x2 up-sampling with concatenated skips; decoder widths
128, 64, 64. Inputs must have a height and width divisible by 16 (no padding is
done: :class:`~ldct_nb.errors.ParameterError` names the size otherwise).

The local MLP: the online ``local_mlp`` is trained; ``target_local_mlp`` is its EMA
copy (like the target branch, no gradients). Which one maps the positive and the
negatives is the loss's choice (``local_target`` of
:class:`~ldct_nb.losses.ascon_loss.AsconLoss`):

* ``"online"`` (``paper`` preset): one MLP for the query, the positive and the
  negatives, as sec. 2.3 reads ("concatenate ... and map them ... through a
  two-layer MLP"), with gradients on every side;
* ``"ema"`` (``official`` preset): the official code maps the query with the
  online head and the positive and negatives with the EMA copy of the projection
  head (``mlp2`` of ``netProjection_target``) under ``no_grad``.

BatchNorm buffers: :func:`ema_update` copies the online running statistics into
the target (the official code leaves the target's own). Training runs MAC-Net in
train mode, where BatchNorm uses batch statistics, so this only matters for a
target used in eval mode.

The losses that use these features are in :mod:`ldct_nb.losses`.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError
from ldct_nb.validate import check_image_batch

PAPER_WIDTHS = (64, 128, 256, 256, 512)  # encoder widths at H, H/2, H/4, H/8, H/16
DOWNSAMPLING = 16  # H / 16: four max-pool down-samplings


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParameterError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_momentum(momentum) -> float:
    try:
        m = float(momentum)
    except (TypeError, ValueError):
        m = float("nan")
    if isinstance(momentum, bool) or not 0.0 <= m <= 1.0:
        raise ParameterError(f"momentum must be a number in [0, 1], got {momentum!r}")
    return m


class ConvBlock(nn.Sequential):
    """(3x3 conv, BatchNorm, ReLU) x 2: the U-Net level block of MAC-Net."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None) -> None:
        mid = mid_channels or out_channels
        super().__init__(
            nn.Conv2d(in_channels, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """2x2 max-pool, then a :class:`ConvBlock`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.MaxPool2d(2), ConvBlock(in_channels, out_channels))


class Up(nn.Module):
    """Bilinear x2 up-sampling, concatenation with the skip feature, :class:`ConvBlock`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = ConvBlock(in_channels, out_channels, in_channels // 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        return self.block(torch.cat([skip, x], dim=1))


class DisentangledUNet(nn.Module):
    """The MAC-Net backbone: ``forward(x) -> (F_g, F_l)``.

    Args:
        widths: encoder widths at H, H/2, H/4, H/8, H/16 (five levels, four
            down-samplings). Default :data:`PAPER_WIDTHS` = (64, 128, 256, 256, 512).
        in_channels: image channels (1 for CT).

    ``F_g`` has ``widths[4]`` channels at H/16; ``F_l`` has ``widths[0]``
    channels at H. The decoder starts from the H/8 level (``widths[3]``): the
    H/16 -> H/8 connection is cut. Decoder widths are ``widths[1]``,
    ``widths[0]``, ``widths[0]`` (128, 64, 64 with the paper widths).
    """

    def __init__(self, widths: Sequence[int] = PAPER_WIDTHS, in_channels: int = 1) -> None:
        super().__init__()
        widths = tuple(widths)
        if len(widths) != 5:
            raise ParameterError(f"widths must list 5 encoder widths (H ... H/16), got {widths!r}")
        for i, w in enumerate(widths):
            _check_positive_int(f"widths[{i}]", w)
        _check_positive_int("in_channels", in_channels)
        self.widths = widths
        c0, c1, c2, c3, c4 = widths
        self.inc = ConvBlock(in_channels, c0)
        self.down1 = Down(c0, c1)
        self.down2 = Down(c1, c2)
        self.down3 = Down(c2, c3)
        self.down4 = Down(c3, c4)  # -> F_g, not connected to the decoder
        self.up1 = Up(c3 + c2, c1)  # H/8 -> H/4
        self.up2 = Up(c1 + c1, c0)  # H/4 -> H/2
        self.up3 = Up(c0 + c0, c0)  # H/2 -> H, output F_l

    @property
    def global_channels(self) -> int:
        return self.widths[4]

    @property
    def local_channels(self) -> int:
        return self.widths[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_input(x)
        b, _, h, w = x.shape
        if self.training and b * (h // DOWNSAMPLING) * (w // DOWNSAMPLING) < 2:
            raise ParameterError(
                f"MAC-Net in train mode needs more than one value per channel at H/16 for BatchNorm; got a batch "
                f"of {b} image(s) of {h} x {w} (F_g is {h // DOWNSAMPLING} x {w // DOWNSAMPLING}): use a batch of 2 "
                "or more, larger images, or eval mode"
            )
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        f_g = self.down4(x4)
        y = self.up1(x4, x3)
        y = self.up2(y, x2)
        f_l = self.up3(y, x1)
        return f_g, f_l


def check_input(x: torch.Tensor, name: str = "MAC-Net input") -> None:
    """Refuse an image batch that is not (B, C, H, W) with H, W divisible by 16.

    ``name`` is the parameter named in the error message."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ParameterError(f"{name} must be a (B, C, H, W) tensor, got {shape}")
    h, w = x.shape[-2:]
    if h % DOWNSAMPLING or w % DOWNSAMPLING:
        raise ParameterError(
            f"{name} size must be divisible by {DOWNSAMPLING} (MAC-Net's four down-samplings); "
            f"got H x W = {h} x {w}: crop or pad the image first"
        )


class MLPHead(nn.Sequential):
    """BYOL projector / predictor: Linear -> BatchNorm1d -> ReLU -> Linear.

    ``p_g``: 512 -> 1024 -> 256; ``q``: 256 -> 1024 -> 256 (paper defaults).
    """

    def __init__(self, in_dim: int, hidden_dim: int = 1024, out_dim: int = 256) -> None:
        super().__init__(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )


class LocalMLP(nn.Module):
    """Two-layer MLP of the pixel-wise module, then L2 normalisation: 64 -> 256 -> ReLU -> 256."""

    def __init__(self, in_dim: int = 64, hidden_dim: int = 256, out_dim: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=-1)


class MACBranch(nn.Module):
    """One branch (online or target): the backbone and the global projector ``p_g``."""

    def __init__(self, widths: Sequence[int] = PAPER_WIDTHS, *, proj_hidden: int = 1024, proj_dim: int = 256) -> None:
        super().__init__()
        self.backbone = DisentangledUNet(widths)
        self.projector = MLPHead(self.backbone.global_channels, proj_hidden, proj_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F_g, F_l)`` of an image batch in [0, 1]."""
        return self.backbone(x)


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float = 0.99) -> None:
    """EMA step ``p_t <- m p_t + (1 - m) p_o`` for every parameter (BYOL [7]).

    Buffers (BatchNorm running statistics and counters) are copied from the
    online module. ``target`` and ``online`` must have the same architecture.
    Momentum 1 leaves the target unchanged, 0 copies the online network.
    """
    m = _check_momentum(momentum)
    t_params = list(target.parameters())
    o_params = list(online.parameters())
    if len(t_params) != len(o_params) or any(a.shape != b.shape for a, b in zip(t_params, o_params)):
        raise ParameterError("ema_update: target and online modules must have the same parameters (shapes differ)")
    for p_t, p_o in zip(t_params, o_params):
        p_t.mul_(m).add_(p_o.detach(), alpha=1.0 - m)
    for b_t, b_o in zip(target.buffers(), online.buffers()):
        b_t.copy_(b_o)


class MACNet(nn.Module):
    """MAC-Net: online and EMA target branches, predictor ``q`` and local MLP.

    Args:
        widths: backbone encoder widths (see :class:`DisentangledUNet`).
        momentum: EMA momentum of the target, in [0, 1]; 0.99 (official code,
            updated every iteration).
        proj_hidden, proj_dim: hidden and output sizes of ``p_g`` and ``q``
            (1024, 256).
        local_hidden, local_dim: hidden and output sizes of the local MLP
            (256, K = 256).

    Use :func:`mac_net` to build one from a width multiplier.
    """

    def __init__(
        self,
        widths: Sequence[int] = PAPER_WIDTHS,
        *,
        momentum: float = 0.99,
        proj_hidden: int = 1024,
        proj_dim: int = 256,
        local_hidden: int = 256,
        local_dim: int = 256,
    ) -> None:
        super().__init__()
        for name, value in (("proj_hidden", proj_hidden), ("proj_dim", proj_dim),
                            ("local_hidden", local_hidden), ("local_dim", local_dim)):
            _check_positive_int(name, value)
        self.momentum = _check_momentum(momentum)
        self.online = MACBranch(widths, proj_hidden=proj_hidden, proj_dim=proj_dim)
        self.predictor = MLPHead(proj_dim, proj_hidden, proj_dim)
        self.local_mlp = LocalMLP(self.online.backbone.local_channels, local_hidden, local_dim)
        self.target = copy.deepcopy(self.online)
        self.target.requires_grad_(False)
        self.target_local_mlp = copy.deepcopy(self.local_mlp)
        self.target_local_mlp.requires_grad_(False)

    @property
    def widths(self) -> tuple[int, ...]:
        return self.online.backbone.widths

    def online_parameters(self):
        """Parameters trained by the MAC-Net optimiser: online branch, predictor, local MLP."""
        for module in (self.online, self.predictor, self.local_mlp):
            yield from module.parameters()

    def online_features(self, denoised: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F'_g, F'_l)`` of the denoised image (online branch, differentiable)."""
        check_image_batch(denoised, "denoised", like=self, margin=5.0)
        return self.online(denoised)

    @torch.no_grad()
    def target_features(self, ndct: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F_g, F_l)`` of the NDCT image (target branch, no gradient)."""
        check_image_batch(ndct, "ndct", like=self)
        return self.target(ndct)

    def forward(self, denoised: torch.Tensor, ndct: torch.Tensor):
        """``((F'_g, F'_l), (F_g, F_l))``: online features of Y', target features of Y."""
        return self.online_features(denoised), self.target_features(ndct)

    def update_target(self) -> None:
        """One EMA step of the target branch and of the target local MLP towards the
        online ones (:func:`ema_update`)."""
        ema_update(self.target, self.online, self.momentum)
        ema_update(self.target_local_mlp, self.local_mlp, self.momentum)

    def __repr__(self) -> str:
        n_online = sum(p.numel() for p in self.online_parameters())
        return (
            f"MACNet(widths={self.widths}, F_g {self.widths[-1]} x H/16, F_l {self.widths[0]} x H, "
            f"momentum={self.momentum}, trainable parameters={n_online / 1e6:.2f} M)"
        )


def mac_net(width: float = 1.0, *, momentum: float = 0.99, **kwargs) -> MACNet:
    """Build MAC-Net with the paper's widths scaled by ``width``.

    ``width`` = 1 gives (64, 128, 256, 256, 512) (paper / official code);
    0.125 gives (8, 16, 32, 32, 64), a tiny network for smoke runs. The
    projector, predictor and local MLP sizes do not scale (they are keywords).
    """
    try:
        w = float(width)
    except (TypeError, ValueError):
        w = float("nan")
    if isinstance(width, bool) or not w > 0 or w > 64:
        raise ParameterError(f"width must be a number in (0, 64], got {width!r}")
    widths = tuple(max(2, int(round(c * w))) for c in PAPER_WIDTHS)
    return MACNet(widths, momentum=momentum, **kwargs)


__all__ = [
    "PAPER_WIDTHS",
    "ConvBlock",
    "DisentangledUNet",
    "LocalMLP",
    "MACBranch",
    "MACNet",
    "MLPHead",
    "check_input",
    "ema_update",
    "mac_net",
]
