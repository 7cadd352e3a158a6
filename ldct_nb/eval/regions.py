"""Region measures: lesion CNR (ASCON Fig. S3) and the error left in each tissue (the
motivation of ASCON Fig. S1), from the benchmark's tissue labels or user-given masks."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from ldct_nb.data.difficulty import lesion_cnr
from ldct_nb.errors import ParameterError

__all__ = ["cnr", "lesion_cnr_table", "tissue_error_table"]


def cnr(image_hu: np.ndarray, roi: np.ndarray, background: np.ndarray) -> float:
    """Contrast-to-noise ratio ``|mean(roi) - mean(background)| / std(background)`` of two masks."""
    img = np.asarray(image_hu, dtype=np.float64)
    roi, background = np.asarray(roi, bool), np.asarray(background, bool)
    if roi.shape != img.shape or background.shape != img.shape:
        raise ParameterError(f"roi {roi.shape} and background {background.shape} must have the image's shape {img.shape}")
    if roi.sum() < 1 or background.sum() < 2:
        raise ParameterError(f"the ROI needs a pixel and the background two; got {int(roi.sum())} and {int(background.sum())}")
    if (roi & background).any():
        raise ParameterError("the ROI and the background overlap")
    noise = img[background].std()
    return float(abs(img[roi].mean() - img[background].mean()) / noise) if noise > 0 else float("inf")


def _lesion_instances(labels: np.ndarray, lesion_label: int) -> np.ndarray:
    instances, _ = ndimage.label(labels == lesion_label)
    return instances


def lesion_cnr_table(images: Mapping[str, np.ndarray], labels: np.ndarray, tissues: Sequence[str], *,
                     reference: np.ndarray | None = None, lesion: str = "lesion") -> pd.DataFrame:
    """CNR of every lesion (connected component of the ``lesion`` label) of every
    slice for each named image stack (N x H x W, HU), against a ring of its host
    tissue (:func:`ldct_nb.data.difficulty.lesion_cnr`; polarity from ``reference``,
    e.g. the NDCT or the noise-free phantom). One row per (image, slice, lesion)."""
    if lesion not in tissues:
        raise ParameterError(f"no {lesion!r} label among the tissues {list(tissues)}")
    lab = np.asarray(labels)
    code = list(tissues).index(lesion)
    rows = []
    for name, stack in images.items():
        stack = np.asarray(stack)
        if stack.shape != lab.shape:
            raise ParameterError(f"image {name!r} has shape {stack.shape}, the labels {lab.shape}")
        for s in range(len(stack)):
            inst = _lesion_instances(lab[s], code)
            if inst.max() == 0:
                continue
            ref = None if reference is None else np.asarray(reference[s])
            for r in lesion_cnr(stack[s], inst, lab[s], reference=ref):
                rows.append({"image": name, "slice": s, **r})
    return pd.DataFrame(rows)


def tissue_error_table(images: Mapping[str, np.ndarray], target: np.ndarray, labels: np.ndarray,
                       tissues: Sequence[str], *, min_pixels: int = 20) -> pd.DataFrame:
    """Standard deviation (HU) of ``image - target`` inside each tissue, pooled over
    slices, for each named image stack: the noise and error a method leaves in
    each tissue (rows: image, tissue, pixels, std_hu, bias_hu)."""
    lab = np.asarray(labels)
    tgt = np.asarray(target, np.float64)
    rows = []
    for name, stack in images.items():
        diff = np.asarray(stack, np.float64) - tgt
        if diff.shape != lab.shape:
            raise ParameterError(f"image {name!r} has shape {diff.shape}, the labels {lab.shape}")
        for code, tissue in enumerate(tissues):
            if tissue == "air":
                continue
            inside = lab == code
            if inside.sum() < min_pixels:
                continue
            d = diff[inside]
            rows.append({"image": name, "tissue": tissue, "pixels": int(inside.sum()), "std_hu": float(d.std()),
                         "bias_hu": float(d.mean())})
    return pd.DataFrame(rows)
