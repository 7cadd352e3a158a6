"""A few optimisation steps of a method on one fixed batch: for demonstrations
(notebook 02 fits ESAU-Net on a phantom pair before showing its attention maps)
and tests. Not the training loop: no data set, validation, checkpoints or resume.
"""
from __future__ import annotations

import torch

from ldct_nb.errors import ParameterError
from ldct_nb.train.recipes import MethodSpec


def fit_steps(spec: MethodSpec, ldct: torch.Tensor, ndct: torch.Tensor, steps: int, *,
              progress: bool = False) -> list[float]:
    """``steps`` optimisation steps of ``spec`` (a :class:`~ldct_nb.train.recipes.MethodSpec`)
    on one fixed batch: for methods with a critic, ``spec.n_critic`` critic steps on the
    generator's detached output, then one generator step. Returns the generator's total
    loss (``parts["total"]``) per step."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ParameterError(f"steps must be an int >= 0, got {steps!r}")
    g_opt, c_opt = spec.make_optimizers()
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"fitting {spec.name}")
    history = []
    for _ in it:
        if spec.critic is not None:
            for _ in range(spec.n_critic):
                with torch.no_grad():
                    out = spec.generator(ldct)
                c_loss, _ = spec.critic_loss(ldct, ndct, out)
                c_opt.zero_grad(set_to_none=True)
                c_loss.backward()
                c_opt.step()
        loss, parts, _ = spec.generator_loss(ldct, ndct)
        g_opt.zero_grad(set_to_none=True)
        loss.backward()
        g_opt.step()
        history.append(parts["total"])
    return history


__all__ = ["fit_steps"]
