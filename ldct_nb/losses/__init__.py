"""Loss functions: SSIM, MAC-Net's patch-wise (BYOL) and pixel-wise (InfoNCE)
modules, ASCON's total loss with its presets, and the baselines' loss pieces.

``ssim``: SSIM / SSIM loss (and the multi-scale SSIM loss of SSMS);
``patch_contrast``: L_global (eqs. 2-4); ``pixel_contrast``: L_local (eq. 5);
``ascon_loss``: sec. 2.4 and the official code's weights; ``adversarial``:
WGAN-GP and least-squares GAN; ``perceptual``: the feature-space loss;
``edge``: Sobel-gradient losses (MAP-NN, DU-GAN). The methods' recipes that
weigh these pieces live in :mod:`ldct_nb.train.methods`.
"""
from __future__ import annotations

from ldct_nb.losses.adversarial import gradient_penalty, lsgan_loss, wgan_critic_loss
from ldct_nb.losses.ascon_loss import ABLATIONS, PRESETS, SAMPLING_PRESETS, AsconLoss, AsconLossOutput, ascon_loss, background_filter
from ldct_nb.losses.edge import edge_incoherence, gradient_magnitude_l1
from ldct_nb.losses.patch_contrast import normalized_mse, patch_noncontrastive_loss, select_positives
from ldct_nb.losses.perceptual import PerceptualLoss, perceptual_loss, require_extractor
from ldct_nb.losses.pixel_contrast import info_nce, pixel_contrastive_loss, select_hard_negatives
from ldct_nb.losses.ssim import SSIMLoss, multiscale_ssim_loss, ssim, ssim_map

__all__ = [
    "ABLATIONS",
    "PRESETS",
    "SAMPLING_PRESETS",
    "AsconLoss",
    "AsconLossOutput",
    "PerceptualLoss",
    "SSIMLoss",
    "ascon_loss",
    "background_filter",
    "edge_incoherence",
    "gradient_magnitude_l1",
    "gradient_penalty",
    "info_nce",
    "lsgan_loss",
    "multiscale_ssim_loss",
    "normalized_mse",
    "patch_noncontrastive_loss",
    "perceptual_loss",
    "pixel_contrastive_loss",
    "require_extractor",
    "select_hard_negatives",
    "select_positives",
    "ssim",
    "ssim_map",
    "wgan_critic_loss",
]
