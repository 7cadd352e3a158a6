"""CPCE-2D (Shan et al., IEEE TMI 2018): conveying-path-based convolutional encoder-decoder.

Four 3x3 convolutions (32 filters, no padding, ReLU) shrink the image by 2
pixels each; four 3x3 transposed convolutions grow it back. Conveying paths:
before the 2nd, 3rd and 4th deconvolutions, the matching encoder feature map
is concatenated with the decoder's and a 1x1 convolution (ReLU) reduces the
64 channels back to 32. The last deconvolution has one output channel, ReLU. Critic: WGAN-VGG's
(:class:`~ldct_nb.models.baselines.common.WGANCritic`). Presets ``paper`` and
``lidnet`` share the networks; their losses and optimisers:
:mod:`ldct_nb.train.methods.cpce`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.models.baselines.common import check_image, check_preset

PRESETS = ("paper", "lidnet")


class CPCE(nn.Module):
    """CPCE-2D with ``width`` filters; ``residual=True`` makes the output ``x + f(x)`` (used by MAP-NN's modules)."""

    def __init__(self, width: int = 32, residual: bool = False):
        super().__init__()
        self.residual = residual
        self.enc = nn.ModuleList(nn.Conv2d(1 if i == 0 else width, width, 3) for i in range(4))
        self.dec = nn.ModuleList(nn.ConvTranspose2d(width, 1 if i == 3 else width, 3) for i in range(4))
        self.convey = nn.ModuleList(nn.Conv2d(2 * width, width, 1) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, "CPCE", 9)  # four unpadded 3x3 convolutions
        feats, h = [], x
        for conv in self.enc:
            h = F.relu(conv(h))
            feats.append(h)
        h = F.relu(self.dec[0](h))
        for i in range(3):
            h = F.relu(self.convey[i](torch.cat([feats[2 - i], h], dim=1)))
            h = self.dec[i + 1](h)
            if i < 2:
                h = F.relu(h)
        return F.relu(x + h) if self.residual else F.relu(h)


def build_generator(preset: str = "paper", **kwargs) -> CPCE:
    check_preset("cpce", preset, PRESETS)
    return CPCE(**kwargs)
