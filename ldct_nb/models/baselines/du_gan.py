"""DU-GAN (Huang et al., IEEE TIM 2021): GAN with dual-domain U-Net-based discriminators.

Generator: RED-CNN (:class:`~ldct_nb.models.baselines.red_cnn.REDCNN`).
Two U-Net discriminators (Schönfeld et al. 2020), one on the image and one
on its Sobel gradient magnitude, each giving a global real/fake score (from
its encoder) and a per-pixel score map (from its decoder); spectral
normalisation on every layer; least-squares GAN objective. CutMix
regularisation: with probability ``cutmix_prob`` the discriminator also sees
a real/fake CutMix, with the mix mask as the per-pixel target (the global
target is fake), plus a consistency loss between its per-pixel output on the
mix and the mix of its outputs.

Generator loss: ``0.1 * (adv_image + adv_gradient) + 1 * MSE + 20 * L1 on
gradient magnitudes``; Adam lr 1e-4 for both networks, one discriminator step
(values from the DU-GAN paper as we read it; the authors' code tunes them per run).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from ldct_nb.models.baselines.common import (
    num,
    MethodSpec, OptimSettings, check_preset, lsgan_loss, pad_to_multiple, sobel_magnitude,
)
from ldct_nb.models.baselines.red_cnn import REDCNN

PRESETS = ("paper",)


class UNetDiscriminator(nn.Module):
    """U-Net discriminator: ``depth`` down stages (3x3 conv, LeakyReLU, 2x2 avg-pool) with widths
    ``width * 2**i`` (capped at 8 * width); global head = spatial sum + linear; decoder of bilinear
    up-sampling, concatenated skips and 3x3 convs; a 1x1 conv gives the per-pixel score map."""

    def __init__(self, width: int = 64, depth: int = 4):
        super().__init__()
        ws = [min(width * 2**i, 8 * width) for i in range(depth + 1)]
        self.depth = depth
        self.stem = spectral_norm(nn.Conv2d(1, ws[0], 3, padding=1))
        self.down = nn.ModuleList(spectral_norm(nn.Conv2d(a, b, 3, padding=1)) for a, b in zip(ws, ws[1:]))
        self.global_head = spectral_norm(nn.Linear(ws[-1], 1))
        self.up = nn.ModuleList(spectral_norm(nn.Conv2d(b + a, a, 3, padding=1)) for a, b in zip(ws, ws[1:]))
        self.pixel_head = spectral_norm(nn.Conv2d(ws[0], 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, (h, w) = pad_to_multiple(x, 2**self.depth)
        f = F.leaky_relu(self.stem(x), 0.2)
        skips = [f]
        for conv in self.down:
            f = F.avg_pool2d(F.leaky_relu(conv(f), 0.2), 2)
            skips.append(f)
        global_score = self.global_head(f.sum(dim=(2, 3)))
        for i in reversed(range(self.depth)):
            f = F.interpolate(f, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            f = F.leaky_relu(self.up[i](torch.cat([f, skips[i]], 1)), 0.2)
        return global_score, self.pixel_head(f)[..., :h, :w]


class DualDomainDiscriminator(nn.Module):
    """The image-domain and gradient-domain U-Net discriminators together."""

    def __init__(self, width: int = 64, depth: int = 4):
        super().__init__()
        self.image = UNetDiscriminator(width, depth)
        self.gradient = UNetDiscriminator(width, depth)

    def forward(self, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {"image": self.image(x), "gradient": self.gradient(sobel_magnitude(x))}


def cutmix_mask(shape: tuple[int, ...], device, generator: torch.Generator | None = None) -> torch.Tensor:
    """N x 1 x H x W mask: 1 inside one random box covering a random fraction of the image, else 0."""
    n, _, h, w = shape
    mask = torch.zeros(n, 1, h, w, device=device)
    for i in range(n):
        lam = num(torch.rand((), generator=generator))
        bh, bw = max(1, int(h * (1 - lam) ** 0.5)), max(1, int(w * (1 - lam) ** 0.5))
        y0 = int(torch.randint(0, h - bh + 1, (), generator=generator))
        x0 = int(torch.randint(0, w - bw + 1, (), generator=generator))
        mask[i, :, y0:y0 + bh, x0:x0 + bw] = 1.0
    return mask


def _domain_d_loss(disc: UNetDiscriminator, real, fake, cutmix: bool, cr_weight: float):
    g_r, p_r = disc(real)
    g_f, p_f = disc(fake)
    loss = lsgan_loss(g_r, True) + lsgan_loss(p_r, True) + lsgan_loss(g_f, False) + lsgan_loss(p_f, False)
    if cutmix:
        m = cutmix_mask(real.shape, real.device)
        g_m, p_m = disc(m * real + (1 - m) * fake)
        loss = loss + lsgan_loss(g_m, False) + lsgan_loss(p_m, m)
        loss = loss + cr_weight * F.mse_loss(p_m, m * p_r + (1 - m) * p_f)
    return loss


def build_generator(preset: str = "paper", **kwargs) -> REDCNN:
    check_preset("du_gan", preset, PRESETS)
    return REDCNN(**kwargs)


def build_method(preset: str = "paper", feature_extractor=None, critic_width: int = 64, critic_depth: int = 4,
                 cutmix_prob: float = 0.5, cr_weight: float = 1.0, **kwargs) -> MethodSpec:
    """DU-GAN: RED-CNN generator, dual-domain U-Net discriminators, LSGAN + CutMix."""
    gen = build_generator(preset, **kwargs)
    critic = DualDomainDiscriminator(critic_width, critic_depth)

    def g_loss(ldct, ndct):
        out = gen(ldct)
        scores = critic(out)
        adv = {k: lsgan_loss(g, True) + lsgan_loss(p, True) for k, (g, p) in scores.items()}
        mse = F.mse_loss(out, ndct)
        grad = F.l1_loss(sobel_magnitude(out), sobel_magnitude(ndct))
        loss = 0.1 * (adv["image"] + adv["gradient"]) + mse + 20.0 * grad
        parts = {"adversarial_image": num(adv["image"]), "adversarial_gradient": num(adv["gradient"]),
                 "pixel": num(mse), "gradient": num(grad), "total": num(loss)}
        return loss, parts, out

    def c_loss(ldct, ndct, out):
        use_cutmix = bool(torch.rand(()) < cutmix_prob)
        li = _domain_d_loss(critic.image, ndct, out, use_cutmix, cr_weight)
        lg = _domain_d_loss(critic.gradient, sobel_magnitude(ndct), sobel_magnitude(out), use_cutmix, cr_weight)
        loss = li + lg
        return loss, {"image": num(li), "gradient": num(lg), "cutmix": num(use_cutmix), "total": num(loss)}

    opt = OptimSettings("adam", 1e-4)
    return MethodSpec("du_gan", preset, gen, critic, g_loss, c_loss, opt, opt, 1)
