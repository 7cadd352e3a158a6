"""Res-HLF (Ma et al., 2020): a GAN with a hybrid loss function for noise learning: its recipe.

Discriminator: a PatchGAN (:class:`~ldct_nb.models.baselines.common.PatchCritic`)
with the least-squares GAN objective. Hybrid loss: ``lambda_adv * LSGAN + L1 +
beta_ssim * (1 - SSIM)`` with beta_ssim = 50 (LIDnet appendix A). ``paper``:
lambda_adv = 1e-3, Adam lr 1e-4 (generator and discriminator), one
discriminator step; ``lidnet``: LIDnet trains every GAN baseline with its
Wasserstein objective (eq. 5 generator term -E[D(G(x))], eq. 7 critic with
gradient penalty lambda = 10, "for all models", appendix A), so this preset
swaps the PatchGAN / LSGAN pair for the WGAN critic with gradient penalty,
lambda_adv = 1, critic lr 4e-4, four critic steps (the WGAN-GP baselines'
count). The network: :class:`ldct_nb.models.baselines.res_hlf.ResHLFGenerator`.
"""
from __future__ import annotations

import torch.nn.functional as F

from ldct_nb.losses.adversarial import lsgan_loss
from ldct_nb.losses.ssim import ssim
from ldct_nb.models.baselines.common import PatchCritic, WGANCritic
from ldct_nb.models.baselines.res_hlf import build_generator
from ldct_nb.train.methods.wgan_vgg import GP_WEIGHT
from ldct_nb.train.recipes import MethodSpec, OptimSettings, num, wgan_recipe

SSIM_WEIGHT = 50.0
ADV_WEIGHT_PAPER = 1e-3


def build_method(preset: str = "paper", feature_extractor=None, critic_width: int = 64,
                 ssim_weight: float = SSIM_WEIGHT, **kwargs) -> MethodSpec:
    """Res-HLF with its PatchGAN discriminator and hybrid loss (no perceptual network needed)."""
    gen = build_generator(preset, **kwargs)
    if preset == "lidnet":

        def content(out, ndct):
            l1, s = F.l1_loss(out, ndct), 1 - ssim(out, ndct, data_range=1.0)
            return l1 + ssim_weight * s, {"pixel": l1, "ssim_loss": s}

        return wgan_recipe("res_hlf", preset, gen, WGANCritic(critic_width), content, adv_weight=1.0,
                           gp_weight=GP_WEIGHT, g_optim=OptimSettings("adam", 1e-4, (0.5, 0.9)),
                           c_optim=OptimSettings("adam", 4e-4, (0.5, 0.9)), n_critic=4)
    critic = PatchCritic(1, critic_width)
    adv_weight = ADV_WEIGHT_PAPER

    def g_loss(ldct, ndct):
        out = gen(ldct)
        adv = lsgan_loss(critic(out), True)
        l1 = F.l1_loss(out, ndct)
        s = 1 - ssim(out, ndct, data_range=1.0)
        loss = adv_weight * adv + l1 + ssim_weight * s
        return loss, {"adversarial": num(adv), "pixel": num(l1), "ssim_loss": num(s), "total": num(loss)}, out

    def c_loss(ldct, ndct, out):
        real, fake = lsgan_loss(critic(ndct), True), lsgan_loss(critic(out), False)
        loss = 0.5 * (real + fake)
        return loss, {"real": num(real), "fake": num(fake), "total": num(loss)}

    return MethodSpec("res_hlf", preset, gen, critic, g_loss, c_loss, OptimSettings("adam", 1e-4),
                      OptimSettings("adam", 1e-4), 1)
