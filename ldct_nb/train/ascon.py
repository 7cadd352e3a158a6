"""ASCON's training iteration (MICCAI 2023, sec. 2.1 and 2.4; Algorithm S1).

Algorithm S1 is in the supplement, which is not public here; the order below
is the official code's (``ASCONModel.optimize_parameters``), which we read as
the algorithm:

1. **denoise** the LDCT batch once: ``Y' = G(X)``;
2. **MAC-Net step**: the MAC-Net loss (``w_g L_global + w_l L_local``) on the
   *detached* ``Y'`` and the NDCT ``Y`` updates MAC-Net's online branch,
   predictor and local MLP (official: SGD, lr 2e-4);
3. **EMA update** of the target branch and the target local MLP (momentum 0.99);
4. **denoiser step**: the total loss of sec. 2.4 on the same ``Y'`` with
   MAC-Net frozen (no gradient to its weights) but differentiable with respect
   to ``Y'``, and *fresh* anchors, positives, queries and negatives.

``optimisation="joint"`` (Table S2's ablation) instead takes one step of both
networks on one loss: the denoiser's total loss, whose contrastive terms then
also train MAC-Net (it is not frozen), followed by the EMA update.

The ablation rows of Table 2 without a contrastive term train the denoiser
alone on their pixel losses. Any registered generator can be the denoiser
(Table S1: RED-CNN and U-Net with MAC-Net).
"""
from __future__ import annotations

import torch
from torch import nn

from ldct_nb.errors import ParameterError
from ldct_nb.losses.ascon_loss import ABLATIONS, MAC_OPTIMIZERS, AsconLoss, ascon_loss
from ldct_nb.models import build, presets
from ldct_nb.models.mac_net import MACNet, mac_net
from ldct_nb.train.methods.esau_net import LOSS as ESAU_LOSS
from ldct_nb.train.distributed import average_gradients
from ldct_nb.train.steps import StepOptions, autocast_forward, update

__all__ = ["AsconStep", "build_ascon", "mac_optimizer"]


def mac_optimizer(preset: str, params) -> torch.optim.Optimizer:
    """MAC-Net's optimiser for ``preset`` (:data:`~ldct_nb.losses.ascon_loss.MAC_OPTIMIZERS`)."""
    cfg = dict(MAC_OPTIMIZERS[preset])
    name = cfg.pop("name")
    return {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}[name](params, **cfg)


