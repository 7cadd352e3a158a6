"""Feature extractors for the baselines' perceptual losses.

ImageNet VGG weights cannot be downloaded here, and an untrained network is
not a perceptual loss. Two honest options:

* :class:`VGGFeatures`: torchvision's VGG-19 built with ``weights=None`` and
  loaded from a weights file *you* supply (``weights_path``, read with
  ``torch.load(weights_only=True)``). CT slices have one channel: the input is
  repeated to three channels and scaled with the ImageNet mean and std.
* :class:`NDCTFeatureNet`: a small convolutional autoencoder trained in-project
  on NDCT patches to reconstruct its input (self-supervised, after SACNN's
  self-supervised perceptual network, Li et al. 2020, cited by LIDnet); its
  encoder's feature maps at three scales are the perceptual features.
  :func:`ldct_nb.train.feature_net.train_feature_net` trains it on a cached
  split; :func:`save_feature_net` / :func:`load_feature_net` store it atomically.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError
from ldct_nb.paths import atomic_write

__all__ = ["VGGFeatures", "NDCTFeatureNet", "save_feature_net", "load_feature_net", "VGG19_LAYERS"]

VGG19_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_4": 17, "relu4_4": 26, "relu5_4": 35}
"""Index (in ``vgg19().features``) of the ReLU after each named conv layer."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)



def _load_weights(path: Path, label: str = ""):
    """``torch.load(path, weights_only=True)`` on the CPU; a ParameterError naming the file if it fails."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the path named
        raise ParameterError(f"{label}{str(path)!r} could not be read with torch.load(weights_only=True): {exc}") from exc

class VGGFeatures(nn.Module):
    """VGG-19 features from user-supplied ImageNet weights.

    ``weights_path``: a ``state_dict`` of ``torchvision.models.vgg19`` (the
    ``features.*`` keys are enough) saved with ``torch.save``. ``layers``:
    names from :data:`VGG19_LAYERS`; WGAN-VGG uses ``("relu5_4",)``. Input:
    N x 1 x H x W on [0, 1], repeated to 3 channels and ImageNet-normalised.
    """

    def __init__(self, weights_path: str | os.PathLike[str], layers: tuple[str, ...] = ("relu5_4",)):
        super().__init__()
        from torchvision.models import vgg19

        bad = [n for n in layers if n not in VGG19_LAYERS]
        if not layers or bad:
            raise ParameterError(f"layers must be names from {list(VGG19_LAYERS)}, got {layers!r}")
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise ParameterError(f"weights_path {str(path)!r} is not a file: supply ImageNet VGG-19 weights saved with torch.save")
        state = _load_weights(path, "weights_path ")
        if not isinstance(state, dict):
            raise ParameterError(f"weights_path {str(path)!r} holds a {type(state).__name__}, expected a VGG-19 state_dict")
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        depth = max(VGG19_LAYERS[n] for n in layers) + 1
        features = vgg19(weights=None).features[:depth]
        expected = {k for k in features.state_dict()}
        missing = sorted(expected - set(state))
        if missing:
            raise ParameterError(f"weights_path {str(path)!r} lacks VGG-19 feature weights {missing[:4]}...")
        try:
            features.load_state_dict({k: state[k] for k in expected})
        except RuntimeError as exc:
            raise ParameterError(f"weights_path {str(path)!r} does not fit VGG-19: {exc}") from exc
        self.features = features.eval().requires_grad_(False)
        self.layers = tuple(layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x.repeat(1, 3, 1, 1) - self.mean) / self.std
        wanted = {VGG19_LAYERS[n] for n in self.layers}
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in wanted:
                out.append(h)
        return out


class NDCTFeatureNet(nn.Module):
    """A conv autoencoder whose encoder gives perceptual features.

    Encoder: three stages of (3x3 conv, ReLU) x 2 with widths ``width * (1, 2,
    4)``, 2x2 max-pooling between stages; decoder mirrors it with bilinear
    up-sampling. ``forward`` returns the three stage outputs (the features);
    :meth:`reconstruct` returns the decoded image (the training target is the
    input itself).
    """

    def __init__(self, width: int = 32):
        super().__init__()
        ws = [width, 2 * width, 4 * width]
        self.width = width

        def stage(a, b):
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(b, b, 3, padding=1), nn.ReLU(inplace=True))

        self.encoder = nn.ModuleList([stage(1, ws[0]), stage(ws[0], ws[1]), stage(ws[1], ws[2])])
        self.decoder = nn.ModuleList([stage(ws[2], ws[1]), stage(ws[1], ws[0])])
        self.out = nn.Conv2d(ws[0], 1, 3, padding=1)
        self.trained_steps = 0

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        h = x
        for i, st in enumerate(self.encoder):
            h = st(h if i == 0 else F.max_pool2d(h, 2))
            feats.append(h)
        return feats

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        h = self.forward(x)[-1]
        for st in self.decoder:
            h = st(F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False))
        return self.out(h)

    def extra_repr(self) -> str:
        return f"width={self.width}, trained_steps={self.trained_steps}"


def save_feature_net(net: NDCTFeatureNet, path: str | os.PathLike[str]) -> Path:
    """Save the network's weights and width atomically: a temporary file in the same
    folder, ``fsync``, :func:`os.replace`, ``fsync`` of the folder; ``path`` holds at
    every instant either its previous content or the complete new file."""
    blob = {"width": net.width, "trained_steps": net.trained_steps, "state_dict": net.state_dict()}
    return atomic_write(path, lambda fh: torch.save(blob, fh))


def load_feature_net(path: str | os.PathLike[str]) -> NDCTFeatureNet:
    """Load a network saved by :func:`save_feature_net` (``weights_only=True``); refuses untrained ones."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"feature network file {str(path)!r} does not exist: train one with "
                             "ldct_nb.train.feature_net.train_feature_net")
    blob = _load_weights(path)
    if not isinstance(blob, dict) or "state_dict" not in blob or "width" not in blob:
        raise ParameterError(f"{str(path)!r} is not a file written by save_feature_net")
    if int(blob.get("trained_steps", 0)) < 1:
        raise ParameterError(f"{str(path)!r} holds an untrained feature network, which is no perceptual loss")
    net = NDCTFeatureNet(int(blob["width"]))
    try:
        net.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        raise ParameterError(f"{str(path)!r} does not hold NDCTFeatureNet weights of width {blob['width']}: {exc}") from exc
    net.trained_steps = int(blob["trained_steps"])
    return net.eval()
