"""Sobel image gradients: an image operation shared by networks and losses.

The 3 x 3 Sobel kernel (Sobel & Feldman 1968) weights the central row twice,
``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]``; on a ramp rising by 1 per column it
gives 8. It lives with the networks because networks use it (EDCNN's edge
enhancement layer, DU-GAN's gradient-domain discriminator); the losses built
on it (MAP-NN's edge incoherence, DU-GAN's gradient L1) import it from here,
so the layering stays ``models <- losses <- train``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
"""Horizontal Sobel kernel (responds to intensity growing along x, the column index)."""

SOBEL_DIAGONAL = torch.tensor([[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]])
"""Diagonal Sobel kernel (EDCNN's third direction; its left-right flip is the fourth)."""


def sobel_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical Sobel responses of an N x 1 x H x W batch (replicate padding)."""
    k = torch.stack([SOBEL_X, SOBEL_X.t()]).unsqueeze(1).to(x)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)
    return g[:, :1], g[:, 1:]


def sobel_magnitude(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``sqrt(gx^2 + gy^2 + eps)`` (the gradient-domain image of DU-GAN)."""
    gx, gy = sobel_gradients(x)
    return torch.sqrt(gx**2 + gy**2 + eps)


__all__ = ["SOBEL_DIAGONAL", "SOBEL_X", "sobel_gradients", "sobel_magnitude"]
