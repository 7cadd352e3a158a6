"""CNCL (Geng et al., IEEE TMI 2021): content-noise complementary learning: its recipe.

A conditional PatchGAN discriminator
(:class:`~ldct_nb.models.baselines.common.PatchCritic` on 2 channels) judges
``(x, output)`` pairs with the least-squares GAN loss (pix2pix style).
Generator loss: ``LSGAN + lambda * (|P_c(x) - y|_1 + |P_n(x) - (x - y)|_1 +
|F - y|_1)`` with lambda = 100 (content predictor, noise predictor, fused
output); Adam lr 2e-4, betas (0.5, 0.999), one discriminator step. The
network: :class:`ldct_nb.models.baselines.cncl.CNCL`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ldct_nb.losses.adversarial import lsgan_loss
from ldct_nb.models.baselines.cncl import build_generator
from ldct_nb.models.baselines.common import PatchCritic
from ldct_nb.train.recipes import MethodSpec, OptimSettings, num

L1_WEIGHT = 100.0
OPTIM = OptimSettings("adam", 2e-4, (0.5, 0.999))


def build_method(preset: str = "paper", feature_extractor=None, critic_width: int = 64,
                 l1_weight: float = L1_WEIGHT, **kwargs) -> MethodSpec:
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

    return MethodSpec("cncl", preset, gen, critic, g_loss, c_loss, OPTIM, OPTIM, 1)
