"""Training: one loop for every method (:func:`train`), ASCON's alternating
iteration, the methods' recipes and the grid of the papers' tables.

Entry points::

    train(config, run_dir) -> TrainResult         # one run; config: TrainConfig, dict or YAML path
    python -m ldct_nb.train CONFIG.yaml [--run-dir DIR]   # the same from the shell (torchrun too)
    load_denoiser(path) -> nn.Module              # a trained denoiser in eval mode
    make_step(method, preset="paper", **model_kwargs)  # one optimisation step, for benchmarks and tests

The config format is documented in :mod:`ldct_nb.train.config`; the loop in
:mod:`ldct_nb.train.loop`; ASCON's iteration in :mod:`ldct_nb.train.ascon`; the
methods' recipes in :mod:`ldct_nb.train.methods`.
"""
from __future__ import annotations

from ldct_nb.train.config import TrainConfig, load_config
from ldct_nb.train.loop import TrainResult, checkpoint_dir, load_denoiser, make_step, train, validate

__all__ = ["TrainConfig", "TrainResult", "checkpoint_dir", "load_config", "load_denoiser", "make_step", "train", "validate"]
