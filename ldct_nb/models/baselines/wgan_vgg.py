"""WGAN-VGG (Yang et al., IEEE TMI 2018): Wasserstein GAN with a perceptual loss.

Generator: eight 3x3 convolutions, 32 filters (1 in the last), ReLU after
each. Critic: :class:`~ldct_nb.models.baselines.common.WGANCritic`. Loss:
``-E[D(G(x))] + lambda_1 * ||phi(G(x)) - phi(y)||^2 / (whd)`` with WGAN-GP
(lambda = 10) for the critic.

Presets: ``paper`` (Yang 2018: lambda_1 = 0.1, Adam lr 1e-5, betas (0.5, 0.9),
four critic steps per generator step) and ``lidnet`` (LIDnet appendix A:
perceptual weight lambda' = 100, lr 1e-4 generator / 4e-4 critic, GP 10).
``phi`` is the feature extractor you pass: VGG-19 with your ImageNet weights
(as the paper) or the in-project NDCT feature network (documented deviation).
"""
from __future__ import annotations

import torch
from torch import nn

from ldct_nb.models.baselines.common import (
    MethodSpec, OptimSettings, WGANCritic, check_image, check_preset, require_extractor, wgan_recipe,
)

PRESETS = ("paper", "lidnet")


class WGANVGGGenerator(nn.Module):
    """Eight 3x3 conv + ReLU layers with ``width`` filters."""

    def __init__(self, width: int = 32, layers: int = 8):
        super().__init__()
        mods, c = [], 1
        for i in range(layers):
            c_out = 1 if i == layers - 1 else width
            mods += [nn.Conv2d(c, c_out, 3, padding=1), nn.ReLU(inplace=i < layers - 1)]
            c = c_out
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, "WGANVGGGenerator")
        return self.net(x)


def build_generator(preset: str = "paper", **kwargs) -> WGANVGGGenerator:
    check_preset("wgan_vgg", preset, PRESETS)
    return WGANVGGGenerator(**kwargs)


def perceptual_wgan_method(name, preset, gen, feature_extractor, critic_width, paper_settings) -> MethodSpec:
    """Shared by WGAN-VGG, CPCE and MAP-NN in the ``lidnet`` preset and by WGAN-VGG / CPCE in ``paper``."""
    perceptual = require_extractor(name, feature_extractor)
    weight, g_opt, c_opt, n_critic = paper_settings if preset == "paper" else (
        100.0, OptimSettings("adam", 1e-4, (0.5, 0.9)), OptimSettings("adam", 4e-4, (0.5, 0.9)), 4)

    def content(out, y):
        p = perceptual(out, y)
        mse = torch.nn.functional.mse_loss(out, y)
        return weight * p, {"perceptual": p, "pixel": mse}

    return wgan_recipe(name, preset, gen, WGANCritic(critic_width), content, adv_weight=1.0, gp_weight=10.0,
                       g_optim=g_opt, c_optim=c_opt, n_critic=n_critic, loss_modules={"perceptual": perceptual})


def build_method(preset: str = "paper", feature_extractor=None, critic_width: int = 64, **kwargs) -> MethodSpec:
    """WGAN-VGG with its critic and loss; needs ``feature_extractor``."""
    gen = build_generator(preset, **kwargs)
    paper = (0.1, OptimSettings("adam", 1e-5, (0.5, 0.9)), OptimSettings("adam", 1e-5, (0.5, 0.9)), 4)
    return perceptual_wgan_method("wgan_vgg", preset, gen, feature_extractor, critic_width, paper)
