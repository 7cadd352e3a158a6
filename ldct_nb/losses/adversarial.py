"""Adversarial losses of the GAN baselines.

* Wasserstein GAN with gradient penalty (Gulrajani et al. 2017), the objective
  of WGAN-VGG, CPCE, MAP-NN, SSMS and of every GAN baseline in LIDnet's
  setting (LIDnet eq. (5) generator term ``-E[D(G(x))]``, eq. (7) critic
  ``E[D(G(x))] - E[D(y)] + lambda E[(||grad D(x_hat)||_2 - 1)^2]``, lambda = 10).
* Least-squares GAN (Mao et al. 2017), the objective of DU-GAN, CNCL and Res-HLF.

Images are N x 1 x H x W on the [0, 1] scale.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP penalty (Gulrajani 2017): ``E[(||grad D(x_hat)||_2 - 1)^2]`` on
    random interpolates ``x_hat = eps real + (1 - eps) fake``, one ``eps`` ~ U[0, 1]
    per sample. Differentiable (``create_graph=True``) for the critic's update."""
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    score = critic(mixed)
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def wgan_critic_loss(critic: nn.Module, real: Tensor, fake: Tensor, gp_weight: float = 10.0) -> tuple[Tensor, dict[str, float]]:
    """``E[D(fake)] - E[D(real)] + gp_weight GP`` (LIDnet eq. (7), WGAN-GP) and its parts
    as floats: ``wasserstein`` (the estimate ``E[D(real)] - E[D(fake)]``) and
    ``gradient_penalty``."""
    wd = critic(fake).mean() - critic(real).mean()
    gp = gradient_penalty(critic, real, fake)
    return wd + gp_weight * gp, {"wasserstein": -float(wd.detach()), "gradient_penalty": float(gp.detach())}


def lsgan_loss(prediction: Tensor, target_is_real: bool | Tensor) -> Tensor:
    """Least-squares GAN loss (Mao 2017): mean of ``(D - t)^2`` with t = 1 real, 0 fake
    (or a per-pixel target map, as DU-GAN's CutMix uses)."""
    if isinstance(target_is_real, Tensor):
        return F.mse_loss(prediction, target_is_real)
    return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if target_is_real else 0.0))


__all__ = ["gradient_penalty", "lsgan_loss", "wgan_critic_loss"]
