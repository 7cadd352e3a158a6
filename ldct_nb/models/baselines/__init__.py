"""The baseline denoisers of ASCON Table 1 and LIDnet section 4.1, each with
its generator, its critic / discriminator where the method has one, and its
loss recipe (:class:`~ldct_nb.models.baselines.common.MethodSpec`).

Every module exposes ``PRESETS``, ``build_generator(preset, **kwargs)`` and
``build_method(preset, feature_extractor=None, **kwargs)``; the registry in
:mod:`ldct_nb.models` dispatches to them.
"""
from __future__ import annotations

from ldct_nb.models.baselines import cncl, cpce, du_gan, edcnn, map_nn, red_cnn, res_hlf, ssms, unet, wgan_vgg
from ldct_nb.models.baselines.common import MethodSpec, OptimSettings, PerceptualLoss

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

PERCEPTUAL = ("edcnn", "wgan_vgg", "cpce")
"""Methods whose ``paper`` recipe needs a perceptual feature extractor (MAP-NN's ``lidnet`` preset too)."""

__all__ = ["MODULES", "PERCEPTUAL", "MethodSpec", "OptimSettings", "PerceptualLoss"]
