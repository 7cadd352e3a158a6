"""LIDnet's ROI perceptual loss, eq. (4).

The global perceptual loss (eq. 1) compares whole feature maps; LIDnet compares
them only inside the K region proposals of highest objectness that the
detector's RPN finds on the *denoised* image (eqs. 2-3), with the detector's own
backbone as the feature extractor ``T``::

    L_ROI = E_(x, y) [ 1/K sum_i ||T(F(x))_{t_i} - T(y)_{t_i}||_F^2 / (w h d) ]

``T(.)_{t}`` is the feature map cropped to box ``t`` by
``torchvision.ops.roi_align`` (``output_size`` w x h bins, d channels), so
``||.||_F^2 / (w h d)`` is the mean squared difference over the aligned bins
and channels. The same boxes (those of the denoised image) crop both feature
maps. Where the paper is silent this module states its choice:

* which features: one FPN level (``"0"``, the finest, by default; any level
  of :func:`ldct_nb.models.detector.feature_levels`), or ``"roi_pool"``, the
  detector's own ``MultiScaleRoIAlign`` (each box pooled from the level its box
  head would use);
* ``output_size`` 7 (the box head's), ``sampling_ratio`` 2, ``aligned=True``
  (half-pixel corrected bins);
* the expectation: the mean over the images of the batch of each image's mean
  over its proposals (an image without proposals is left out).

:func:`roi_perceptual_loss` is the pure formula on feature maps and boxes;
:func:`detector_roi_loss` gets the features and proposals from a detector.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.ops import roi_align

from ldct_nb.errors import ParameterError

Tensor = torch.Tensor

__all__ = ["roi_features", "roi_perceptual_loss", "detector_roi_loss"]


def _check_boxes(boxes: Sequence[Tensor], n: int) -> list[Tensor]:
    if isinstance(boxes, Tensor) or not isinstance(boxes, (list, tuple)):
        raise ParameterError("boxes must be a list with one K x 4 xyxy tensor per image")
    if len(boxes) != n:
        raise ParameterError(f"boxes has {len(boxes)} entries for {n} images: give one K x 4 tensor per image")
    out = []
    for i, b in enumerate(boxes):
        if not isinstance(b, Tensor) or b.ndim != 2 or b.shape[1] != 4:
            raise ParameterError(f"boxes[{i}] must be a K x 4 tensor of xyxy boxes, got "
                                 f"{tuple(b.shape) if isinstance(b, Tensor) else type(b).__name__}")
        out.append(b.detach())
    return out


def roi_features(features: Tensor, boxes: Sequence[Tensor], *, spatial_scale: float, output_size: int = 7,
                 sampling_ratio: int = 2, aligned: bool = True) -> Tensor:
    """``torchvision.ops.roi_align`` of an N x d x h x w feature map on per-image boxes
    (xyxy in the frame the features were computed from; ``spatial_scale`` = feature
    size / image size): a (sum K) x d x output_size x output_size tensor."""
    boxes = _check_boxes(boxes, features.shape[0])
    boxes = [b.to(features.dtype) for b in boxes]
    return roi_align(features, boxes, output_size=output_size, spatial_scale=spatial_scale,
                     sampling_ratio=sampling_ratio, aligned=aligned)


def _per_image_mean(per_roi: Tensor, counts: list[int]) -> Tensor:
    means = [chunk.mean() for chunk in torch.split(per_roi, counts) if chunk.numel()]
    if not means:
        return per_roi.sum() * 0.0  # no proposal anywhere: zero, still attached to the graph
    return torch.stack(means).mean()


def roi_perceptual_loss(features_denoised: Tensor, features_ndct: Tensor, boxes: Sequence[Tensor], *,
                        spatial_scale: float, output_size: int = 7, sampling_ratio: int = 2,
                        aligned: bool = True) -> Tensor:
    """Eq. (4) on feature maps: for each image, the mean over its boxes of the
    squared Frobenius norm of the difference of the ROI-aligned features divided by
    w h d; then the mean over the images. ``features_*``: N x d x h x w (the NDCT
    side is the target: pass it without gradient); ``boxes``: per image a K x 4
    tensor (the proposals of the denoised image)."""
    if features_denoised.shape != features_ndct.shape:
        raise ParameterError(f"features_denoised {tuple(features_denoised.shape)} and features_ndct "
                             f"{tuple(features_ndct.shape)} must have the same shape")
    boxes = _check_boxes(boxes, features_denoised.shape[0])
    kw = dict(spatial_scale=spatial_scale, output_size=output_size, sampling_ratio=sampling_ratio, aligned=aligned)
    a = roi_features(features_denoised, boxes, **kw)
    b = roi_features(features_ndct, boxes, **kw)
    per_roi = (a - b).pow(2).flatten(1).mean(1)  # ||.||_F^2 / (w h d)
    return _per_image_mean(per_roi, [int(x.shape[0]) for x in boxes])


def detector_roi_loss(detector: nn.Module, image_list, features_denoised: dict, features_ndct: dict,
                      boxes: Sequence[Tensor], *, level: str = "0", output_size: int = 7,
                      sampling_ratio: int = 2) -> Tensor:
    """Eq. (4) with a detector's backbone as ``T``: ``features_*`` are the backbone's
    FPN dicts of the denoised and NDCT images (both through the detector's
    transform, whose frame ``image_list`` and ``boxes`` share). ``level``: an FPN
    level name or ``"roi_pool"`` (the detector's ``MultiScaleRoIAlign``)."""
    if level == "roi_pool":
        pool = detector.roi_heads.box_roi_pool
        boxes = _check_boxes(boxes, image_list.tensors.shape[0])
        a = pool(features_denoised, list(boxes), image_list.image_sizes)
        b = pool(features_ndct, list(boxes), image_list.image_sizes)
        per_roi = (a - b).pow(2).flatten(1).mean(1)
        return _per_image_mean(per_roi, [int(x.shape[0]) for x in boxes])
    if level not in features_denoised:
        raise ParameterError(f"feature level {level!r} is not a level of the detector's FPN "
                             f"({list(features_denoised)}) nor 'roi_pool'")
    fd, fn = features_denoised[level], features_ndct[level]
    scale = fd.shape[-1] / image_list.tensors.shape[-1]
    return roi_perceptual_loss(fd, fn, boxes, spatial_scale=scale, output_size=output_size,
                               sampling_ratio=sampling_ratio)
