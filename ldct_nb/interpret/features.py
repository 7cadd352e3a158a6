"""Feature maps of a denoiser, taken with forward hooks (ASCON sec. 3.2, "Visualization of
Inherent Semantics": "the features before the last layer").

The *output layer* of a denoiser is the last layer with weights that its forward pass
runs (:func:`output_layer`, found by a probe pass with hooks on every layer, so it holds
for every registered model and for any other network): ESAU-Net's ``head.2``, U-Net's
``out``, RED-CNN's ``deconv.4``, WGAN-VGG's last convolution... The *features before
the last layer* are that layer's input, i.e. what the module feeding it produces after
any functional activation (a forward pre-hook on the output layer reads it). Any other
layer can be asked for by its name in ``model.named_modules()``; then its output is
taken (or its input, with ``capture="input"``).

Feature maps are put on the image grid (:func:`align_to_image`): a map larger than the
image (networks that pad their input at the bottom / right to a multiple of 2**levels)
is cropped, a map a few pixels smaller (unpadded convolutions: RED-CNN, CPCE) is
edge-padded equally on both sides, and a down-sampled map (an encoder layer) is
resized bilinearly.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError

__all__ = ["CAPTURES", "FeatureHook", "align_to_image", "default_layer", "extract_features", "output_layer", "registered_layers"]

CAPTURES = ("input", "output")
PROBE_SIZE = 64
"""Side (pixels) of the probe image of :func:`output_layer` (every registered model accepts it)."""


def _check_model(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ParameterError(f"model must be a torch.nn.Module (a denoiser), got {type(model).__name__}")
    return model


def _has_own_weights(module: nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


def _probe_image(model: nn.Module, size: int = PROBE_SIZE) -> torch.Tensor:
    """A smooth 1 x 1 x size x size ramp on the [0, 1] scale, on the model's device."""
    try:
        p = next(model.parameters())
        device, dtype = p.device, p.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    ramp = torch.linspace(0.2, 0.6, size, device=device, dtype=dtype)
    return (ramp[:, None] + ramp[None, :])[None, None] / 2


def output_layer(model: nn.Module, example: torch.Tensor | None = None) -> str:
    """Name (in ``model.named_modules()``) of the model's output layer: the last module with
    weights of its own that a forward pass on ``example`` (default: a 64 x 64 ramp) runs.

    Refused: a model without any layer with weights, a forward pass that fails on the
    example (the message says so and suggests passing one the model accepts). The probe
    runs in eval mode (restored after): no BatchNorm statistic changes."""
    return _probe(model, example)[0]


def _probe(model: nn.Module, example: torch.Tensor | None = None) -> tuple[str, torch.Tensor]:
    """(output layer name, its input on the probe) from one forward pass."""
    model = _check_model(model)
    names = {m: n for n, m in model.named_modules() if _has_own_weights(m)}
    if not names:
        raise ParameterError(f"{type(model).__name__} has no layer with weights: no output layer to hook")
    last: list = [None, None]

    def keep(mod, args):
        last[0], last[1] = names[mod], args[0] if args else None

    handles = [m.register_forward_pre_hook(keep) for m in names]
    x = _probe_image(model) if example is None else example
    try:
        with eval_mode(model), torch.no_grad():
            model(x)
    except Exception as exc:  # noqa: BLE001 - turned into a message naming the model and the probe
        raise ParameterError(
            f"the probe forward pass of {type(model).__name__} on an input of shape {tuple(x.shape)} failed "
            f"({type(exc).__name__}: {exc}); pass an example input the model accepts"
        ) from exc
    finally:
        for h in handles:
            h.remove()
    if last[0] is None:
        raise ParameterError(f"the forward pass of {type(model).__name__} ran none of its layers with weights")
    return last[0], last[1]


def default_layer(model: nn.Module) -> tuple[str, str]:
    """The default feature layer as ``(layer name, capture)``: the input of the output layer
    (ASCON's "features before the last layer")."""
    return output_layer(model), "input"


