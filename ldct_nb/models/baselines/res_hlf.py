"""Res-HLF (Ma et al., 2020): a GAN with a hybrid loss function for noise learning.

Residual (noise) learning: the generator predicts the noise ``n = f(x)`` and
returns ``x - n``. ``f`` is a residual CNN: a 3x3 conv (``width`` filters,
ReLU), ``blocks`` residual blocks (3x3 conv, BN, ReLU, 3x3 conv, BN, plus the
block input), a 3x3 conv to one channel. Discriminator: a PatchGAN
(:class:`~ldct_nb.models.baselines.common.PatchCritic`) in ``paper``, WGAN-VGG's
critic in ``lidnet``. Block count and widths are our choice where the sources
we had did not fix them. The hybrid loss and optimisers of both presets:
:mod:`ldct_nb.train.methods.res_hlf`.
"""
from __future__ import annotations

import torch
from torch import nn

from ldct_nb.models.baselines.common import check_image, check_preset

PRESETS = ("paper", "lidnet")


class ResidualBlock(nn.Module):
    """3x3 conv, BN, ReLU, 3x3 conv, BN, plus the input."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResHLFGenerator(nn.Module):
    """Noise-learning residual generator: output = input - predicted noise."""

    def __init__(self, width: int = 64, blocks: int = 8):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.tail = nn.Conv2d(width, 1, 3, padding=1)

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, "ResHLFGenerator")
        return self.tail(self.body(self.head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.noise(x)


def build_generator(preset: str = "paper", **kwargs) -> ResHLFGenerator:
    check_preset("res_hlf", preset, PRESETS)
    return ResHLFGenerator(**kwargs)
