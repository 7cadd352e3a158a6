"""DU-GAN (Huang et al., IEEE TIM 2021): GAN with dual-domain U-Net-based discriminators.

Generator: RED-CNN (:class:`~ldct_nb.models.baselines.red_cnn.REDCNN`).
Two U-Net discriminators (Schönfeld et al. 2020), one on the image and one
on its Sobel gradient magnitude, each giving a global real/fake score (from
its encoder) and a per-pixel score map (from its decoder); spectral
normalisation on every layer. The least-squares GAN objective, the CutMix
regularisation of the discriminators and the generator's loss:
:mod:`ldct_nb.train.methods.du_gan`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from ldct_nb.models.baselines.common import check_preset, pad_to_multiple
from ldct_nb.models.baselines.red_cnn import REDCNN
from ldct_nb.models.sobel import sobel_magnitude

PRESETS = ("paper",)


class UNetDiscriminator(nn.Module):
    """U-Net discriminator: ``depth`` down stages (3x3 conv, LeakyReLU, 2x2 avg-pool) with widths
    ``width * 2**i`` (capped at 8 * width); global head = spatial sum + linear; decoder of bilinear
    up-sampling, concatenated skips and 3x3 convs; a 1x1 conv gives the per-pixel score map."""

    def __init__(self, width: int = 64, depth: int = 4):
        super().__init__()
        ws = [min(width * 2**i, 8 * width) for i in range(depth + 1)]
        self.depth = depth
        self.stem = spectral_norm(nn.Conv2d(1, ws[0], 3, padding=1))
        self.down = nn.ModuleList(spectral_norm(nn.Conv2d(a, b, 3, padding=1)) for a, b in zip(ws, ws[1:]))
        self.global_head = spectral_norm(nn.Linear(ws[-1], 1))
        self.up = nn.ModuleList(spectral_norm(nn.Conv2d(b + a, a, 3, padding=1)) for a, b in zip(ws, ws[1:]))
        self.pixel_head = spectral_norm(nn.Conv2d(ws[0], 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, (h, w) = pad_to_multiple(x, 2**self.depth)
        f = F.leaky_relu(self.stem(x), 0.2)
        skips = [f]
        for conv in self.down:
            f = F.avg_pool2d(F.leaky_relu(conv(f), 0.2), 2)
            skips.append(f)
        global_score = self.global_head(f.sum(dim=(2, 3)))
        for i in reversed(range(self.depth)):
            f = F.interpolate(f, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            f = F.leaky_relu(self.up[i](torch.cat([f, skips[i]], 1)), 0.2)
        return global_score, self.pixel_head(f)[..., :h, :w]


class DualDomainDiscriminator(nn.Module):
    """The image-domain and gradient-domain U-Net discriminators together."""

    def __init__(self, width: int = 64, depth: int = 4):
        super().__init__()
        self.image = UNetDiscriminator(width, depth)
        self.gradient = UNetDiscriminator(width, depth)

    def forward(self, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {"image": self.image(x), "gradient": self.gradient(sobel_magnitude(x))}


def build_generator(preset: str = "paper", **kwargs) -> REDCNN:
    check_preset("du_gan", preset, PRESETS)
    return REDCNN(**kwargs)
