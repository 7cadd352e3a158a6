"""The baseline denoisers of ASCON Table 1 and LIDnet section 4.1: each
method's generator and, where the method has one, its critic /
discriminator. Networks only: their losses and optimisers (the training
recipes) are in :mod:`ldct_nb.train.methods`.

Every module exposes ``PRESETS`` and ``build_generator(preset, **kwargs)``;
the registry in :mod:`ldct_nb.models` dispatches to them.
"""
from __future__ import annotations

from ldct_nb.models.baselines import cncl, cpce, du_gan, edcnn, map_nn, red_cnn, res_hlf, ssms, unet, wgan_vgg

MODULES = {
    "unet": unet,
    "red_cnn": red_cnn,
    "edcnn": edcnn,
    "wgan_vgg": wgan_vgg,
    "du_gan": du_gan,
    "cncl": cncl,
    "cpce": cpce,
    "map_nn": map_nn,
    "ssms": ssms,
    "res_hlf": res_hlf,
}
"""Registered name -> module."""

__all__ = ["MODULES"]
