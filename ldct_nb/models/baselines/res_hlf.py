"""Res-HLF (Ma et al., 2020): a GAN with a hybrid loss function for noise learning.

Residual (noise) learning: the generator predicts the noise ``n = f(x)`` and
returns ``x - n``. ``f`` is a residual CNN: a 3x3 conv (``width`` filters,
ReLU), ``blocks`` residual blocks (3x3 conv, BN, ReLU, 3x3 conv, BN, plus the
block input), a 3x3 conv to one channel. Discriminator: a PatchGAN with the
least-squares GAN objective. Hybrid loss: ``lambda_adv * LSGAN + L1 +
beta_ssim * (1 - SSIM)`` with beta_ssim = 50 (LIDnet appendix A). ``paper``:
lambda_adv = 1e-3, Adam lr 1e-4 (generator and discriminator), one
discriminator step; ``lidnet``: LIDnet trains every GAN baseline with its
Wasserstein objective (eq. 5 generator term -E[D(G(x))], eq. 7 critic with
gradient penalty lambda = 10, "for all models", appendix A), so this preset
swaps the PatchGAN / LSGAN pair for the WGAN critic with gradient penalty,
lambda_adv = 1, critic lr 4e-4, four critic steps (the WGAN-GP baselines' count).
Block count and widths are our choice where the sources we had did not fix them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.models.baselines.common import (
    num,
    MethodSpec, OptimSettings, PatchCritic, WGANCritic, check_image, check_preset, lsgan_loss, ssim, wgan_recipe,
)

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


def build_method(preset: str = "paper", feature_extractor=None, critic_width: int = 64,
                 ssim_weight: float = 50.0, **kwargs) -> MethodSpec:
    """Res-HLF with its PatchGAN discriminator and hybrid loss (no perceptual network needed)."""
    gen = build_generator(preset, **kwargs)
    if preset == "lidnet":

        def content(out, ndct):
            l1, s = F.l1_loss(out, ndct), 1 - ssim(out, ndct)
            return l1 + ssim_weight * s, {"pixel": l1, "ssim_loss": s}

        return wgan_recipe("res_hlf", preset, gen, WGANCritic(critic_width), content, adv_weight=1.0, gp_weight=10.0,
                           g_optim=OptimSettings("adam", 1e-4, (0.5, 0.9)), c_optim=OptimSettings("adam", 4e-4, (0.5, 0.9)),
                           n_critic=4)
    critic = PatchCritic(1, critic_width)
    adv_weight = 1e-3

    def g_loss(ldct, ndct):
        out = gen(ldct)
        adv = lsgan_loss(critic(out), True)
        l1 = F.l1_loss(out, ndct)
        s = 1 - ssim(out, ndct)
        loss = adv_weight * adv + l1 + ssim_weight * s
        return loss, {"adversarial": num(adv), "pixel": num(l1), "ssim_loss": num(s), "total": num(loss)}, out

    def c_loss(ldct, ndct, out):
        real, fake = lsgan_loss(critic(ndct), True), lsgan_loss(critic(out), False)
        loss = 0.5 * (real + fake)
        return loss, {"real": num(real), "fake": num(fake), "total": num(loss)}

    return MethodSpec("res_hlf", preset, gen, critic, g_loss, c_loss, OptimSettings("adam", 1e-4),
                      OptimSettings("adam", 1e-4), 1)
