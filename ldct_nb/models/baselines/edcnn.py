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
* Compound loss: ``MSE + w_p * multi-scale perceptual loss`` with
  ``w_p = 0.01`` on the extractor's multi-scale features (the paper uses an
  ImageNet ResNet-50's four stages; here the extractor is the one you pass:
  VGG-19 with your weights, or the in-project NDCT feature network).
  Adam, lr 1e-4 as in the paper's setup (a choice where we could not check it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError
from ldct_nb.models.baselines.common import (
    MethodSpec, OptimSettings, check_image, check_preset, require_extractor, supervised_recipe,
)

PRESETS = ("paper",)


class SobelConv(nn.Module):
    """Trainable Sobel convolution: fixed directional kernels times a learnable factor per channel."""

    def __init__(self, out_channels: int = 32):
        super().__init__()
        if out_channels < 4 or out_channels % 4:
            raise ParameterError(f"sobel_ch (the Sobel module's out_channels) must be a positive multiple of 4, got {out_channels}")
        sx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
        diag = torch.tensor([[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]])
        base = torch.stack([sx, sx.t(), diag, diag.flip(1)])
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


def build_method(preset: str = "paper", feature_extractor=None, perceptual_weight: float = 0.01, **kwargs) -> MethodSpec:
    """EDCNN with its compound loss ``MSE + 0.01 perceptual``; needs ``feature_extractor``."""
    gen = build_generator(preset, **kwargs)
    perceptual = require_extractor("edcnn", feature_extractor)

    def content(out, y):
        mse = F.mse_loss(out, y)
        p = perceptual(out, y)
        return mse + perceptual_weight * p, {"pixel": mse, "perceptual": p}

    return supervised_recipe("edcnn", preset, gen, content, OptimSettings("adam", 1e-4),
                             loss_modules={"perceptual": perceptual})
