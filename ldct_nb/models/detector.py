"""LIDnet's lesion detector: torchvision Faster R-CNN for one-channel CT.

LIDnet (Chen et al., ACM MM 2021, sec. 3 and 4.2) puts a Faster R-CNN with a
ResNet50 backbone behind the denoiser: its RPN proposes the regions of the ROI
perceptual loss (eqs. 2-4) and its losses are the detection loss (eq. 6). No
code of LIDnet is public; this module is the detector as this project builds
it, every choice a keyword:

* ``build_detector(backbone, num_classes, image_size)``: ``resnet50_fpn`` (the
  paper's ResNet50, with torchvision's FPN), ``resnet18_fpn`` and
  ``mobilenet_v3_fpn`` (lighter, for CPU runs). Built with no download
  (``weights=None, weights_backbone=None``): the paper starts from an ImageNet
  ResNet50, which cannot be fetched here; pass ``weights=`` (a file) to start
  from trained weights. BatchNorm layers are ordinary ``nn.BatchNorm2d``
  (torchvision freezes them only when it loads ImageNet weights), so they
  have running statistics that a frozen detector must keep (LIDnet T2).
* One-channel input, explicitly: the first convolution of the backbone takes
  one channel (it is replaced, not the image repeated three times).
* CT intensity normalisation: inputs are on the [0, 1] scale of the cache's HU
  window ``hu_window``; the transform maps them to ``(HU - mean_hu) / std_hu``
  (default ``HU / 1000``: air -1, water 0, dense bone about 1-2).
* ``min_size = max_size = image_size``: the transform does not rescale (at
  512 px torchvision would otherwise resize to 800).
* Anchors scale with the image: one size per FPN level, 8 x its stride x
  ``image_size / 512`` (torchvision's 32 ... 512 at the paper's 512 px); the
  MobileNet FPN (strides 8, 16, 32, 64) has two sizes per level, 4 and 8 x its
  stride x ``image_size / 512``; three aspect ratios (0.5, 1, 2).

Functions used by the losses and notebooks: :func:`backbone_features` (one FPN
level or all), :func:`top_proposals` (the K best RPN proposals with their
objectness, LIDnet eqs. 2-3, in input-image pixel coordinates),
:func:`proposals_from_features` (the same from features already computed),
:func:`load_detector` (a trained detector from a checkpoint) and
:func:`detector_record` (what a checkpoint stores to rebuild it).
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models import mobilenet_v3_large, resnet18, resnet50
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from ldct_nb.errors import ParameterError
from ldct_nb.validate import check_image_batch, check_int

__all__ = [
    "BACKBONES",
    "DetectorConfig",
    "LesionDetector",
    "backbone_features",
    "build_detector",
    "detector_record",
    "feature_levels",
    "load_detector",
    "proposals_from_features",
    "top_proposals",
    "transform_images",
]

BACKBONES = ("resnet50_fpn", "resnet18_fpn", "mobilenet_v3_fpn")
"""Backbones :func:`build_detector` knows: the paper's ResNet50 and two lighter ones."""

_STRIDES = {"resnet50_fpn": (4, 8, 16, 32, 64), "resnet18_fpn": (4, 8, 16, 32, 64), "mobilenet_v3_fpn": (8, 16, 32, 64)}
_MOBILENET_LAYERS = [2, 3, 5]  # MobileNetV3-Large stages at strides 8, 16, 32 (+ the FPN's pooled level at 64)


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that decides the detector's architecture (stored in checkpoints)."""

    backbone: str = "resnet50_fpn"
    num_classes: int = 2
    image_size: int = 512
    hu_window: tuple[float, float] = (-1000.0, 2000.0)
    mean_hu: float = 0.0
    std_hu: float = 1000.0
    anchor_scale: float | None = None
    box_score_thresh: float = 0.05
    box_detections_per_img: int = 100
    fpn_channels: int = 256
    representation_size: int = 1024
    box_batch_size_per_image: int = 512
    proposals_per_image: int | None = None

    @property
    def scale(self) -> float:
        """Anchor scale: ``anchor_scale`` or ``image_size / 512``."""
        return float(self.anchor_scale) if self.anchor_scale is not None else self.image_size / 512.0

    def anchor_sizes(self) -> tuple[tuple[int, ...], ...]:
        """Anchor sizes (pixels) per FPN level (see the module docstring)."""
        mult = (4, 8) if self.backbone == "mobilenet_v3_fpn" else (8,)
        return tuple(tuple(max(2, int(round(m * s * self.scale))) for m in mult) for s in _STRIDES[self.backbone])

    def image_mean_std(self) -> tuple[float, float]:
        """``image_mean`` / ``image_std`` on the [0, 1] scale that give ``(HU - mean_hu) / std_hu``."""
        lo, hi = self.hu_window
        return (self.mean_hu - lo) / (hi - lo), self.std_hu / (hi - lo)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hu_window"] = [float(v) for v in self.hu_window]
        return d


