"""Perceptual (feature-space) loss (Johnson et al. 2016): the mean squared
distance between the feature maps of a frozen network.

One definition, :func:`perceptual_loss`, serves every method: the baselines
(EDCNN, WGAN-VGG, CPCE, MAP-NN in LIDnet's setting) through
:class:`PerceptualLoss`, and ASCON's Table 2 ablation row "MSE + perceptual"
through :class:`ldct_nb.losses.ascon_loss.AsconLoss`. :class:`PerceptualLoss`
adds what a training recipe needs around it: the extractor frozen and kept in
eval mode, carried as a submodule (so it follows the generator's device), and
an untrained :class:`~ldct_nb.models.feature_net.NDCTFeatureNet` refused.

ImageNet weights cannot be downloaded here, so no extractor is made up: the
caller passes :class:`~ldct_nb.models.feature_net.VGGFeatures` with weights it
supplies, or an NDCT feature network trained in-project
(:func:`ldct_nb.train.feature_net.train_feature_net`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError

Tensor = torch.Tensor


def perceptual_loss(feature_net: nn.Module, denoised: Tensor, ndct: Tensor) -> Tensor:
    """``mean_l mean((phi_l(denoised) - phi_l(ndct))^2)``: the MSE between the feature
    maps of ``feature_net`` (one tensor, or the mean over a list of them, for a
    multi-scale extractor). The NDCT side is computed without gradient (it is the
    target); the gradient flows to ``denoised`` through ``feature_net``."""
    out = feature_net(denoised)
    with torch.no_grad():
        ref = feature_net(ndct)
    if isinstance(out, Tensor):
        out, ref = [out], [ref]
    return torch.stack([F.mse_loss(a, b) for a, b in zip(out, ref)]).mean()


class PerceptualLoss(nn.Module):
    """:func:`perceptual_loss` with a frozen extractor held as a submodule.

    ``extractor(x)`` returns one tensor or a list of tensors (multi-scale). The
    extractor is frozen here (``requires_grad_(False)``) and stays in eval mode
    whatever mode the loss is put in. An extractor with a ``trained_steps``
    attribute under 1 (an untrained
    :class:`~ldct_nb.models.feature_net.NDCTFeatureNet`) is refused.
    """

    def __init__(self, extractor: nn.Module):
        super().__init__()
        if not isinstance(extractor, nn.Module):
            raise ParameterError(f"feature_extractor must be an nn.Module, got {type(extractor).__name__}")
        steps = getattr(extractor, "trained_steps", None)
        if steps is not None and int(steps) < 1:
            raise ParameterError(
                f"feature_extractor is an untrained {type(extractor).__name__} (trained_steps={steps}), which is no "
                "perceptual loss: train it with ldct_nb.train.feature_net.train_feature_net or load one with "
                "ldct_nb.models.feature_net.load_feature_net"
            )
        self.extractor = extractor.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.extractor.eval()
        return self

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        return perceptual_loss(self.extractor, output, target)


def require_extractor(method: str, feature_extractor: nn.Module | None) -> PerceptualLoss:
    """The method's perceptual loss, or a ParameterError explaining how to get one."""
    if feature_extractor is None:
        raise ParameterError(
            f"{method} uses a perceptual loss: pass feature_extractor= either "
            "ldct_nb.models.feature_net.VGGFeatures(weights_path=...) with ImageNet VGG-19 weights you supply, "
            "or a feature network trained on NDCT data (ldct_nb.train.feature_net.train_feature_net, or "
            "ldct_nb.models.feature_net.load_feature_net). An untrained network is not a perceptual loss, so none "
            "is made up here."
        )
    return PerceptualLoss(feature_extractor)


__all__ = ["PerceptualLoss", "perceptual_loss", "require_extractor"]