def _module(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(model.named_modules())
    if not isinstance(layer, str) or layer not in modules or layer == "":
        close = difflib.get_close_matches(str(layer), [n for n in modules if n], n=5)
        hint = f"; close names: {close}" if close else ""
        raise ParameterError(
            f"layer {layer!r} is not a module of {type(model).__name__} (a name from model.named_modules(), "
            f"e.g. {[n for n in modules if n][-3:]}){hint}"
        )
    return modules[layer]


class FeatureHook:
    """A forward hook that keeps the input or output of one module (detached).

    Use it as a context manager; :attr:`value` holds the tensor of the latest call."""

    def __init__(self, model: nn.Module, layer: str, capture: str = "output"):
        if capture not in CAPTURES:
            raise ParameterError(f"capture must be one of {CAPTURES}, got {capture!r}")
        self.model, self.layer, self.capture = _check_model(model), layer, capture
        self.module = _module(model, layer)
        self.value: torch.Tensor | None = None
        self.calls = 0
        self._handle = None

    def _keep(self, tensor) -> None:
        if isinstance(tensor, (tuple, list)):
            tensor = tensor[0] if tensor else None
        if not isinstance(tensor, torch.Tensor):
            raise ParameterError(f"the {self.capture} of layer {self.layer!r} is not a tensor ({type(tensor).__name__})")
        self.value = tensor.detach()
        self.calls += 1

    def __enter__(self) -> FeatureHook:
        if self.capture == "input":
            self._handle = self.module.register_forward_pre_hook(lambda mod, args: self._keep(args))
        else:
            self._handle = self.module.register_forward_hook(lambda mod, args, out: self._keep(out))
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def __repr__(self) -> str:
        return f"FeatureHook({type(self.model).__name__}.{self.layer}, {self.capture}, calls={self.calls})"


def align_to_image(features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Put an N x C x h x w feature map on the H x W image grid (see the module docstring)."""
    h, w = features.shape[-2:]
    H, W = size
    if (h, w) == (H, W):
        return features
    if h >= H and w >= W:  # the network padded its input at the bottom / right
        return features[..., :H, :W]
    dh, dw = H - h, W - w
    if 2 * h > H and 2 * w > W and dh >= 0 and dw >= 0 and dh % 2 == 0 and dw % 2 == 0:
        # unpadded convolutions: centred, so pad equally on both sides
        return F.pad(features, (dw // 2, dw // 2, dh // 2, dh // 2), mode="replicate")
    return F.interpolate(features, size=(H, W), mode="bilinear", align_corners=False)


def extract_features(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    *,
    layer: str | None = None,
    capture: str | None = None,
    batch_size: int = 4,
) -> torch.Tensor:
    """Feature maps of ``model`` on ``images`` (N x 1 x H x W or H x W, on the model's input
    scale, [0, 1] for this project's denoisers), as an N x C x H x W float32 CPU tensor on the
    image grid.

    The model runs in eval mode (restored after), so BatchNorm uses its running statistics
    and no statistic changes. ``layer=None`` takes the input of the output layer (:func:`default_layer`); a module
    name takes that module's ``capture`` ("output" by default). Images go through in
    batches of ``batch_size`` on the model's device."""
    model = _check_model(model)
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    if not isinstance(images, torch.Tensor):
        raise ParameterError(f"images must be a tensor or numpy array, got {type(images).__name__}")
    if images.ndim == 2:
        images = images[None, None]
    if images.ndim != 4 or images.shape[1] != 1 or images.shape[0] == 0:
        raise ParameterError(f"images must be N x 1 x H x W (or one H x W image), got shape {tuple(images.shape)}")
    if not torch.isfinite(images).all():
        raise ParameterError("images hold NaN or infinite values")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if layer is None:
        layer, default_capture = output_layer(model, _first(images, model)), "input"
    else:
        default_capture = "output"
    capture = default_capture if capture is None else capture
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    out = []
    with eval_mode(model), FeatureHook(model, layer, capture) as hook, torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            batch = images[start:start + batch_size].to(device=device, dtype=torch.float32)
            hook.value = None
            model(batch)
            if hook.value is None:
                raise ParameterError(f"layer {layer!r} of {type(model).__name__} did not run in the forward pass")
            feats = hook.value
            if feats.ndim != 4:
                raise ParameterError(
                    f"the {capture} of layer {layer!r} has shape {tuple(feats.shape)}; a feature map N x C x H x W is needed"
                )
            out.append(align_to_image(feats.float(), images.shape[-2:]).cpu())
    return torch.cat(out)


def _first(images: torch.Tensor, model: nn.Module) -> torch.Tensor:
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    return images[:1].to(device=device, dtype=torch.float32)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode inside the block and restore its mode after."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def registered_layers(probe_size: int = 32, threads: int | None = 1) -> list[dict]:
    """For every registered denoiser (default preset and widths): its output layer, the
    layer's type and the number of feature channels that feed it (what :func:`default_layer`
    hooks). Built and probed on a ``probe_size`` square ramp; weights are random, which does
    not change which layer is last. ``threads``: CPU threads
    (:func:`~ldct_nb.interpret.clusters.limit_threads`)."""
    from ldct_nb.interpret.clusters import limit_threads
    from ldct_nb.models import available, build

    if isinstance(probe_size, bool) or not isinstance(probe_size, int) or probe_size < 21:
        raise ParameterError(f"probe_size must be an int >= 21 (RED-CNN's smallest input), got {probe_size!r}")
    rows = []
    with limit_threads(threads):
        for name in available():
            net = build(name)
            layer, feats = _probe(net, _probe_image(net, probe_size))
            module = dict(net.named_modules())[layer]
            rows.append({"model": name, "output layer": layer, "type": type(module).__name__,
                         "feature channels": int(feats.shape[1])})
    return rows