def _check_config(c: DetectorConfig) -> DetectorConfig:
    if c.backbone not in BACKBONES:
        raise ParameterError(f"backbone must be one of {list(BACKBONES)}, got {c.backbone!r}")
    check_int(c.num_classes, "num_classes", minimum=2)
    check_int(c.image_size, "image_size", minimum=32)
    check_int(c.box_detections_per_img, "box_detections_per_img", minimum=1)
    check_int(c.fpn_channels, "fpn_channels", minimum=8)
    check_int(c.representation_size, "representation_size", minimum=8)
    check_int(c.box_batch_size_per_image, "box_batch_size_per_image", minimum=8)
    if c.proposals_per_image is not None:
        check_int(c.proposals_per_image, "proposals_per_image", minimum=8)
    try:
        lo, hi = (float(v) for v in c.hu_window)
    except (TypeError, ValueError):
        raise ParameterError(f"hu_window must be two numbers (low, high) in HU, got {c.hu_window!r}") from None
    if not hi > lo:
        raise ParameterError(f"hu_window must have high > low, got {c.hu_window!r}")
    for name in ("mean_hu", "std_hu", "box_score_thresh"):
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ParameterError(f"{name} must be a finite number, got {v!r}")
    if not c.std_hu > 0:
        raise ParameterError(f"std_hu must be > 0, got {c.std_hu!r}")
    if not 0 <= c.box_score_thresh < 1:
        raise ParameterError(f"box_score_thresh must be in [0, 1), got {c.box_score_thresh!r}")
    if c.anchor_scale is not None and (isinstance(c.anchor_scale, bool) or not isinstance(c.anchor_scale, (int, float))
                                       or not c.anchor_scale > 0):
        raise ParameterError(f"anchor_scale must be a number > 0 or None, got {c.anchor_scale!r}")
    return c


def _one_channel_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """The same convolution taking one input channel (He initialisation, fan-out, as torchvision's ResNet / MobileNet)."""
    new = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None)
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    return new


def _backbone(name: str, fpn_channels: int) -> BackboneWithFPN:
    """ResNet or MobileNetV3-Large (random init, ``nn.BatchNorm2d``, every layer trainable) with a
    one-channel first convolution and a ``fpn_channels``-wide FPN (torchvision's layout: ResNet
    layer1-4 at strides 4-32; MobileNet stages at strides 8, 16, 32; a max-pooled extra level)."""
    if name in ("resnet50_fpn", "resnet18_fpn"):
        net = (resnet50 if name == "resnet50_fpn" else resnet18)(weights=None, norm_layer=nn.BatchNorm2d)
        net.conv1 = _one_channel_conv(net.conv1)
        width = net.inplanes // 8  # 64 (ResNet18) or 256 (ResNet50) channels out of layer1
        return BackboneWithFPN(net, {f"layer{k}": str(k - 1) for k in (1, 2, 3, 4)}, [width * 2**i for i in range(4)],
                               fpn_channels, extra_blocks=LastLevelMaxPool())
    features = mobilenet_v3_large(weights=None, norm_layer=nn.BatchNorm2d).features
    features[0][0] = _one_channel_conv(features[0][0])
    stages = [0] + [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)] + [len(features) - 1]
    chosen = [stages[i] for i in _MOBILENET_LAYERS]
    return BackboneWithFPN(features, {str(k): str(v) for v, k in enumerate(chosen)},
                           [features[k].out_channels for k in chosen], fpn_channels, extra_blocks=LastLevelMaxPool())


class LesionDetector(FasterRCNN):
    """torchvision's :class:`~torchvision.models.detection.FasterRCNN` for one-channel CT,
    built from a :class:`DetectorConfig` (kept as ``.config``). Its forward is
    torchvision's: ``detector(images, targets)`` returns the loss dict in training
    mode, detections in eval mode; images are 1 x H x W tensors on the [0, 1] scale."""

    def __init__(self, config: DetectorConfig):
        config = _check_config(config)
        mean, std = config.image_mean_std()
        sizes = config.anchor_sizes()
        anchors = AnchorGenerator(sizes=sizes, aspect_ratios=((0.5, 1.0, 2.0),) * len(sizes))
        n = config.proposals_per_image
        rpn_top_n = {} if n is None else dict(rpn_pre_nms_top_n_train=n, rpn_pre_nms_top_n_test=n,
                                              rpn_post_nms_top_n_train=n, rpn_post_nms_top_n_test=n)
        size = config.representation_size
        super().__init__(
            _backbone(config.backbone, config.fpn_channels), num_classes=None, min_size=config.image_size,
            max_size=config.image_size, image_mean=[mean], image_std=[std], rpn_anchor_generator=anchors,
            box_head=TwoMLPHead(config.fpn_channels * 7 * 7, size),
            box_predictor=FastRCNNPredictor(size, config.num_classes),
            box_score_thresh=config.box_score_thresh, box_detections_per_img=config.box_detections_per_img,
            box_batch_size_per_image=config.box_batch_size_per_image, **rpn_top_n,
        )
        self.config = config

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        c = self.config
        return (f"LesionDetector({c.backbone}, {c.num_classes} classes, {c.image_size} px, anchors "
                f"{[list(s) for s in c.anchor_sizes()]}, {n / 1e6:.1f} M parameters)")


