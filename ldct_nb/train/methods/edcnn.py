"""EDCNN (Liang et al., ICSP 2020): its compound loss.

``MSE + w_p * multi-scale perceptual loss`` with ``w_p = 0.01`` on the
extractor's multi-scale features (the paper uses an ImageNet ResNet-50's four
stages; here the extractor is the one you pass: VGG-19 with your weights, or
the in-project NDCT feature network). Adam, lr 1e-4 as in the paper's setup (a
choice where we could not check it). The network:
:class:`ldct_nb.models.baselines.edcnn.EDCNN`.
"""
from __future__ import annotations

import torch.nn.functional as F

from ldct_nb.losses.perceptual import require_extractor
from ldct_nb.models.baselines.edcnn import build_generator
from ldct_nb.train.recipes import MethodSpec, OptimSettings, supervised_recipe

PERCEPTUAL_WEIGHT = 0.01
OPTIM = OptimSettings("adam", 1e-4)


def build_method(preset: str = "paper", feature_extractor=None, perceptual_weight: float = PERCEPTUAL_WEIGHT,
                 **kwargs) -> MethodSpec:
    """EDCNN with its compound loss ``MSE + 0.01 perceptual``; needs ``feature_extractor``."""
    gen = build_generator(preset, **kwargs)
    perceptual = require_extractor("edcnn", feature_extractor)

    def content(out, y):
        mse = F.mse_loss(out, y)
        p = perceptual(out, y)
        return mse + perceptual_weight * p, {"pixel": mse, "perceptual": p}

    return supervised_recipe("edcnn", preset, gen, content, OPTIM, loss_modules={"perceptual": perceptual})
