"""CNCL (Geng et al., IEEE TMI 2021): content-noise complementary learning.

Two predictors see the LDCT image ``x``: a content predictor ``P_c`` (the
clean image) and a noise predictor ``P_n`` (the noise ``x - y``); both are
U-Nets (CNCL-U-Net). The fusion module concatenates ``P_c(x)`` and
``x - P_n(x)`` (two estimates of the clean image) and merges them with three
3x3 convolutions. A conditional PatchGAN discriminator judges ``(x, output)``
pairs with the least-squares GAN loss (pix2pix style). Generator loss:
``LSGAN + lambda * (|P_c(x) - y|_1 + |P_n(x) - (x - y)|_1 + |F - y|_1)`` with
lambda = 100; Adam lr 2e-4, betas (0.5, 0.999), one discriminator step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.models.baselines.common import (
    num,
    MethodSpec, OptimSettings, PatchCritic, check_image, check_preset, lsgan_loss,
)
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


def build_method(preset: str = "paper", feature_extractor=None, critic_width: int = 64,
                 l1_weight: float = 100.0, **kwargs) -> MethodSpec:
    """CNCL with its conditional PatchGAN and complementary L1 losses."""
    gen = build_generator(preset, **kwargs)
    critic = PatchCritic(2, critic_width)

    def g_loss(ldct, ndct):
        p = gen.predict(ldct)
        adv = lsgan_loss(critic(torch.cat([ldct, p["fused"]], 1)), True)
        lc = F.l1_loss(p["content"], ndct)
        ln = F.l1_loss(p["noise"], ldct - ndct)
        lf = F.l1_loss(p["fused"], ndct)
        loss = adv + l1_weight * (lc + ln + lf)
        parts = {"adversarial": num(adv), "pixel": num(lf), "content": num(lc), "noise": num(ln), "total": num(loss)}
        return loss, parts, p["fused"]

    def c_loss(ldct, ndct, out):
        real = lsgan_loss(critic(torch.cat([ldct, ndct], 1)), True)
        fake = lsgan_loss(critic(torch.cat([ldct, out], 1)), False)
        loss = 0.5 * (real + fake)
        return loss, {"real": num(real), "fake": num(fake), "total": num(loss)}

    opt = OptimSettings("adam", 2e-4, (0.5, 0.999))
    return MethodSpec("cncl", preset, gen, critic, g_loss, c_loss, opt, opt, 1)
