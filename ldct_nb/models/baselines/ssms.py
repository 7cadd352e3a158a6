"""SSMS (You et al., IEEE Access 2018): structurally-sensitive multi-scale GAN, 2-D variant.

Generator: eight 3x3 convolutions with 32 filters and ReLU (the 2-D SMGAN
generator shares WGAN-VGG's layout), critic:
:class:`~ldct_nb.models.baselines.common.WGANCritic` with WGAN-GP. Loss: the
structurally-sensitive loss ``L1 + beta_ssim * L_ms-ssim`` (``L_ms-ssim``: mean
of 1 - SSIM over three dyadic scales, our reading of "multi-scale") plus the
adversarial term ``lambda_adv * -E[D(G(x))]``. Both presets use beta_ssim =
50 (LIDnet appendix A); ``paper``: lambda_adv = 1e-3, Adam lr 1e-4, betas
(0.5, 0.9), four critic steps; ``lidnet``: lambda_adv = 1, lr 1e-4 / 4e-4.
"""
from __future__ import annotations

import torch.nn.functional as F

from ldct_nb.models.baselines.common import (
    MethodSpec, OptimSettings, WGANCritic, check_preset, multiscale_ssim_loss, wgan_recipe,
)
from ldct_nb.models.baselines.wgan_vgg import WGANVGGGenerator

PRESETS = ("paper", "lidnet")


class SSMSGenerator(WGANVGGGenerator):
    """The 2-D SSMS generator: eight 3x3 conv + ReLU layers with ``width`` filters."""


def build_generator(preset: str = "paper", **kwargs) -> SSMSGenerator:
    check_preset("ssms", preset, PRESETS)
    return SSMSGenerator(**kwargs)


def build_method(preset: str = "paper", feature_extractor=None, critic_width: int = 64,
                 ssim_weight: float = 50.0, **kwargs) -> MethodSpec:
    """SSMS with its critic and structurally-sensitive loss (no perceptual network needed)."""
    gen = build_generator(preset, **kwargs)
    adv_weight = 1e-3 if preset == "paper" else 1.0
    c_lr = 1e-4 if preset == "paper" else 4e-4

    def content(out, y):
        l1 = F.l1_loss(out, y)
        s = multiscale_ssim_loss(out, y)
        return l1 + ssim_weight * s, {"pixel": l1, "ms_ssim": s}

    return wgan_recipe("ssms", preset, gen, WGANCritic(critic_width), content, adv_weight=adv_weight, gp_weight=10.0,
                       g_optim=OptimSettings("adam", 1e-4, (0.5, 0.9)), c_optim=OptimSettings("adam", c_lr, (0.5, 0.9)),
                       n_critic=4)
