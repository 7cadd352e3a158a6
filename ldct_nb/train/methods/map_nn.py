"""MAP-NN (Shan et al., Nature Machine Intelligence 2019): its recipe.

Presets: ``paper`` (the MAP-NN composite loss: WGAN-GP adversarial term plus
``lambda_m`` MSE and ``lambda_e`` edge-incoherence loss
(:func:`~ldct_nb.losses.edge.edge_incoherence`, the MSE between the Sobel
gradients of output and target), on every module's output; lambda_m =
lambda_e = 50 as we read the paper; Adam lr 1e-4, betas (0.5, 0.9); four
critic steps) and ``lidnet`` (LIDnet appendix A: adversarial + perceptual,
lambda' = 100; lr 1e-4 / 4e-4). The network:
:class:`ldct_nb.models.baselines.map_nn.MAPNN`.
"""
from __future__ import annotations

import torch.nn.functional as F

from ldct_nb.losses.edge import edge_incoherence
from ldct_nb.models.baselines.common import WGANCritic
from ldct_nb.models.baselines.map_nn import build_generator
from ldct_nb.train.methods.wgan_vgg import GP_WEIGHT, perceptual_wgan_method
from ldct_nb.train.recipes import MethodSpec, OptimSettings, num, wgan_recipe

MSE_WEIGHT = 50.0
EDGE_WEIGHT = 50.0
OPTIM = OptimSettings("adam", 1e-4, (0.5, 0.9))
N_CRITIC = 4


def build_method(preset: str = "paper", feature_extractor=None, critic_width: int = 64,
                 mse_weight: float = MSE_WEIGHT, edge_weight: float = EDGE_WEIGHT, **kwargs) -> MethodSpec:
    """MAP-NN with its critic and composite loss (``lidnet`` preset needs ``feature_extractor``)."""
    gen = build_generator(preset, **kwargs)
    if preset == "lidnet":
        return perceptual_wgan_method("map_nn", preset, gen, feature_extractor, critic_width, None)
    critic = WGANCritic(critic_width)

    def g_loss(ldct, ndct):
        outs = gen.stages(ldct)
        mse = sum(F.mse_loss(o, ndct) for o in outs) / len(outs)
        edge = sum(edge_incoherence(o, ndct) for o in outs) / len(outs)
        adv = -critic(outs[-1]).mean()
        loss = adv + mse_weight * mse + edge_weight * edge
        parts = {"adversarial": num(adv), "pixel": num(F.mse_loss(outs[-1], ndct)), "mse_all_stages": num(mse),
                 "edge": num(edge), "total": num(loss)}
        return loss, parts, outs[-1]

    spec = wgan_recipe("map_nn", preset, gen, critic, lambda o, y: (o.new_zeros(()), {}), adv_weight=1.0,
                       gp_weight=GP_WEIGHT, g_optim=OPTIM, c_optim=OPTIM, n_critic=N_CRITIC)
    spec.generator_loss = g_loss  # every stage's output enters the loss, not only the last
    return spec
