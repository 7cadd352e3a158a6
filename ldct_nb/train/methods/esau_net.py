"""ESAU-Net alone (no MAC-Net): the ASCON denoiser loss without L_global / L_local.

Presets (:data:`LOSS`):

* ``paper``: ASCON sec. 2.4 without MAC-Net, ``10 (L_MSE + L_SSIM)`` with
  ``L_SSIM = 1 - SSIM`` in its default form (valid region, no clamp: what
  scikit-image computes); AdamW, lr 1e-4, betas (0.9, 0.99), weight decay 1e-9.
* ``official``: the official code's ``100 MSE + 10 (1 - SSIM)`` with its kornia
  SSIM (reflect padding, map clamped to [0, 1]:
  :data:`ldct_nb.losses.ssim.OFFICIAL_FORM`); AdamW, lr 2e-4, betas (0.5, 0.999),
  weight decay 0.01.

The network: :class:`ldct_nb.models.esau_net.ESAUNet` (same preset names).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F

from ldct_nb.errors import ParameterError
from ldct_nb.losses.ssim import OFFICIAL_FORM, ssim
from ldct_nb.models import build
from ldct_nb.train.recipes import MethodSpec, OptimSettings, supervised_recipe


@dataclass(frozen=True)
class ESAULoss:
    """Weights of ``mse_weight L_MSE + ssim_weight (1 - SSIM)``, the SSIM form and the optimiser."""

    mse_weight: float
    ssim_weight: float
    optim: OptimSettings
    ssim_form: dict = field(default_factory=dict)


LOSS: dict[str, ESAULoss] = {
    "paper": ESAULoss(10.0, 10.0, OptimSettings("adamw", 1e-4, (0.9, 0.99), 1e-9)),
    "official": ESAULoss(100.0, 10.0, OptimSettings("adamw", 2e-4, (0.5, 0.999), 0.01), dict(OFFICIAL_FORM)),
}


def build_method(preset: str = "paper", feature_extractor=None, **kwargs) -> MethodSpec:
    """ESAU-Net trained on its preset's MSE + SSIM loss; ``kwargs`` go to the network
    (``widths=``, ``heads=`` ...); ``feature_extractor`` is not used."""
    if preset not in LOSS:
        raise ParameterError(f"preset {preset!r} has no ESAU-Net loss recipe; valid presets: {list(LOSS)}")
    gen = build("esau_net", preset, **kwargs)
    cfg = LOSS[preset]

    def content(out, y):
        mse = F.mse_loss(out, y)
        s = 1 - ssim(out, y, data_range=1.0, **cfg.ssim_form)
        return cfg.mse_weight * mse + cfg.ssim_weight * s, {"pixel": mse, "ssim_loss": s}

    return supervised_recipe("esau_net", preset, gen, content, cfg.optim,
                             notes="ESAU-Net alone (no MAC-Net): the ASCON denoiser loss without L_global / L_local")
