"""Every method's training recipe, by name: the networks of :mod:`ldct_nb.models`
with the losses (:mod:`ldct_nb.losses`) and optimiser settings their papers give.

The registry::

    build_method(name, preset="paper", **kwargs) -> MethodSpec   # generator, critic, losses, optimisers
    METHODS                                                      # the registered names

Each method has a module here (``unet``, ``red_cnn``, ``edcnn``, ``wgan_vgg``,
``du_gan``, ``cncl``, ``cpce``, ``map_nn``, ``ssms``, ``res_hlf``,
``esau_net``) with ``build_method(preset, feature_extractor=None, **kwargs)``,
its loss weights and optimisers, and the paper they come from. A method's
presets are its network's (:func:`ldct_nb.models.presets`). Methods with a
perceptual loss (:data:`PERCEPTUAL`) need ``feature_extractor=`` (see
:mod:`ldct_nb.losses.perceptual`); other keywords go to the generator or name
loss weights documented in each module.
"""
from __future__ import annotations

from types import ModuleType

from ldct_nb.errors import ParameterError
from ldct_nb.models import presets
from ldct_nb.train.methods import (
    cncl, cpce, du_gan, edcnn, esau_net, map_nn, red_cnn, res_hlf, ssms, unet, wgan_vgg,
)
from ldct_nb.train.recipes import MethodSpec, OptimSettings

MODULES: dict[str, ModuleType] = {
    "esau_net": esau_net,
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
"""Registered method name -> its recipe module (the same names as :func:`ldct_nb.models.available`)."""

METHODS: tuple[str, ...] = tuple(MODULES)
"""Every registered method name."""

PERCEPTUAL = ("edcnn", "wgan_vgg", "cpce")
"""Methods whose ``paper`` recipe needs a perceptual feature extractor (MAP-NN's ``lidnet`` preset too)."""


def build_method(name: str, preset: str = "paper", **kwargs) -> MethodSpec:
    """The full training recipe of ``name``: generator, critic (or None), losses, optimisers.

    Methods with a perceptual loss need ``feature_extractor=`` (an
    :class:`~ldct_nb.models.feature_net.VGGFeatures` with weights you supply, or
    an NDCT feature network from :func:`ldct_nb.train.feature_net.train_feature_net`);
    other keywords go to the generator or name loss weights documented in each
    method's module.
    """
    if not isinstance(name, str) or name not in MODULES:
        raise ParameterError(f"unknown method {name!r}; valid methods: {list(METHODS)}")
    valid = presets(name)
    if preset not in valid:
        raise ParameterError(f"unknown preset {preset!r} for method {name!r}; valid presets: {valid}")
    try:
        return MODULES[name].build_method(preset, **kwargs)
    except TypeError as exc:
        raise ParameterError(f"bad keyword for method {name!r}: {exc}") from exc


__all__ = ["METHODS", "MODULES", "PERCEPTUAL", "MethodSpec", "OptimSettings", "build_method"]
