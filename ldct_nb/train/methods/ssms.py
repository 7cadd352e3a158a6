"""SSMS (You et al., IEEE Access 2018): structurally-sensitive multi-scale GAN, 2-D variant: its recipe.

Critic: :class:`~ldct_nb.models.baselines.common.WGANCritic` with WGAN-GP.
Loss: the structurally-sensitive loss ``L1 + beta_ssim * L_ms-ssim``
(:func:`~ldct_nb.losses.ssim.multiscale_ssim_loss`: mean of 1 - SSIM over three
dyadic scales, our reading of "multi-scale") plus the adversarial term
``lambda_adv * -E[D(G(x))]``. Both presets use beta_ssim = 50 (LIDnet
appendix A); ``paper``: lambda_adv = 1e-3, Adam lr 1e-4, betas (0.5, 0.9),
four critic steps; ``lidnet``: lambda_adv = 1, lr 1e-4 / 4e-4. The network:
:class:`ldct_nb.models.baselines.ssms.SSMSGenerator`.
"""
from __future__ import annotations

import torch.nn.functional as F

from ldct_nb.losses.ssim import multiscale_ssim_loss
from ldct_nb.models.baselines.common import WGANCritic
from ldct_nb.models.baselines.ssms import build_generator
from ldct_nb.train.methods.wgan_vgg import GP_WEIGHT
from ldct_nb.train.recipes import MethodSpec, OptimSettings, wgan_recipe

SSIM_WEIGHT = 50.0
ADV_WEIGHT = {"paper": 1e-3, "lidnet": 1.0}
CRITIC_LR = {"paper": 1e-4, "lidnet": 4e-4}


def build_method(preset: str = "paper", feature_extractor=None, critic_width: int = 64,
                 ssim_weight: float = SSIM_WEIGHT, **kwargs) -> MethodSpec:
    """SSMS with its critic and structurally-sensitive loss (no perceptual network needed)."""
    gen = build_generator(preset, **kwargs)

    def content(out, y):
        l1 = F.l1_loss(out, y)
        s = multiscale_ssim_loss(out, y)
        return l1 + ssim_weight * s, {"pixel": l1, "ms_ssim": s}

    return wgan_recipe("ssms", preset, gen, WGANCritic(critic_width), content, adv_weight=ADV_WEIGHT[preset],
                       gp_weight=GP_WEIGHT, g_optim=OptimSettings("adam", 1e-4, (0.5, 0.9)),
                       c_optim=OptimSettings("adam", CRITIC_LR[preset], (0.5, 0.9)), n_critic=4)
