"""U-Net (Ronneberger et al., MICCAI 2015) as ASCON's Table 1 baseline.

Contracting path of (3x3 conv, BN, ReLU) x 2 blocks with 2x2 max-pooling,
widths ``base * 2**i`` (64 ... 1024 for depth 4); expanding path of 2x2
transposed convolutions, concatenated skips and the same double convs; a 1x1
convolution to one channel. Two departures from the 2015 paper, as in the
common denoising re-implementations ASCON compares against: convolutions are
zero-padded (output size = input size; the 2015 paper used unpadded
convolutions and overlap-tiling) and batch normalisation follows each conv.
Its training recipe: :mod:`ldct_nb.train.methods.unet`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.models.baselines.common import check_image, check_preset, pad_to_multiple

PRESETS = ("paper",)


class DoubleConv(nn.Module):
    """(3x3 conv, BN, ReLU) x 2."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class UNet(nn.Module):
    """U-Net with ``depth`` down-samplings and ``base`` filters at full resolution."""

    def __init__(self, base: int = 64, depth: int = 4):
        super().__init__()
        widths = [base * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList([DoubleConv(1, widths[0])] + [DoubleConv(a, b) for a, b in zip(widths, widths[1:])])
        self.up = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths, widths[1:]))
        self.merge = nn.ModuleList(DoubleConv(2 * a, a) for a in widths[:-1])
        self.out = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, "UNet")
        x, (h, w) = pad_to_multiple(x, 2**self.depth)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(self.depth)):
            x = self.merge[i](torch.cat([skips[i], self.up[i](x)], dim=1))
        return self.out(x)[..., :h, :w]


def build_generator(preset: str = "paper", **kwargs) -> UNet:
    check_preset("unet", preset, PRESETS)
    return UNet(**kwargs)
