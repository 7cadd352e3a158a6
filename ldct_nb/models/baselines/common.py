"""What the baseline networks share: input checks, padding to a multiple, preset
checks, and the two critics several methods reuse (WGAN-VGG's critic, a
PatchGAN). Networks only: the losses and recipes that train them live in
:mod:`ldct_nb.losses` and :mod:`ldct_nb.train.methods`.

Images are N x 1 x H x W on the [0, 1] scale.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError

Tensor = torch.Tensor


def check_preset(method: str, preset: str, valid: tuple[str, ...]) -> str:
    """``preset`` if ``valid`` lists it, else a ParameterError naming the valid presets."""
    if preset not in valid:
        raise ParameterError(f"preset {preset!r} is not defined for {method}; valid presets: {list(valid)}")
    return preset


# ----------------------------------------------------------------------------- critics


class WGANCritic(nn.Module):
    """The WGAN-VGG critic (Yang 2018): six 3x3 convs (64, 64, 128, 128, 256,
    256 filters; strides 1, 2, 1, 2, 1, 2) with LeakyReLU, a 1024-unit fully
    connected layer, LeakyReLU and one output, no sigmoid. Yang trained on
    64 x 64 patches, where the conv features are 8 x 8; an adaptive average
    pool to 8 x 8 keeps that case identical and lets any size through. Also
    used by CPCE, MAP-NN and SSMS, which adopt this critic."""

    def __init__(self, width: int = 64, slope: float = 0.2, pooled: int = 8):
        super().__init__()
        chans = [width, width, 2 * width, 2 * width, 4 * width, 4 * width]
        layers, c_in = [], 1
        for i, c in enumerate(chans):
            layers += [nn.Conv2d(c_in, c, 3, stride=1 + i % 2, padding=1), nn.LeakyReLU(slope)]
            c_in = c
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(pooled))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c_in * pooled * pooled, 1024), nn.LeakyReLU(slope), nn.Linear(1024, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class PatchCritic(nn.Module):
    """A PatchGAN discriminator (Isola 2017): 4x4 convs with stride 2, 2, 2,
    1, 1 and widths w, 2w, 4w, 8w, 1; instance norm after the first; one score
    per overlapping patch. ``in_channels=2`` makes it conditional on the LDCT
    input."""

    def __init__(self, in_channels: int = 1, width: int = 64, n_down: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, n_down + 1):
            c_out = width * min(2 ** i, 8)
            stride = 2 if i < n_down else 1
            layers += [nn.Conv2d(c, c_out, 4, stride, 1), nn.InstanceNorm2d(c_out, affine=True), nn.LeakyReLU(0.2)]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Reflect-pad the bottom/right of an N x C x H x W batch to a multiple; returns (padded, (H, W))."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if (h > ph and w > pw) else "replicate")
    return x, (h, w)


def check_image(x: Tensor, model: str, min_size: int = 1) -> None:
    """ParameterError unless ``x`` is an N x 1 x H x W tensor with H, W >= ``min_size``."""
    if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != 1:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ParameterError(f"{model} expects an N x 1 x H x W tensor, got {shape}")
    if min(x.shape[-2:]) < min_size:
        raise ParameterError(f"{model} needs images of at least {min_size} x {min_size} pixels "
                             f"(its unpadded convolutions shrink them), got {tuple(x.shape[-2:])}")


__all__ = ["PatchCritic", "WGANCritic", "check_image", "check_preset", "pad_to_multiple"]
