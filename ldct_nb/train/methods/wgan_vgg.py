"""WGAN-VGG (Yang et al., IEEE TMI 2018): Wasserstein GAN with a perceptual loss.

Generator loss ``-E[D(G(x))] + lambda_1 * ||phi(G(x)) - phi(y)||^2 / (whd)``;
WGAN-GP (lambda = 10) for the critic
(:class:`~ldct_nb.models.baselines.common.WGANCritic`).

Presets: ``paper`` (Yang 2018: lambda_1 = 0.1, Adam lr 1e-5, betas (0.5, 0.9),
four critic steps per generator step) and ``lidnet`` (LIDnet appendix A:
perceptual weight lambda' = 100, lr 1e-4 generator / 4e-4 critic, GP 10).
``phi`` is the feature extractor you pass: VGG-19 with your ImageNet weights
(as the paper) or the in-project NDCT feature network (documented deviation).

:func:`perceptual_wgan_method` is shared by WGAN-VGG, CPCE and MAP-NN (the
latter in its ``lidnet`` preset only).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ldct_nb.losses.perceptual import require_extractor
from ldct_nb.models.baselines.common import WGANCritic
from ldct_nb.models.baselines.wgan_vgg import build_generator
from ldct_nb.train.recipes import MethodSpec, OptimSettings, wgan_recipe

GP_WEIGHT = 10.0
PAPER = (0.1, OptimSettings("adam", 1e-5, (0.5, 0.9)), OptimSettings("adam", 1e-5, (0.5, 0.9)), 4)
"""Yang 2018: (perceptual weight lambda_1, generator optimiser, critic optimiser, critic steps)."""
LIDNET = (100.0, OptimSettings("adam", 1e-4, (0.5, 0.9)), OptimSettings("adam", 4e-4, (0.5, 0.9)), 4)
"""LIDnet appendix A, for every perceptual WGAN baseline: lambda' = 100, lr 1e-4 / 4e-4."""


def perceptual_wgan_method(name: str, preset: str, gen: nn.Module, feature_extractor, critic_width: int,
                           paper_settings) -> MethodSpec:
    """WGAN-GP with the WGAN-VGG critic and a perceptual content loss; ``paper_settings``
    (weight, generator optimiser, critic optimiser, critic steps) in the ``paper`` preset,
    :data:`LIDNET` otherwise."""
    perceptual = require_extractor(name, feature_extractor)
    weight, g_opt, c_opt, n_critic = paper_settings if preset == "paper" else LIDNET

    def content(out, y):
        p = perceptual(out, y)
        mse = F.mse_loss(out, y)
        return weight * p, {"perceptual": p, "pixel": mse}

    return wgan_recipe(name, preset, gen, WGANCritic(critic_width), content, adv_weight=1.0, gp_weight=GP_WEIGHT,
                       g_optim=g_opt, c_optim=c_opt, n_critic=n_critic, loss_modules={"perceptual": perceptual})


def build_method(preset: str = "paper", feature_extractor=None, critic_width: int = 64, **kwargs) -> MethodSpec:
    """WGAN-VGG with its critic and loss; needs ``feature_extractor``."""
    gen = build_generator(preset, **kwargs)
    return perceptual_wgan_method("wgan_vgg", preset, gen, feature_extractor, critic_width, PAPER)