def build_detector(
    backbone: str = "resnet50_fpn",
    num_classes: int = 2,
    image_size: int = 512,
    *,
    hu_window: Sequence[float] = (-1000.0, 2000.0),
    mean_hu: float = 0.0,
    std_hu: float = 1000.0,
    anchor_scale: float | None = None,
    box_score_thresh: float = 0.05,
    box_detections_per_img: int = 100,
    fpn_channels: int = 256,
    representation_size: int = 1024,
    box_batch_size_per_image: int = 512,
    proposals_per_image: int | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> LesionDetector:
    """A Faster R-CNN for one-channel CT (see the module docstring), in training mode.

    ``num_classes`` counts the background (2: background and lesion).
    torchvision's sizes are the defaults (FPN 256 channels, box head 1024,
    512 sampled ROIs per image, 2000 / 1000 proposals in training / eval);
    ``fpn_channels``, ``representation_size``, ``box_batch_size_per_image`` and
    ``proposals_per_image`` (pre- and post-NMS, training and eval) make a
    detector light enough for a CPU.
    ``weights``: a file holding a state dict of this architecture (or a
    checkpoint with it under ``networks["detector"]``), read with
    ``torch.load(weights_only=True``); a missing or extra key, or a shape that
    differs, is refused naming it. Nothing is downloaded."""
    cfg = DetectorConfig(backbone, num_classes, image_size, tuple(hu_window), mean_hu, std_hu, anchor_scale,
                         box_score_thresh, box_detections_per_img, fpn_channels, representation_size,
                         box_batch_size_per_image, proposals_per_image)
    det = LesionDetector(cfg)
    if weights is not None:
        _load_weights(det, _read(weights).get("state", {}), str(weights))
    return det


def _read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A weights file: ``{"state": state_dict, "config": dict or None}``."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"detector weights file {str(p)!r} does not exist")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised naming the file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ParameterError(f"detector weights file {str(p)!r} cannot be read with torch.load(weights_only=True) "
                             f"({first})") from exc
    if not isinstance(blob, dict):
        raise ParameterError(f"detector weights file {str(p)!r} holds a {type(blob).__name__}, expected a state dict")
    if isinstance(blob.get("networks"), dict) and "detector" in blob["networks"]:
        return {"state": blob["networks"]["detector"], "config": blob.get("detector_config")}
    if blob and all(isinstance(v, torch.Tensor) for v in blob.values()):
        return {"state": blob, "config": None}
    raise ParameterError(f"detector weights file {str(p)!r} holds neither a state dict nor a checkpoint with "
                         "networks['detector']")


