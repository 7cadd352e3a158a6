"""CPCE-2D (Shan et al., IEEE TMI 2018): its recipe.

Trained as in the paper's 2-D setting: WGAN-GP (critic of WGAN-VGG, lambda
10) plus a perceptual loss (lambda_p = 0.1), Adam lr 1e-4, betas (0.5, 0.9),
four critic steps per generator step. ``lidnet`` preset: LIDnet appendix A
(lambda' = 100; lr 1e-4 / 4e-4). The network:
:class:`ldct_nb.models.baselines.cpce.CPCE`.
"""
from __future__ import annotations

from ldct_nb.models.baselines.cpce import build_generator
from ldct_nb.train.methods.wgan_vgg import perceptual_wgan_method
from ldct_nb.train.recipes import MethodSpec, OptimSettings

PAPER = (0.1, OptimSettings("adam", 1e-4, (0.5, 0.9)), OptimSettings("adam", 1e-4, (0.5, 0.9)), 4)
"""Shan 2018: (perceptual weight, generator optimiser, critic optimiser, critic steps)."""


def build_method(preset: str = "paper", feature_extractor=None, critic_width: int = 64, **kwargs) -> MethodSpec:
    """CPCE-2D with the WGAN critic and a perceptual loss; needs ``feature_extractor``."""
    gen = build_generator(preset, **kwargs)
    return perceptual_wgan_method("cpce", preset, gen, feature_extractor, critic_width, PAPER)
