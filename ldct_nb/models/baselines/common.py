"""What every method shares: the :class:`MethodSpec` recipe the training loop
consumes, and the small loss pieces several papers use (WGAN-GP, least-squares
GAN, Sobel gradients, SSIM, a feature-space perceptual loss).

A method's recipe is uniform::

    spec = build_method("wgan_vgg", feature_extractor=net)
    loss, parts, out = spec.generator_loss(ldct, ndct)      # critic frozen by the loop
    loss, parts = spec.critic_loss(ldct, ndct, out.detach())  # if spec.critic is not None
    g_opt, c_opt = spec.make_optimizers()

Images are N x 1 x H x W on the [0, 1] scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError

Tensor = torch.Tensor
GeneratorLoss = Callable[[Tensor, Tensor], "tuple[Tensor, dict[str, float], Tensor]"]
CriticLoss = Callable[[Tensor, Tensor, Tensor], "tuple[Tensor, dict[str, float]]"]


@dataclass(frozen=True)
class OptimSettings:
    """Optimiser of one network, as its paper states it."""

    name: str = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0

    def make(self, params) -> torch.optim.Optimizer:
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop}.get(self.name)
        if cls is None:
            raise ParameterError(f"optimiser name must be adam, adamw or rmsprop, got {self.name!r}")
        if cls is torch.optim.RMSprop:
            return cls(params, lr=self.lr, weight_decay=self.weight_decay)
        return cls(params, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)


@dataclass
class MethodSpec:
    """A denoising method packaged for the shared training loop.

    ``generator_loss(ldct, ndct) -> (loss, parts, output)`` runs the generator
    and returns its total loss, a dict of named float parts (``"pixel"`` is
    always the method's content/pixel term) and the denoised batch.
    ``critic_loss(ldct, ndct, output_detached) -> (loss, parts)`` for methods
    with a critic/discriminator (``None`` otherwise). ``n_critic`` critic steps
    are taken per generator step. ``loss_modules`` holds frozen helpers (a
    perceptual feature network) that must follow the generator's device.
    """

    name: str
    preset: str
    generator: nn.Module
    critic: nn.Module | None
    generator_loss: GeneratorLoss
    critic_loss: CriticLoss | None
    generator_optim: OptimSettings
    critic_optim: OptimSettings | None = None
    n_critic: int = 1
    loss_modules: nn.ModuleDict = field(default_factory=nn.ModuleDict)
    notes: str = ""

    def to(self, device) -> MethodSpec:
        self.generator.to(device)
        if self.critic is not None:
            self.critic.to(device)
        self.loss_modules.to(device)
        return self

    def make_optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
        g = self.generator_optim.make(self.generator.parameters())
        c = self.critic_optim.make(self.critic.parameters()) if self.critic is not None and self.critic_optim else None
        return g, c

    def __repr__(self) -> str:
        n_g = sum(p.numel() for p in self.generator.parameters())
        n_c = sum(p.numel() for p in self.critic.parameters()) if self.critic is not None else 0
        crit = f"{type(self.critic).__name__} ({n_c:,} params), n_critic={self.n_critic}" if self.critic is not None else "none"
        return (f"MethodSpec({self.name!r}, preset={self.preset!r}, generator={type(self.generator).__name__} "
                f"({n_g:,} params), critic={crit}, lr={self.generator_optim.lr:g})")


# ----------------------------------------------------------------------------- losses


def num(value) -> float:
    """A loss part as a plain float (detached)."""
    return float(value.detach()) if isinstance(value, Tensor) else float(value)



def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP penalty (Gulrajani 2017): ``E[(||grad D(x_hat)||_2 - 1)^2]`` on
    random interpolates of real and fake samples."""
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    score = critic(mixed)
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def wgan_critic_loss(critic: nn.Module, real: Tensor, fake: Tensor, gp_weight: float = 10.0) -> tuple[Tensor, dict]:
    """``D(fake) - D(real) + lambda GP`` (LIDnet eq. (7), WGAN-GP)."""
    wd = critic(fake).mean() - critic(real).mean()
    gp = gradient_penalty(critic, real, fake)
    return wd + gp_weight * gp, {"wasserstein": -num(wd), "gradient_penalty": num(gp)}


def lsgan_loss(prediction: Tensor, target_is_real: bool | Tensor) -> Tensor:
    """Least-squares GAN loss (Mao 2017): mean of ``(D - t)^2`` with t = 1 real, 0 fake
    (or a per-pixel target map)."""
    if isinstance(target_is_real, Tensor):
        return F.mse_loss(prediction, target_is_real)
    return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if target_is_real else 0.0))


_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """Horizontal and vertical Sobel responses of an N x 1 x H x W batch (replicate padding)."""
    k = torch.stack([_SOBEL_X, _SOBEL_X.t()]).unsqueeze(1).to(x)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)
    return g[:, :1], g[:, 1:]


def sobel_magnitude(x: Tensor, eps: float = 1e-12) -> Tensor:
    """``sqrt(gx^2 + gy^2)`` (the gradient-domain image of DU-GAN)."""
    gx, gy = sobel_gradients(x)
    return torch.sqrt(gx**2 + gy**2 + eps)


