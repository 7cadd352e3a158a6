"""Detection accuracy: AP-50 and AP-75 (LIDnet sec. 4.1, Table 2).

:func:`detection_ap` wraps torchmetrics' ``MeanAveragePrecision`` (COCO
evaluation by pycocotools: 101-point interpolated precision, greedy matching by
score, at most 100 detections per image, boxes xyxy in pixels) and returns plain
floats: ``ap50`` and ``ap75`` (the paper's AP-50 / AP-75, on the [0, 1] scale;
multiply by 100 for the paper's numbers), ``map`` (COCO AP over IoU 0.5:0.95),
``mar_100`` (recall with up to 100 detections) and the counts. A data set with
no ground-truth box has no AP: NaN (torchmetrics' -1 is not passed on).

:func:`predict` runs a detector on a batch and returns what
:func:`detection_ap` takes.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ldct_nb.errors import ParameterError

__all__ = ["detection_ap", "predict", "split_ap"]


def _tensor(value: Any, name: str, *, dtype: torch.dtype, shape: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
    else:
        try:
            t = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{name} must be an array of {shape}, got {type(value).__name__}") from exc
    if t.is_complex() or t.dtype == torch.bool:
        raise ParameterError(f"{name} must hold real numbers ({shape}), got {t.dtype}")
    return t.to(dtype)


def _boxes(value: Any, name: str) -> torch.Tensor:
    b = _tensor(value, name, dtype=torch.float32, shape="M x 4 xyxy boxes")
    if b.numel() == 0:
        return b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ParameterError(f"{name} must be an M x 4 array of xyxy boxes (pixels), got shape {tuple(b.shape)}")
    if not bool(torch.isfinite(b).all()):
        raise ParameterError(f"{name} holds NaN or infinite coordinates")
    if bool(((b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])).any()):
        raise ParameterError(f"{name} holds boxes with x2 < x1 or y2 < y1: boxes must be xyxy (x1, y1, x2, y2)")
    return b


def _entry(d: Any, name: str, *, scores: bool) -> dict[str, torch.Tensor]:
    if not isinstance(d, Mapping):
        raise ParameterError(f"{name} must be a dict with 'boxes' and 'labels'{' and scores' if scores else ''}, "
                             f"got {type(d).__name__}")
    need = ("boxes", "labels", "scores") if scores else ("boxes", "labels")
    missing = [k for k in need if k not in d]
    if missing:
        raise ParameterError(f"{name} lacks {missing}; expected keys {list(need)}")
    boxes = _boxes(d["boxes"], f"{name}['boxes']")
    labels = _tensor(d["labels"], f"{name}['labels']", dtype=torch.int64, shape="M class ids").reshape(-1)
    if labels.numel() != boxes.shape[0]:
        raise ParameterError(f"{name}: {boxes.shape[0]} boxes but {labels.numel()} labels")
    out = {"boxes": boxes, "labels": labels}
    if scores:
        s = _tensor(d["scores"], f"{name}['scores']", dtype=torch.float32, shape="M scores").reshape(-1)
        if s.numel() != boxes.shape[0]:
            raise ParameterError(f"{name}: {boxes.shape[0]} boxes but {s.numel()} scores")
        if not bool(torch.isfinite(s).all()):
            raise ParameterError(f"{name}['scores'] holds NaN or infinite values")
        out["scores"] = s
    return out


def detection_ap(predictions: Sequence[Mapping[str, Any]], targets: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """AP-50, AP-75 and COCO mAP of ``predictions`` against ``targets``.

    ``predictions``: per image a dict ``boxes`` (M x 4 xyxy pixels), ``scores``
    (M) and ``labels`` (M class ids); ``targets``: per image ``boxes`` and
    ``labels``; tensors or arrays, in the same image order. Returns floats in
    [0, 1] (``ap50``, ``ap75``, ``map``, ``mar_100``; NaN without any target
    box) and ``images``, ``targets`` and ``detections`` counts."""
    from torchmetrics.detection import MeanAveragePrecision

    if isinstance(predictions, Mapping) or isinstance(targets, Mapping):
        raise ParameterError("predictions and targets must be lists with one dict per image, not a single dict")
    predictions, targets = list(predictions), list(targets)
    if len(predictions) != len(targets):
        raise ParameterError(f"{len(predictions)} predictions but {len(targets)} targets: give one of each per image")
    if not predictions:
        raise ParameterError("predictions and targets are empty: nothing to score")
    preds = [_entry(p, f"predictions[{i}]", scores=True) for i, p in enumerate(predictions)]
    gts = [_entry(t, f"targets[{i}]", scores=False) for i, t in enumerate(targets)]
    n_gt = sum(int(t["boxes"].shape[0]) for t in gts)
    counts = {"images": len(preds), "targets": n_gt, "detections": sum(int(p["boxes"].shape[0]) for p in preds)}
    if n_gt == 0:
        return {"ap50": math.nan, "ap75": math.nan, "map": math.nan, "mar_100": math.nan, **counts}
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")
    metric.update(preds, gts)
    r = metric.compute()

    def val(key: str) -> float:
        v = float(r[key])
        return math.nan if v < 0 else v

    return {"ap50": val("map_50"), "ap75": val("map_75"), "map": val("map"), "mar_100": val("mar_100"), **counts}


@torch.no_grad()
def predict(detector: torch.nn.Module, images: torch.Tensor, *, batch_size: int = 8) -> list[dict[str, torch.Tensor]]:
    """The detections of ``detector`` (eval mode, restored afterwards) on an N x 1 x H x W
    batch on the [0, 1] scale, as CPU tensors: per image ``boxes``, ``scores``, ``labels``."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ParameterError(f"images must be an N x 1 x H x W tensor, got {getattr(images, 'shape', type(images).__name__)}")
    was = detector.training
    detector.eval()
    try:
        p = next(detector.parameters())
        out = []
        for start in range(0, images.shape[0], batch_size):
            chunk = images[start:start + batch_size].to(p.device, p.dtype)
            out += [{k: v.detach().cpu() for k, v in d.items()} for d in detector(list(chunk))]
    finally:
        detector.train(was)
    return out


