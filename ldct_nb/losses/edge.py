"""Gradient-domain losses built on Sobel gradients (:mod:`ldct_nb.models.sobel`).

* :func:`edge_incoherence`: MAP-NN's edge incoherence loss (Shan et al. 2019),
  the MSE between the Sobel gradient fields of output and target.
* :func:`gradient_magnitude_l1`: DU-GAN's gradient-domain fidelity term (Huang
  et al. 2021), the L1 distance between Sobel gradient magnitudes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ldct_nb.models.sobel import sobel_gradients, sobel_magnitude


def edge_incoherence(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(MSE(gx_a, gx_b) + MSE(gy_a, gy_b)) / 2`` over both Sobel directions."""
    ax, ay = sobel_gradients(a)
    bx, by = sobel_gradients(b)
    return 0.5 * (F.mse_loss(ax, bx) + F.mse_loss(ay, by))


def gradient_magnitude_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``mean |sobel_magnitude(a) - sobel_magnitude(b)|``."""
    return F.l1_loss(sobel_magnitude(a), sobel_magnitude(b))


__all__ = ["edge_incoherence", "gradient_magnitude_l1"]
