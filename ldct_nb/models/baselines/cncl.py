"""CNCL (Geng et al., IEEE TMI 2021): content-noise complementary learning.

Two predictors see the LDCT image ``x``: a content predictor ``P_c`` (the
clean image) and a noise predictor ``P_n`` (the noise ``x - y``); both are
U-Nets (CNCL-U-Net). The fusion module concatenates ``P_c(x)`` and
``x - P_n(x)`` (two estimates of the clean image) and merges them with three
3x3 convolutions. A conditional PatchGAN discriminator
(:class:`~ldct_nb.models.baselines.common.PatchCritic` on 2 channels) judges
``(x, output)`` pairs. The complementary L1 losses, the least-squares GAN
objective and the optimisers: :mod:`ldct_nb.train.methods.cncl`.
"""
from __future__ import annotations

import torch
from torch import nn

from ldct_nb.models.baselines.common import check_image, check_preset
from ldct_nb.models.baselines.unet import UNet

PRESETS = ("paper",)


class FusionModule(nn.Module):
    """Merge two clean-image estimates: 3x3 convs 2 -> w -> w -> 1 with ReLU."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 1, 3, padding=1),
        )

    def forward(self, content: torch.Tensor, denoised_by_noise: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([content, denoised_by_noise], dim=1))


class CNCL(nn.Module):
    """Content predictor, noise predictor and fusion; :meth:`predict` returns all three outputs."""

    def __init__(self, base: int = 64, depth: int = 4, fusion_width: int = 32):
        super().__init__()
        self.content = UNet(base, depth)
        self.noise = UNet(base, depth)
        self.fusion = FusionModule(fusion_width)

    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_image(x, "CNCL")
        c, n = self.content(x), self.noise(x)
        return {"content": c, "noise": n, "fused": self.fusion(c, x - n)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(x)["fused"]


def build_generator(preset: str = "paper", **kwargs) -> CNCL:
    check_preset("cncl", preset, PRESETS)
    return CNCL(**kwargs)