def ssim(x: Tensor, y: Tensor, **form) -> Tensor:
    """Mean SSIM on the [0, 1] scale (:func:`ldct_nb.losses.ssim.ssim`: Gaussian
    window 11, sigma 1.5, K1 0.01, K2 0.03, data range 1; ``form`` may give its
    ``padding`` / ``clamp``). Imported lazily: ``ldct_nb.losses`` itself imports
    :mod:`ldct_nb.models`."""
    from ldct_nb.losses.ssim import ssim as _ssim

    return _ssim(x, y, data_range=1.0, **form)


def multiscale_ssim_loss(x: Tensor, y: Tensor, scales: int = 3) -> Tensor:
    """Mean of ``1 - SSIM`` over up to ``scales`` dyadic scales (2x2 average
    pooling between them; scales whose smaller side is under the 11-pixel
    SSIM window are skipped)."""
    losses = []
    for s in range(scales):
        if s:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        if min(x.shape[-2:]) < 11:
            break
        losses.append(1 - ssim(x, y))
    if not losses:
        raise ParameterError(f"images must be at least 11 x 11 pixels for SSIM, got {tuple(x.shape[-2:])}")
    return sum(losses) / len(losses)


class PerceptualLoss(nn.Module):
    """Mean squared distance between feature maps of a frozen extractor.

    ``extractor(x)`` returns one tensor or a list of tensors (multi-scale);
    the loss is the mean over the list of ``mean((phi(a) - phi(b))^2)``. The
    extractor is frozen (``requires_grad_(False)``, eval mode) here. An
    extractor with a ``trained_steps`` attribute of 0 (an untrained
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
                "perceptual loss: train it with ldct_nb.models.feature_net.train_feature_net or load one with load_feature_net"
            )
        self.extractor = extractor.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.extractor.eval()
        return self

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        fo, ft = self.extractor(output), self.extractor(target)
        if isinstance(fo, Tensor):
            fo, ft = [fo], [ft]
        return sum(F.mse_loss(a, b) for a, b in zip(fo, ft)) / len(fo)


def require_extractor(method: str, feature_extractor: nn.Module | None) -> PerceptualLoss:
    """The method's perceptual loss, or a ParameterError explaining how to get one."""
    if feature_extractor is None:
        raise ParameterError(
            f"{method} uses a perceptual loss: pass feature_extractor= either "
            "ldct_nb.models.feature_net.VGGFeatures(weights_path=...) with ImageNet VGG-19 weights you supply, "
            "or a feature network trained on NDCT data (ldct_nb.models.feature_net.train_feature_net / "
            "load_feature_net). An untrained network is not a perceptual loss, so none is made up here."
        )
    return PerceptualLoss(feature_extractor)


def check_preset(method: str, preset: str, valid: tuple[str, ...]) -> str:
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


def wgan_recipe(
    name: str,
    preset: str,
    generator: nn.Module,
    critic: nn.Module,
    content: Callable[[Tensor, Tensor], tuple[Tensor, dict[str, Tensor]]],
    *,
    adv_weight: float,
    gp_weight: float,
    g_optim: OptimSettings,
    c_optim: OptimSettings,
    n_critic: int,
    loss_modules: dict[str, nn.Module] | None = None,
    notes: str = "",
) -> MethodSpec:
    """A WGAN-GP method: generator loss ``-adv_weight E[D(G(x))] + content(G(x), y)``."""

    def g_loss(ldct: Tensor, ndct: Tensor):
        out = generator(ldct)
        total, parts = content(out, ndct)
        adv = -critic(out).mean()
        loss = total + adv_weight * adv
        return loss, {"adversarial": num(adv), **{k: num(v) for k, v in parts.items()}, "total": num(loss)}, out

    def c_loss(ldct: Tensor, ndct: Tensor, out: Tensor):
        loss, parts = wgan_critic_loss(critic, ndct, out, gp_weight)
        return loss, {**parts, "total": num(loss)}

    return MethodSpec(name, preset, generator, critic, g_loss, c_loss, g_optim, c_optim, n_critic,
                      nn.ModuleDict(loss_modules or {}), notes)


def supervised_recipe(
    name: str,
    preset: str,
    generator: nn.Module,
    content: Callable[[Tensor, Tensor], tuple[Tensor, dict[str, Tensor]]],
    g_optim: OptimSettings,
    *,
    loss_modules: dict[str, nn.Module] | None = None,
    notes: str = "",
) -> MethodSpec:
    """A method trained on a content loss alone (no critic)."""

    def g_loss(ldct: Tensor, ndct: Tensor):
        out = generator(ldct)
        loss, parts = content(out, ndct)
        return loss, {**{k: num(v) for k, v in parts.items()}, "total": num(loss)}, out

    return MethodSpec(name, preset, generator, None, g_loss, None, g_optim, None, 1,
                      nn.ModuleDict(loss_modules or {}), notes)
