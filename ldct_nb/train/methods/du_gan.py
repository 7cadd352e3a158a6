"""DU-GAN (Huang et al., IEEE TIM 2021): its recipe.

Networks: a RED-CNN generator and the dual-domain U-Net discriminators
(:class:`~ldct_nb.models.baselines.du_gan.DualDomainDiscriminator`), one on the
image and one on its Sobel gradient magnitude, each with a global score and a
per-pixel score map; least-squares GAN objective. CutMix regularisation
(Schönfeld et al. 2020): with probability ``cutmix_prob`` the discriminator
also sees a real/fake CutMix, with the mix mask as the per-pixel target (the
global target is fake), plus a consistency loss between its per-pixel output
on the mix and the mix of its outputs.

Generator loss: ``0.1 * (adv_image + adv_gradient) + 1 * MSE + 20 * L1 on
gradient magnitudes``; Adam lr 1e-4 for both networks, one discriminator step
(values from the DU-GAN paper as we read it; the authors' code tunes them per run).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ldct_nb.losses.adversarial import lsgan_loss
from ldct_nb.losses.edge import gradient_magnitude_l1
from ldct_nb.models.baselines.du_gan import DualDomainDiscriminator, UNetDiscriminator, build_generator
from ldct_nb.models.sobel import sobel_magnitude
from ldct_nb.train.recipes import MethodSpec, OptimSettings, num

ADV_WEIGHT = 0.1
MSE_WEIGHT = 1.0
GRADIENT_WEIGHT = 20.0
OPTIM = OptimSettings("adam", 1e-4)


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


def domain_discriminator_loss(disc: UNetDiscriminator, real, fake, cutmix: bool, cr_weight: float) -> torch.Tensor:
    """LSGAN loss of one domain's U-Net discriminator on its global and per-pixel outputs,
    plus (with ``cutmix``) the CutMix terms and the consistency loss weighted by ``cr_weight``."""
    g_r, p_r = disc(real)
    g_f, p_f = disc(fake)
    loss = lsgan_loss(g_r, True) + lsgan_loss(p_r, True) + lsgan_loss(g_f, False) + lsgan_loss(p_f, False)
    if cutmix:
        m = cutmix_mask(real.shape, real.device)
        g_m, p_m = disc(m * real + (1 - m) * fake)
        loss = loss + lsgan_loss(g_m, False) + lsgan_loss(p_m, m)
        loss = loss + cr_weight * F.mse_loss(p_m, m * p_r + (1 - m) * p_f)
    return loss


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
        grad = gradient_magnitude_l1(out, ndct)
        loss = ADV_WEIGHT * (adv["image"] + adv["gradient"]) + MSE_WEIGHT * mse + GRADIENT_WEIGHT * grad
        parts = {"adversarial_image": num(adv["image"]), "adversarial_gradient": num(adv["gradient"]),
                 "pixel": num(mse), "gradient": num(grad), "total": num(loss)}
        return loss, parts, out

    def c_loss(ldct, ndct, out):
        use_cutmix = bool(torch.rand(()) < cutmix_prob)
        li = domain_discriminator_loss(critic.image, ndct, out, use_cutmix, cr_weight)
        lg = domain_discriminator_loss(critic.gradient, sobel_magnitude(ndct), sobel_magnitude(out), use_cutmix,
                                       cr_weight)
        loss = li + lg
        return loss, {"image": num(li), "gradient": num(lg), "cutmix": num(use_cutmix), "total": num(loss)}

    return MethodSpec("du_gan", preset, gen, critic, g_loss, c_loss, OPTIM, OPTIM, 1)
