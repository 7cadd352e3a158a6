"""MAP-NN (Shan et al., Nature Machine Intelligence 2019): modularised adaptive processing.

``modules`` identical-in-design conveying-path encoder-decoders (CPCE-2D,
each with its own weights) in series; each module refines the previous
output, ``x_t = ReLU(x_{t-1} + f_t(x_{t-1}))``, so every intermediate
``x_t`` is a denoised image (the radiologist picks the depth). LIDnet uses 3
modules; that is our default.

Presets: ``paper`` (the MAP-NN composite loss: WGAN-GP adversarial term plus
``lambda_m`` MSE and ``lambda_e`` edge-incoherence loss, the MSE between the
Sobel gradients of output and target, on every module's output; lambda_m =
lambda_e = 50 as we read the paper; Adam lr 1e-4, betas (0.5, 0.9); four
critic steps) and ``lidnet`` (LIDnet appendix A: adversarial + perceptual,
lambda' = 100; lr 1e-4 / 4e-4).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.models.baselines.common import (
    num,
    MethodSpec, OptimSettings, WGANCritic, check_image, check_preset, sobel_gradients, wgan_recipe,
)
from ldct_nb.models.baselines.cpce import CPCE
from ldct_nb.models.baselines.wgan_vgg import perceptual_wgan_method

PRESETS = ("paper", "lidnet")


class MAPNN(nn.Module):
    """``modules`` CPCE-2D modules in series; :meth:`stages` returns every module's output."""

    def __init__(self, modules: int = 3, width: int = 32):
        super().__init__()
        self.stages_ = nn.ModuleList(CPCE(width, residual=True) for _ in range(modules))

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        check_image(x, "MAPNN")
        outs = []
        for m in self.stages_:
            x = m(x)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)[-1]


def edge_incoherence(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MSE between Sobel gradient fields (both directions) of two images."""
    ax, ay = sobel_gradients(a)
    bx, by = sobel_gradients(b)
    return 0.5 * (F.mse_loss(ax, bx) + F.mse_loss(ay, by))


def build_generator(preset: str = "paper", **kwargs) -> MAPNN:
    check_preset("map_nn", preset, PRESETS)
    return MAPNN(**kwargs)


def build_method(preset: str = "paper", feature_extractor=None, critic_width: int = 64,
                 mse_weight: float = 50.0, edge_weight: float = 50.0, **kwargs) -> MethodSpec:
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
                       gp_weight=10.0, g_optim=OptimSettings("adam", 1e-4, (0.5, 0.9)),
                       c_optim=OptimSettings("adam", 1e-4, (0.5, 0.9)), n_critic=4)
    spec.generator_loss = g_loss
    return spec
