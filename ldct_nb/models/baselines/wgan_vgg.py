"""WGAN-VGG (Yang et al., IEEE TMI 2018): Wasserstein GAN with a perceptual loss.

Generator: eight 3x3 convolutions, 32 filters (1 in the last), ReLU after
each. Critic: :class:`~ldct_nb.models.baselines.common.WGANCritic`. Presets
``paper`` (Yang 2018) and ``lidnet`` (LIDnet appendix A) share the networks
and differ in the loss and optimisers: :mod:`ldct_nb.train.methods.wgan_vgg`.
"""
from __future__ import annotations

import torch
from torch import nn

from ldct_nb.models.baselines.common import check_image, check_preset

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
        # The last layer is also followed by a ReLU (Yang 2018). With PyTorch's default
        # initialisation its pre-activation is negative at every pixel for about half of the
        # seeds (its inputs are non-negative ReLU outputs of similar size everywhere, so the
        # sign of the sum of its weights decides), and the network never receives a gradient.
        # The paper does not state its initialisation; we make the last kernel non-negative
        # and its bias zero, so the output starts non-negative and trainable.
        last = mods[-2]
        with torch.no_grad():
            last.weight.abs_()
            last.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, "WGANVGGGenerator")
        return self.net(x)


def build_generator(preset: str = "paper", **kwargs) -> WGANVGGGenerator:
    check_preset("wgan_vgg", preset, PRESETS)
    return WGANVGGGenerator(**kwargs)
