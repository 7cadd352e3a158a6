"""RED-CNN (Chen et al., IEEE TMI 2017): residual encoder-decoder CNN.

Five 5x5 convolutions (96 filters, stride 1, no padding) and five mirrored 5x5
transposed convolutions, ReLU after every layer, and three shortcuts: the
input to the last deconv's output, the 2nd conv's output to the 4th deconv's
input, the 4th conv's output to the 2nd deconv's input (each added before the
ReLU). Any input size works (valid convolutions are undone by the transposed
ones). Its training recipe: :mod:`ldct_nb.train.methods.red_cnn`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.models.baselines.common import check_image, check_preset

PRESETS = ("paper",)


class REDCNN(nn.Module):
    """RED-CNN with ``channels`` filters of size ``kernel`` per layer (96 and 5 in the paper)."""

    def __init__(self, channels: int = 96, kernel: int = 5):
        super().__init__()
        self.min_size = 5 * (kernel - 1) + 1
        self.conv = nn.ModuleList(nn.Conv2d(1 if i == 0 else channels, channels, kernel) for i in range(5))
        self.deconv = nn.ModuleList(nn.ConvTranspose2d(channels, 1 if i == 4 else channels, kernel) for i in range(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, "REDCNN", self.min_size)
        res1 = x
        h = F.relu(self.conv[0](x))
        h = F.relu(self.conv[1](h))
        res2 = h
        h = F.relu(self.conv[2](h))
        h = F.relu(self.conv[3](h))
        res3 = h
        h = F.relu(self.conv[4](h))
        h = F.relu(self.deconv[0](h) + res3)
        h = F.relu(self.deconv[1](h))
        h = F.relu(self.deconv[2](h) + res2)
        h = F.relu(self.deconv[3](h))
        return F.relu(self.deconv[4](h) + res1)


def build_generator(preset: str = "paper", **kwargs) -> REDCNN:
    check_preset("red_cnn", preset, PRESETS)
    return REDCNN(**kwargs)