class AsconStep:
    """One ASCON iteration (see the module docstring).

    Args:
        denoiser: the generator (ESAU-Net by default).
        loss: the :class:`~ldct_nb.losses.ascon_loss.AsconLoss` (holding MAC-Net, if any).
        denoiser_optimizer, mac_optimizer: the two optimisers (``mac_optimizer``
            None when the loss has no MAC-Net).
        opts: device, autocast, clipping, processes.
        optimisation: ``"alternating"`` (default) or ``"joint"``.
    """

    def __init__(self, denoiser: nn.Module, loss: AsconLoss, denoiser_optimizer: torch.optim.Optimizer,
                 mac_optimizer: torch.optim.Optimizer | None, opts: StepOptions, *, optimisation: str = "alternating"):
        if optimisation not in ("alternating", "joint"):
            raise ParameterError(f"optimisation must be 'alternating' or 'joint', got {optimisation!r}")
        self.denoiser, self.loss, self.opts, self.optimisation = denoiser, loss, opts, optimisation
        self.mac_net: MACNet | None = loss.mac_net
        self.optimizers = {"generator": denoiser_optimizer} | ({"mac_net": mac_optimizer} if mac_optimizer else {})
        self.networks = {"generator": denoiser} | ({"mac_net": self.mac_net} if self.mac_net is not None else {})
        self.uses_mac = self.mac_net is not None and any(loss.weights[t] > 0 for t in ("global", "local"))
        # bf16 autocast (CUDA, amp): the networks' forward passes; the losses stay in float32
        autocast_forward(denoiser, opts)
        if self.mac_net is not None:
            autocast_forward(self.mac_net.online.backbone, opts)
            autocast_forward(self.mac_net.target.backbone, opts)

    def mac_step(self, denoised: torch.Tensor, ndct: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        """Steps 2-3: one MAC-Net update on the detached ``denoised`` image, then the EMA update."""
        mac = self.loss.mac_loss(denoised, ndct, generator=generator)
        update(self.optimizers["mac_net"], mac.total, list(self.mac_net.online_parameters()), self.opts)
        self.loss.update_target()
        return {f"mac_{k}": v for k, v in mac.as_dict().items()}

    def denoiser_step(self, denoised: torch.Tensor, ndct: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        """Step 4: one denoiser update on the total loss, MAC-Net frozen (fresh samples from ``generator``)."""
        out = self.loss.denoiser_loss(denoised, ndct, generator=generator)
        update(self.optimizers["generator"], out.total, list(self.denoiser.parameters()), self.opts)
        return out.as_dict()

    def __call__(self, ldct: torch.Tensor, ndct: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        denoised = self.denoiser(ldct)
        if not self.uses_mac:
            return self.denoiser_step(denoised, ndct, generator)
        if self.optimisation == "alternating":
            parts = self.mac_step(denoised, ndct, generator)
            return {**parts, **self.denoiser_step(denoised, ndct, generator)}
        # joint: one loss, both networks (MAC-Net not frozen), then the EMA update
        active = [n for n, w in self.loss.weights.items() if w > 0]
        out = self.loss.terms(denoised, ndct, active, generator=generator)
        params = {"generator": list(self.denoiser.parameters()), "mac_net": list(self.mac_net.online_parameters())}
        update_joint(self.optimizers, out.total, params, self.opts)
        self.loss.update_target()
        return out.as_dict()

    def __repr__(self) -> str:
        return (f"AsconStep({type(self.denoiser).__name__}, {self.optimisation}, MAC-Net "
                f"{'on' if self.uses_mac else 'off'}; {self.loss.extra_repr()})")


def update_joint(optimizers: dict[str, torch.optim.Optimizer], loss: torch.Tensor,
                 params: dict[str, list[nn.Parameter]], opts: StepOptions) -> None:
    """One backward of ``loss`` and a step of every optimiser (gradients averaged
    over processes and clipped per network). The target branch is computed under
    ``no_grad`` by MAC-Net itself, so only online weights receive gradients."""
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for name, opt in optimizers.items():
        average_gradients(params[name], opts.world_size)
        if opts.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params[name], opts.grad_clip)
        opt.step()


def build_ascon(
    preset: str = "paper",
    *,
    denoiser: str = "esau_net",
    ablation: str = "full",
    sampling: str = "mayo2016",
    mac_width: float = 1.0,
    mac_heads: dict | None = None,
    optimisation: str = "alternating",
    loss: dict | None = None,
    model: dict | None = None,
    perceptual_net: nn.Module | None = None,
    generator_lr: float | None = None,
    opts: StepOptions | None = None,
) -> AsconStep:
    """ASCON's networks, loss and optimisers for a preset, as an :class:`AsconStep`.

    The denoiser is ``ldct_nb.models.build(denoiser, preset, **model)`` (ESAU-Net's
    ``paper`` / ``official`` presets; other generators use their ``paper`` preset).
    Its optimiser is the preset's (paper: AdamW lr 1e-4, betas (0.9, 0.99), weight
    decay 1e-9; official: AdamW lr 2e-4, betas (0.5, 0.999), weight decay 0.01);
    MAC-Net's is :func:`mac_optimizer`. ``mac_heads`` sets MAC-Net's head sizes
    (projector / predictor hidden and output, local MLP hidden and K; the paper's
    1024, 256, 256, 256 by default). ``loss`` overrides AsconLoss keywords.
    """
    opts = opts or StepOptions()
    if preset not in ESAU_LOSS:
        raise ParameterError(f"preset must be one of {list(ESAU_LOSS)} for ascon, got {preset!r}")
    net_preset = preset if preset in presets(denoiser) else "paper"
    g = build(denoiser, net_preset, **(model or {})).to(opts.device)
    needs_mac = any(t in ABLATIONS.get(ablation, ()) for t in ("global", "local"))
    mac = mac_net(mac_width, **(mac_heads or {})).to(opts.device).train() if needs_mac else None
    crit = ascon_loss(preset, sampling=sampling, ablation=ablation, mac_net=mac, perceptual_net=perceptual_net,
                      **(loss or {})).to(opts.device)
    g_opt = ESAU_LOSS[preset].optim.make(g.parameters())
    if generator_lr is not None:
        for group in g_opt.param_groups:
            group["lr"] = generator_lr
    m_opt = mac_optimizer(preset, list(mac.online_parameters())) if mac is not None else None
    return AsconStep(g, crit, g_opt, m_opt, opts, optimisation=optimisation)
