"""Loss functions: SSIM, MAC-Net's patch-wise (BYOL) and pixel-wise (InfoNCE)
modules, and ASCON's total loss with its presets.

``ssim``: SSIM / SSIM loss; ``patch_contrast``: L_global (eqs. 2-4);
``pixel_contrast``: L_local (eq. 5); ``ascon_loss``: sec. 2.4 and the
official code's weights.
"""
from __future__ import annotations

from ldct_nb.losses.ascon_loss import ABLATIONS, PRESETS, SAMPLING_PRESETS, AsconLoss, AsconLossOutput, ascon_loss, background_filter
from ldct_nb.losses.patch_contrast import normalized_mse, patch_noncontrastive_loss, select_positives
from ldct_nb.losses.pixel_contrast import info_nce, pixel_contrastive_loss, select_hard_negatives
from ldct_nb.losses.ssim import SSIMLoss, ssim, ssim_map

__all__ = [
    "ABLATIONS",
    "PRESETS",
    "SAMPLING_PRESETS",
    "AsconLoss",
    "AsconLossOutput",
    "SSIMLoss",
    "ascon_loss",
    "background_filter",
    "info_nce",
    "normalized_mse",
    "patch_noncontrastive_loss",
    "pixel_contrastive_loss",
    "select_hard_negatives",
    "select_positives",
    "ssim",
    "ssim_map",
]