def _load_weights(det: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    own = det.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in own
             if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first {missing[:3]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (first {extra[:3]})")
        if wrong:
            parts.append(f"{len(wrong)} of another shape (first {wrong[:3]})")
        raise ParameterError(f"detector weights {where!r} do not fit a {det!r}: " + "; ".join(parts)
                             + ". Build the detector with the backbone, num_classes and image size it was trained with.")
    det.load_state_dict(state)


def detector_record(detector: LesionDetector) -> dict[str, Any]:
    """What a checkpoint stores (key ``detector_config``) so that :func:`load_detector` can rebuild it."""
    return {"detector_config": detector.config.to_dict()}


def load_detector(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> LesionDetector:
    """The detector of a checkpoint (written by :mod:`ldct_nb.train.lidnet`: its
    ``detector_config`` record and ``networks["detector"]``), in eval mode."""
    blob = _read(path)
    if not isinstance(blob.get("config"), dict):
        raise ParameterError(f"{str(path)!r} holds detector weights but no detector_config: build the detector with "
                             "build_detector(..., weights=path) instead")
    cfg = dict(blob["config"])
    cfg["hu_window"] = tuple(cfg.get("hu_window", (-1000.0, 2000.0)))
    try:
        det = LesionDetector(DetectorConfig(**cfg))
    except TypeError as exc:
        raise ParameterError(f"{str(path)!r}: detector_config has unknown keys ({exc})") from None
    _load_weights(det, blob["state"], str(path))
    return det.to(device).eval()


# ----------------------------------------------------------------------------- features and proposals


def _as_list(images, detector: nn.Module, check_range: bool = True) -> list[torch.Tensor]:
    value_range = (0.0, 1.0) if check_range else None
    if isinstance(images, (list, tuple)):
        if not images:
            raise ParameterError("images is an empty list, expected 1 x H x W tensors on the [0, 1] scale")
        for i, im in enumerate(images):
            check_image_batch(im[None] if isinstance(im, torch.Tensor) and im.ndim == 3 else im, f"images[{i}]",
                              like=detector, value_range=value_range)
        return list(images)
    check_image_batch(images, "images", like=detector, value_range=value_range)
    return list(images)


def transform_images(detector: LesionDetector, images, *, check_range: bool = True) -> tuple[ImageList, list[tuple[int, int]]]:
    """The detector's transform (normalisation, resize, batching) of ``images``
    (an N x 1 x H x W batch or a list of 1 x H x W tensors on [0, 1]); returns the
    :class:`ImageList` and the original (H, W) of each image. ``check_range=False``
    accepts values outside [0, 1] (a denoiser's raw output), still refusing NaN,
    multi-channel and wrongly typed input."""
    imgs = _as_list(images, detector, check_range)
    sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in imgs]
    image_list, _ = detector.transform(imgs)
    return image_list, sizes


def feature_levels(detector: LesionDetector) -> dict[str, int]:
    """The backbone's FPN levels and their strides in pixels (``"0"`` is the finest, ``"pool"`` the coarsest)."""
    strides = _STRIDES[detector.config.backbone]
    return {**{str(i): s for i, s in enumerate(strides[:-1])}, "pool": strides[-1]}


def backbone_features(detector: LesionDetector, images, level: str | None = "0"):
    """The backbone (+ FPN) features of ``images`` after the detector's transform:
    one level (a N x 256 x h x w tensor; ``"0"`` is the finest, stride 4 for
    ResNet, 8 for MobileNet) or, with ``level=None``, the ordered dict of all
    levels. Differentiable with respect to ``images``; uses the detector in its
    current mode (BatchNorm in training mode uses the batch statistics)."""
    image_list, _ = transform_images(detector, images)
    feats = detector.backbone(image_list.tensors)
    if level is None:
        return feats
    if str(level) not in feats:
        raise ParameterError(f"level {level!r} is not a level of the {detector.config.backbone} FPN; levels: {list(feats)}")
    return feats[str(level)]


def proposals_from_features(detector: LesionDetector, image_list: ImageList, features: OrderedDict,
                            k: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The RPN's proposals with their objectness (LIDnet eq. 2), per image, sorted by
    objectness, in the transformed image frame: the RPN's own steps (head,
    anchors, ``concat_box_prediction_layers``, ``box_coder.decode``,
    ``filter_proposals``: per-level top-n, clipping, small-box removal, NMS per
    level), whose forward drops the scores. ``k``: keep the first k (eq. 3); None
    keeps every proposal ``filter_proposals`` returns. Boxes and scores carry no
    gradient (torchvision detaches them)."""
    rpn = detector.rpn
    feats = list(features.values())
    objectness, deltas = rpn.head(feats)
    anchors = rpn.anchor_generator(image_list, feats)
    per_level = [o[0].shape[0] * o[0].shape[1] * o[0].shape[2] for o in objectness]
    objectness, deltas = concat_box_prediction_layers(objectness, deltas)
    proposals = rpn.box_coder.decode(deltas.detach(), anchors).view(len(anchors), -1, 4)
    boxes, scores = rpn.filter_proposals(proposals, objectness, image_list.image_sizes, per_level)
    if k is not None:
        boxes, scores = [b[:k] for b in boxes], [s[:k] for s in scores]
    return list(zip(boxes, scores))


def top_proposals(detector: LesionDetector, images, k: int = 5, *,
                  check_range: bool = True) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ``k`` RPN proposals of highest objectness of each image (LIDnet eqs. 2-3):
    a list of ``(boxes k x 4, scores k)``, boxes xyxy in the pixel coordinates of
    the input image (mapped back from the transformed frame), scores the
    objectness probabilities (sigmoid), in decreasing order. Fewer than ``k``
    only when the RPN keeps fewer. Runs without gradient, with the detector in
    eval mode (its mode is restored afterwards). ``check_range=False`` accepts a
    denoiser's output beyond [0, 1] (see :func:`transform_images`)."""
    k = check_int(k, "k", minimum=1)
    was = detector.training
    detector.eval()
    try:
        with torch.no_grad():
            image_list, sizes = transform_images(detector, images, check_range=check_range)
            feats = detector.backbone(image_list.tensors)
            found = proposals_from_features(detector, image_list, feats, k)
    finally:
        detector.train(was)
    return [(resize_boxes(b, tuple(image_list.image_sizes[i]), sizes[i]), s) for i, (b, s) in enumerate(found)]
