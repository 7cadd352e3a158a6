"""EDCNN (Liang et al., ICSP 2020): edge enhancement-based densely connected
network with a compound loss.

* Edge enhancement module: a trainable Sobel convolution. Four fixed Sobel
  kernels (horizontal, vertical, two diagonals) are repeated to ``sobel_ch``
  output channels, each multiplied by its own learnable factor (init 1); the
  edge maps are concatenated with the input (1 + ``sobel_ch`` channels).
* Eight blocks of (1x1 conv, LeakyReLU, 3x3 conv, LeakyReLU) with ``width``
  filters; dense connections: blocks 2-8 take the edge-enhanced input
  concatenated with the previous block's output. The last block ends with a
  3x3 conv to one channel, added to the input (residual), then a final
  LeakyReLU as in the authors' code (``out = LeakyReLU(x + out_8)``).

Its compound loss (MSE + perceptual) and optimiser: :mod:`ldct_nb.train.methods.edcnn`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError
from ldct_nb.models.baselines.common import check_image, check_preset
from ldct_nb.models.sobel import SOBEL_DIAGONAL, SOBEL_X

PRESETS = ("paper",)


class SobelConv(nn.Module):
    """Trainable Sobel convolution: fixed directional kernels times a learnable factor per channel."""

    def __init__(self, out_channels: int = 32):
        super().__init__()
        if out_channels < 4 or out_channels % 4:
            raise ParameterError(f"sobel_ch (the Sobel module's out_channels) must be a positive multiple of 4, got {out_channels}")
        base = torch.stack([SOBEL_X, SOBEL_X.t(), SOBEL_DIAGONAL, SOBEL_DIAGONAL.flip(1)])
        self.register_buffer("kernels", base.repeat(out_channels // 4, 1, 1).unsqueeze(1))
        self.factor = nn.Parameter(torch.ones(out_channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernels * self.factor, padding=1)


class EDCNN(nn.Module):
    """EDCNN with ``sobel_ch`` edge channels and ``width`` filters per block."""

    def __init__(self, sobel_ch: int = 32, width: int = 32, blocks: int = 8, slope: float = 0.01):
        super().__init__()
        self.slope = slope
        self.edge = SobelConv(sobel_ch)
        c_in = 1 + sobel_ch
        self.blocks = nn.ModuleList()
        for i in range(blocks):
            c = c_in if i == 0 else c_in + width
            last = i == blocks - 1
            layers = [nn.Conv2d(c, width, 1), nn.LeakyReLU(slope), nn.Conv2d(width, 1 if last else width, 3, padding=1)]
            if not last:
                layers.append(nn.LeakyReLU(slope))
            self.blocks.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, "EDCNN")
        enhanced = torch.cat([x, self.edge(x)], dim=1)
        h = self.blocks[0](enhanced)
        for block in self.blocks[1:]:
            h = block(torch.cat([enhanced, h], dim=1))
        return F.leaky_relu(x + h, self.slope)


def build_generator(preset: str = "paper", **kwargs) -> EDCNN:
    check_preset("edcnn", preset, PRESETS)
    return EDCNN(**kwargs)
