"""RED-CNN (Chen et al., IEEE TMI 2017): its recipe.

Loss MSE; Adam, lr 1e-4 (the paper's initial rate). The network:
:class:`ldct_nb.models.baselines.red_cnn.REDCNN`.
"""
from __future__ import annotations

from ldct_nb.models.baselines.red_cnn import build_generator
from ldct_nb.train.recipes import MethodSpec, OptimSettings, mse_content, supervised_recipe

OPTIM = OptimSettings("adam", 1e-4)


def build_method(preset: str = "paper", feature_extractor=None, **kwargs) -> MethodSpec:
    """RED-CNN trained with MSE, Adam lr 1e-4; ``kwargs`` go to the network."""
    return supervised_recipe("red_cnn", preset, build_generator(preset, **kwargs), mse_content, OPTIM)
