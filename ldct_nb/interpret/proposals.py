"""The detector's view of denoised images (LIDnet sec. 3.1, Fig. 4): where the NDCT
detector's top-K region proposals fall on an LDCT image and on the outputs of a baseline
denoiser and of its LIDnet version, and the fraction of them that overlap a true lesion.

A proposal *overlaps a lesion* when its intersection over union with some true lesion box
is at least ``iou_threshold`` (``torchvision.ops.box_iou``; boxes xyxy in pixels). The
default 0.1 counts a proposal that covers a fair part of a small lesion (an RPN box is
often larger than a 5-pixel embolus); 0 would count any touching box.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchvision.ops import box_iou

from ldct_nb.errors import ParameterError
from ldct_nb.paths import resolve

__all__ = ["lidnet_missing", "lidnet_paths", "lidnet_view", "overlap_fraction", "proposal_table"]


def _boxes(boxes, name: str) -> torch.Tensor:
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.detach().cpu().numpy()
    try:
        arr = np.asarray(boxes, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be an M x 4 array of xyxy boxes, got {type(boxes).__name__}") from exc
    if arr.size == 0:
        return torch.zeros(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ParameterError(f"{name} must be an M x 4 array of xyxy boxes, got shape {arr.shape}")
    b = torch.from_numpy(arr)
    if not torch.isfinite(b).all() or (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
        raise ParameterError(f"{name} must hold finite xyxy boxes with x2 >= x1 and y2 >= y1")
    return b


def overlap_fraction(proposals, lesions, iou_threshold: float = 0.1) -> float:
    """Fraction of ``proposals`` (K x 4) whose IoU with some box of ``lesions`` (M x 4) is at
    least ``iou_threshold`` (strictly above it when the threshold is 0). NaN without proposals;
    0 without lesions."""
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, (int, float)) or not 0 <= iou_threshold <= 1:
        raise ParameterError(f"iou_threshold must be a number in [0, 1], got {iou_threshold!r}")
    p, t = _boxes(proposals, "proposals"), _boxes(lesions, "lesions")
    if p.shape[0] == 0:
        return float("nan")
    if t.shape[0] == 0:
        return 0.0
    best = box_iou(p, t).max(dim=1).values
    hit = best > 0 if iou_threshold == 0 else best >= iou_threshold
    return float(hit.float().mean())


def lidnet_paths(run_dir: str | os.PathLike[str], analogue: str, baseline: str, lidnet: str, seed: int = 0) -> dict[str, Path]:
    """The files the LIDnet view reads (written by notebook 05): ``detector``
    (``ckpt/lidnet/<analogue>/detector_ndct/best.pt``), ``baseline`` and ``lidnet``
    (``ckpt/lidnet/<analogue>/<method>/seed<k>/best.pt``)."""
    for key, value in (("analogue", analogue), ("baseline", baseline), ("lidnet", lidnet)):
        if not isinstance(value, str) or not value or "/" in value:
            raise ParameterError(f"{key} must be a folder name, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed must be an int >= 0, got {seed!r}")
    root = resolve(run_dir) / "ckpt" / "lidnet" / analogue
    return {"detector": root / "detector_ndct" / "best.pt",
            "baseline": root / baseline / f"seed{seed}" / "best.pt",
            "lidnet": root / lidnet / f"seed{seed}" / "best.pt"}


def proposal_table(
    propose: Callable[[torch.Tensor], Sequence[tuple]],
    images: Mapping[str, torch.Tensor],
    lesions: Sequence,
    *,
    iou_threshold: float = 0.1,
) -> tuple[pd.DataFrame, dict[str, list]]:
    """Run ``propose`` (images N x 1 x H x W -> per image ``(boxes K x 4, scores K)``, e.g.
    ``lambda x: top_proposals(detector, x, k=5)``) on each entry of ``images`` (name ->
    batch, the same N slices) and score the proposals against ``lesions`` (per slice an
    M x 4 box array). Returns a table (one row per image kind: mean overlap fraction over
    the slices with lesions, its standard deviation, slices, proposals) and the proposals."""
    if not isinstance(images, Mapping) or not images:
        raise ParameterError("images must map names to N x 1 x H x W batches")
    n = len(lesions)
    rows, kept = [], {}
    for name, batch in images.items():
        if not isinstance(batch, torch.Tensor) or batch.ndim != 4 or batch.shape[0] != n:
            shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
            raise ParameterError(f"images[{name!r}] must be an N x 1 x H x W tensor with N = {n} (one per lesion list), got {shape}")
        props = list(propose(batch))
        if len(props) != n:
            raise ParameterError(f"propose returned {len(props)} results for {n} images of {name!r}")
        fractions = [overlap_fraction(b, t, iou_threshold) for (b, _), t in zip(props, lesions) if len(t)]
        fractions = [f for f in fractions if not np.isnan(f)]
        rows.append({"image": name, "overlap_fraction": float(np.mean(fractions)) if fractions else float("nan"),
                     "std_over_slices": float(np.std(fractions, ddof=1)) if len(fractions) > 1 else float("nan"),
                     "slices_with_lesions": len(fractions), "proposals": int(sum(len(b) for b, _ in props))})
        kept[name] = props
    return pd.DataFrame(rows).set_index("image"), kept


def _analogue_data_dir(run_dir, analogue: str) -> Path | None:
    """Where notebook 05 caches ``analogue`` (``ldct_nb.train.lidnet.analogue_data_dir``), or
    None while that module is not there."""
    try:
        from ldct_nb.train.lidnet import analogue_data_dir
    except ImportError:
        return None
    return analogue_data_dir(run_dir, analogue)


def lidnet_missing(run_dir: str | os.PathLike[str], analogue: str, baseline: str, lidnet: str, split: str = "test",
                   seed: int = 0) -> list[str]:
    """What the LIDnet view still lacks, in words (empty when it can run): the detector and
    LIDnet modules, the cached detection split of ``analogue`` (where notebook 05 caches it:
    ``run_dir`` itself when notebook 01 cached that data set there, else
    ``run_dir/analogues/<analogue>``), the NDCT detector and the two denoisers, each named
    with its path."""
    from importlib.util import find_spec

    from ldct_nb.data.cache import split_dir

    missing = []
    if find_spec("ldct_nb.models.detector") is None:
        missing.append("the module ldct_nb.models.detector (the LIDnet issue)")
    data_dir = _analogue_data_dir(run_dir, analogue)
    if data_dir is None:
        missing.append("the module ldct_nb.train.lidnet (the LIDnet issue)")
    elif not (split_dir(data_dir, split) / "meta.json").is_file():
        missing.append(f"the cached detection split {split!r} of {analogue} ({split_dir(data_dir, split)})")
    for what, path in lidnet_paths(run_dir, analogue, baseline, lidnet, seed).items():
        if not path.is_file():
            missing.append(f"the {what} checkpoint {path}")
    return missing


def lidnet_view(run_dir: str | os.PathLike[str], analogue: str, baseline: str, lidnet: str, split: str = "test", *,
                seed: int = 0, k: int = 5, iou_threshold: float = 0.1, n_slices: int = 0,
                device: str = "cpu") -> dict:
    """LIDnet's view: the NDCT detector's top-``k`` proposals (``top_proposals``) on the LDCT
    slices of ``analogue``'s ``split`` (cached by notebook 05) that hold lesions and on the outputs of the ``baseline`` denoiser and
    its ``lidnet`` version (notebook 05's checkpoints), scored with :func:`proposal_table`.
    Images go to the detector and the denoisers on the cache's HU window [0, 1] scale.
    Returns ``table``, ``proposals``, ``images`` (HU, per kind), ``lesions``, ``slices`` and
    the analogue's ``display_window`` (HU)."""
    from ldct_nb.data.cache import open_split
    from ldct_nb.data.datasets import HUWindow
    from ldct_nb.env import select_device
    from ldct_nb.models.detector import load_detector, top_proposals
    from ldct_nb.train import load_denoiser

    missing = lidnet_missing(run_dir, analogue, baseline, lidnet, split, seed)
    if missing:
        raise ParameterError("the LIDnet view needs " + "; ".join(missing) + " (notebook 05 writes them)")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ParameterError(f"k must be an int >= 1, got {k!r}")
    if isinstance(n_slices, bool) or not isinstance(n_slices, int) or n_slices < 0:
        raise ParameterError(f"n_slices must be an int >= 0 (0: all slices with lesions), got {n_slices!r}")
    dev = select_device(device)
    data = open_split(_analogue_data_dir(run_dir, analogue), split)
    window = HUWindow(*data.hu_window)
    slices = [i for i in range(len(data)) if len(data.boxes[i])]
    if not slices:
        raise ParameterError(f"the split {split!r} has no slice with a lesion box: nothing to score")
    slices = slices[:n_slices] if n_slices else slices
    paths = lidnet_paths(run_dir, analogue, baseline, lidnet, seed)
    ldct = torch.from_numpy(np.stack([window.normalize(np.asarray(data.ldct[i], np.float32)) for i in slices]))[:, None]
    images = {"LDCT": ldct.float()}
    with torch.inference_mode():
        for name, key in ((f"{baseline}", "baseline"), (f"{lidnet} (LIDnet)", "lidnet")):
            net = load_denoiser(paths[key], device=dev)
            images[name] = torch.cat([net(ldct[i:i + 1].float().to(dev)).cpu() for i in range(len(slices))])
    detector = load_detector(paths["detector"]).to(dev).eval()
    lesions = [np.asarray(data.boxes[i]) for i in slices]

    def propose(batch: torch.Tensor):
        with torch.inference_mode():
            return [(b.detach().cpu(), s.detach().cpu()) for b, s in top_proposals(detector, batch.to(dev), k=k)]

    table, proposals = proposal_table(propose, images, lesions, iou_threshold=iou_threshold)
    hu = {name: window.denormalize(batch[:, 0].numpy()) for name, batch in images.items()}
    return {"table": table, "proposals": proposals, "images": hu, "lesions": lesions, "slices": slices,
            "display_window": _display_window(analogue)}


def _display_window(analogue: str) -> tuple[float, float]:
    """The analogue's manifest display window (HU), or ASCON's [-160, 240] when it has no manifest."""
    from ldct_nb.data.manifest import load_manifest

    try:
        return tuple(load_manifest(analogue).display_window)
    except (ValueError, OSError, AttributeError):
        return (-160.0, 240.0)
