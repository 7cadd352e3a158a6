"""How strongly each term of ASCON's denoiser loss pulls on the denoised image.

The ``paper`` and ``official`` presets weight the MAC-Net terms very
differently against the pixel terms (sec. 2.4: ``L_global + L_local +
10 (L_MSE + L_SSIM)``; official code: ``100 MSE + 10 (1 - SSIM) + 0.1 (0.5
L_global + 0.5 L_local)``), and the terms are means over anchors / queries
here where the paper writes sums. What reaches the denoiser is the gradient of
each weighted term with respect to the denoised image ``Y'``; this module
measures its L2 norm per term, and the ratio of the MAC-Net terms' gradient to
the pixel terms' gradient, at MAC-Net's initialisation and after a few MAC-Net
steps (the "warm-up" that alternating training gives it before the denoiser
has learned much).

:func:`gradient_balance` is one measurement; :func:`balance_table` runs the
grid of notebook 03 (presets x noise levels x {init, after warm-up}).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ldct_nb.errors import ParameterError
from ldct_nb.losses.ascon_loss import MAC_OPTIMIZERS, TERMS, AsconLoss, ascon_loss, term_gradients
from ldct_nb.models.mac_net import mac_net as build_mac_net

PIXEL_TERMS = ("mse", "ssim", "perceptual")
MAC_TERMS = ("global", "local")

__all__ = ["MAC_TERMS", "PIXEL_TERMS", "balance_table", "gradient_balance", "make_mac_optimizer", "warm_up_mac_net"]


def gradient_balance(loss: AsconLoss, denoised: torch.Tensor, ndct: torch.Tensor, *, seed: int = 0) -> dict[str, float]:
    """Values and gradient norms of the denoiser loss's terms at ``denoised``.

    Returns a flat dict: ``<term>`` (unweighted value), ``<term>_grad`` (L2
    norm of ``d(w_term L_term)/dY'``) for every active term, ``pixel_grad``
    and ``mac_grad`` (norm of the summed gradient of each group) and
    ``mac_over_pixel`` (their ratio; ``nan`` without an active pixel term).
    The same samples (``seed``) are used in every term.
    """
    grads = term_gradients(loss, denoised, ndct, seed=seed)
    with torch.no_grad():
        values = loss.terms(denoised, ndct, [n for n in TERMS if loss.weights[n] > 0],
                            generator=torch.Generator(device=denoised.device).manual_seed(seed)).as_dict()
    row: dict[str, float] = {}
    for name in TERMS:
        if name in grads:
            row[name] = values[name]
            row[f"{name}_grad"] = float(grads[name].norm())
    pixel = sum((grads[n] for n in PIXEL_TERMS if n in grads), torch.zeros_like(denoised))
    mac = sum((grads[n] for n in MAC_TERMS if n in grads), torch.zeros_like(denoised))
    row["pixel_grad"], row["mac_grad"] = float(pixel.norm()), float(mac.norm())
    row["mac_over_pixel"] = row["mac_grad"] / row["pixel_grad"] if row["pixel_grad"] > 0 else float("nan")
    return row


def make_mac_optimizer(preset: str, params) -> torch.optim.Optimizer:
    """MAC-Net's optimiser for a preset (:data:`~ldct_nb.losses.ascon_loss.MAC_OPTIMIZERS`)."""
    if preset not in MAC_OPTIMIZERS:
        raise ParameterError(f"preset must be one of {tuple(MAC_OPTIMIZERS)}, got {preset!r}")
    cfg = dict(MAC_OPTIMIZERS[preset])
    name = cfg.pop("name")
    return {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}[name](params, **cfg)


def warm_up_mac_net(
    loss: AsconLoss, denoised: torch.Tensor, ndct: torch.Tensor, steps: int, *, preset: str = "paper", seed: int = 0
) -> list[float]:
    """``steps`` MAC-Net steps on (``denoised``, ``ndct``): the MAC loss on the
    detached image, the preset's optimiser on the online parameters, then the
    EMA update of the target (the first half of ASCON's alternating iteration).
    Returns the MAC loss before each step."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ParameterError(f"steps must be an int >= 0, got {steps!r}")
    if loss.mac_net is None:
        raise ParameterError("warm_up_mac_net needs a loss with a MAC-Net")
    opt = make_mac_optimizer(preset, list(loss.mac_net.online_parameters()))
    gen = torch.Generator(device=denoised.device).manual_seed(seed)
    history = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        out = loss.mac_loss(denoised, ndct, generator=gen)
        out.total.backward()
        opt.step()
        loss.update_target()
        history.append(float(out.total.detach()))
    return history


def balance_table(
    ndct: torch.Tensor,
    denoised: Mapping[str, torch.Tensor],
    *,
    presets: Sequence[str] = ("paper", "official"),
    mac_width: float = 1.0,
    warmup_steps: int = 10,
    sampling: str = "mayo2016",
    seed: int = 0,
    **loss_overrides,
):
    """The gradient-balance grid: for each preset and each (label -> image) of
    ``denoised``, :func:`gradient_balance` at MAC-Net's initialisation and after
    ``warmup_steps`` MAC-Net steps on that image (a fresh MAC-Net, seeded with
    ``seed``, for every preset and image). Returns a pandas DataFrame, one row
    per (preset, image, stage)."""
    import pandas as pd

    if not denoised:
        raise ParameterError("denoised must map at least one label to an image")
    rows = []
    for preset in presets:
        for label, image in denoised.items():
            torch.manual_seed(seed)
            net = build_mac_net(mac_width).to(ndct.device).train()
            loss = ascon_loss(preset, sampling=sampling, mac_net=net, **loss_overrides)
            stages = [("init", 0)] + ([(f"after {warmup_steps} MAC-Net steps", warmup_steps)] if warmup_steps else [])
            done = 0
            for stage, steps in stages:
                warm_up_mac_net(loss, image, ndct, steps - done, preset=preset, seed=seed)
                done = steps
                rows.append({"preset": preset, "image": label, "stage": stage,
                             **gradient_balance(loss, image, ndct, seed=seed)})
            del net, loss
    return pd.DataFrame(rows)
