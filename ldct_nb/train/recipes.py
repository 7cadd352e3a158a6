"""A denoising method packaged for the shared training loop: its networks, its
losses and its optimisers (:class:`MethodSpec`), and the two shapes most
methods take (:func:`wgan_recipe`, :func:`supervised_recipe`).

A method's recipe is uniform::

    spec = build_method("wgan_vgg", feature_extractor=net)      # ldct_nb.train.methods
    loss, parts, out = spec.generator_loss(ldct, ndct)          # critic frozen by the loop
    loss, parts = spec.critic_loss(ldct, ndct, out.detach())    # if spec.critic is not None
    g_opt, c_opt = spec.make_optimizers()

Images are N x 1 x H x W on the [0, 1] scale. The networks come from
:mod:`ldct_nb.models`, the loss pieces from :mod:`ldct_nb.losses`; each
method's weights and optimiser settings, with the paper they come from, are in
its module of :mod:`ldct_nb.train.methods`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError
from ldct_nb.losses.adversarial import wgan_critic_loss

Tensor = torch.Tensor
GeneratorLoss = Callable[[Tensor, Tensor], "tuple[Tensor, dict[str, float], Tensor]"]
CriticLoss = Callable[[Tensor, Tensor, Tensor], "tuple[Tensor, dict[str, float]]"]
ContentLoss = Callable[[Tensor, Tensor], "tuple[Tensor, dict[str, Tensor]]"]

OPTIMIZERS = ("adam", "adamw", "rmsprop")


@dataclass(frozen=True)
class OptimSettings:
    """Optimiser of one network, as its paper states it (``betas`` unused by RMSprop)."""

    name: str = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0

    def make(self, params) -> torch.optim.Optimizer:
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop}.get(self.name)
        if cls is None:
            raise ParameterError(f"optimiser name must be one of {OPTIMIZERS}, got {self.name!r}")
        if cls is torch.optim.RMSprop:
            return cls(params, lr=self.lr, weight_decay=self.weight_decay)
        return cls(params, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)


@dataclass
class MethodSpec:
    """A denoising method packaged for the shared training loop.

    ``generator_loss(ldct, ndct) -> (loss, parts, output)`` runs the generator
    and returns its total loss, a dict of named float parts (``"pixel"`` is
    always the method's content/pixel term, ``"total"`` the loss) and the
    denoised batch. ``critic_loss(ldct, ndct, output_detached) -> (loss, parts)``
    for methods with a critic/discriminator (``None`` otherwise). ``n_critic``
    critic steps are taken per generator step. ``loss_modules`` holds frozen
    helpers (a perceptual feature network) that must follow the generator's device.
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
        """The generator's optimiser and the critic's (None without a critic)."""
        g = self.generator_optim.make(self.generator.parameters())
        c = self.critic_optim.make(self.critic.parameters()) if self.critic is not None and self.critic_optim else None
        return g, c

    def __repr__(self) -> str:
        n_g = sum(p.numel() for p in self.generator.parameters())
        n_c = sum(p.numel() for p in self.critic.parameters()) if self.critic is not None else 0
        crit = f"{type(self.critic).__name__} ({n_c:,} params), n_critic={self.n_critic}" if self.critic is not None else "none"
        return (f"MethodSpec({self.name!r}, preset={self.preset!r}, generator={type(self.generator).__name__} "
                f"({n_g:,} params), critic={crit}, lr={self.generator_optim.lr:g})")


def num(value) -> float:
    """A loss part as a plain float (detached)."""
    return float(value.detach()) if isinstance(value, Tensor) else float(value)


def wgan_recipe(
    name: str,
    preset: str,
    generator: nn.Module,
    critic: nn.Module,
    content: ContentLoss,
    *,
    adv_weight: float,
    gp_weight: float,
    g_optim: OptimSettings,
    c_optim: OptimSettings,
    n_critic: int,
    loss_modules: dict[str, nn.Module] | None = None,
    notes: str = "",
) -> MethodSpec:
    """A WGAN-GP method: generator loss ``-adv_weight E[D(G(x))] + content(G(x), y)``,
    critic loss :func:`~ldct_nb.losses.adversarial.wgan_critic_loss` (LIDnet eq. (7))."""

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


def mse_content(out: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """The plain MSE content loss (RED-CNN, U-Net): ``(loss, {"pixel": loss})``."""
    mse = F.mse_loss(out, target)
    return mse, {"pixel": mse}


def supervised_recipe(
    name: str,
    preset: str,
    generator: nn.Module,
    content: ContentLoss,
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


__all__ = ["MethodSpec", "OPTIMIZERS", "OptimSettings", "mse_content", "num", "supervised_recipe", "wgan_recipe"]