@torch.no_grad()
def split_ap(detector: torch.nn.Module, split, *, source: str = "ndct", denoiser: torch.nn.Module | None = None,
             max_slices: int | None = None, batch_size: int = 8) -> dict[str, float]:
    """AP-50 / AP-75 of ``detector`` on a cached split (:class:`~ldct_nb.data.cache.CacheSplit`):
    on its ``source`` images (``"ndct"`` or ``"ldct"``), or on ``denoiser``'s output for
    the LDCT images (eval mode), against the split's lesion boxes; the first
    ``max_slices`` slices or all. LIDnet sec. 4.1 scores every denoiser this way
    with the detector trained on NDCT."""
    from ldct_nb.data.datasets import DetectionSlices

    if source not in ("ndct", "ldct"):
        raise ParameterError(f"source must be 'ndct' or 'ldct', got {source!r}")
    if denoiser is not None and source != "ldct":
        raise ParameterError("a denoiser denoises the LDCT images: use source='ldct' with denoiser=")
    ds = DetectionSlices(split, source=source)
    n = len(ds) if max_slices is None else min(len(ds), int(max_slices))
    if n < 1:
        raise ParameterError(f"split {getattr(split, 'path', split)} holds no slices")
    images = torch.stack([ds[i][0] for i in range(n)])
    targets = [ds[i][1] for i in range(n)]
    if denoiser is not None:
        p = next(denoiser.parameters())
        was = denoiser.training
        denoiser.eval()
        images = torch.cat([denoiser(images[i:i + batch_size].to(p.device)).float().cpu()
                            for i in range(0, n, batch_size)])
        denoiser.train(was)
    return detection_ap(predict(detector, images, batch_size=batch_size), targets)
