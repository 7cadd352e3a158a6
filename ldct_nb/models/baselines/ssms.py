"""SSMS (You et al., IEEE Access 2018): structurally-sensitive multi-scale GAN, 2-D variant.

Generator: eight 3x3 convolutions with 32 filters and ReLU (the 2-D SMGAN
generator shares WGAN-VGG's layout), critic:
:class:`~ldct_nb.models.baselines.common.WGANCritic`. Presets ``paper`` and
``lidnet`` share the networks; the structurally-sensitive loss and the
optimisers: :mod:`ldct_nb.train.methods.ssms`.
"""
from __future__ import annotations

from ldct_nb.models.baselines.common import check_preset
from ldct_nb.models.baselines.wgan_vgg import WGANVGGGenerator

PRESETS = ("paper", "lidnet")


class SSMSGenerator(WGANVGGGenerator):
    """The 2-D SSMS generator: eight 3x3 conv + ReLU layers with ``width`` filters."""


def build_generator(preset: str = "paper", **kwargs) -> SSMSGenerator:
    check_preset("ssms", preset, PRESETS)
    return SSMSGenerator(**kwargs)
