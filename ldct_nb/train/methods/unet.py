"""U-Net (Ronneberger et al., MICCAI 2015) as ASCON's Table 1 baseline: its recipe.

Trained with MSE, Adam lr 1e-4. ASCON lists U-Net [22] in Table 1 without
stating its loss; plain MSE is our choice. The network:
:class:`ldct_nb.models.baselines.unet.UNet`.
"""
from __future__ import annotations

from ldct_nb.models.baselines.unet import build_generator
from ldct_nb.train.recipes import MethodSpec, OptimSettings, mse_content, supervised_recipe

OPTIM = OptimSettings("adam", 1e-4)


def build_method(preset: str = "paper", feature_extractor=None, **kwargs) -> MethodSpec:
    """U-Net trained with MSE, Adam lr 1e-4; ``kwargs`` go to the network."""
    return supervised_recipe("unet", preset, build_generator(preset, **kwargs), mse_content, OPTIM)
