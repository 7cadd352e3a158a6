"""GLCM radiomics of lesion regions (LIDnet sec. 4.3, Table 3): correlation,
homogeneity and energy, with pyradiomics' definitions.

LIDnet reports three texture features of the lesion ROIs and how far each
denoiser moves them from the NDCT's. We compute them as pyradiomics does
(``RadiomicsGLCM`` with ``binWidth=25``, distance 1, a symmetric matrix, the
four in-plane directions of a 2-D image, features averaged over directions):

* ``correlation``: pyradiomics ``Correlation``;
* ``homogeneity``: pyradiomics ``Idm`` (inverse difference moment,
  ``sum p(i, j) / (1 + (i - j)^2)``);
* ``energy``: pyradiomics ``JointEnergy`` (``sum p(i, j)^2``; scikit-image's
  ``energy`` is its square root, its ``ASM`` equals it).

The matrix and the features come from scikit-image (``graycomatrix``,
``graycoprops``) on the region discretised with pyradiomics' fixed bin width:
bin edges start at ``min - (min mod 25)`` and the bin index is
``numpy.digitize``'s, so gray level ``k`` covers the same HU as pyradiomics'.
``tests/test_radiomics.py`` pins the values against pyradiomics' own on fixed
arrays (computed once outside the project). pyradiomics itself is not a
dependency: its PyPI release does not install on Python 3.11.
"""
from __future__ import annotations

import numpy as np
from skimage.feature import graycomatrix, graycoprops

from ldct_nb.errors import ParameterError

__all__ = ["FEATURES", "box_features", "discretize", "feature_differences", "glcm_features"]

FEATURES = ("correlation", "homogeneity", "energy")
ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)


def discretize(hu: np.ndarray, bin_width: float = 25.0) -> np.ndarray:
    """pyradiomics' fixed-bin-width discretisation: integer gray levels from 1."""
    x = np.asarray(hu, dtype=np.float64)
    if x.size == 0 or not np.isfinite(x).all():
        raise ParameterError(f"the region must be a non-empty array of finite HU values, got shape {x.shape}")
    if not bin_width > 0:
        raise ParameterError(f"bin_width must be > 0 (HU), got {bin_width!r}")
    low = x.min() - (x.min() % bin_width)
    edges = np.arange(low, x.max() + 2 * bin_width, bin_width)
    return np.digitize(x, edges).astype(np.int64)


def glcm_features(region_hu: np.ndarray, *, bin_width: float = 25.0, distance: int = 1) -> dict[str, float]:
    """Correlation, homogeneity (Idm) and energy (JointEnergy) of a 2-D region (see the module docstring)."""
    region = np.asarray(region_hu)
    if region.ndim != 2 or min(region.shape) < 2:
        raise ParameterError(f"the region must be a 2-D array of at least 2 x 2 pixels, got shape {region.shape}")
    levels = discretize(region, bin_width)
    m = graycomatrix(levels, distances=[int(distance)], angles=list(ANGLES), levels=int(levels.max()) + 1,
                     symmetric=True, normed=True)
    return {"correlation": float(graycoprops(m, "correlation").mean()),
            "homogeneity": float(graycoprops(m, "homogeneity").mean()),
            "energy": float(graycoprops(m, "ASM").mean())}


def box_features(image_hu: np.ndarray, boxes, **kwargs) -> list[dict[str, float]]:
    """:func:`glcm_features` of every xyxy pixel box of ``image_hu`` (H x W)."""
    img = np.asarray(image_hu)
    out = []
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        r0, r1 = int(np.floor(y1)), int(np.ceil(y2))
        c0, c1 = int(np.floor(x1)), int(np.ceil(x2))
        if not (0 <= r0 < r1 <= img.shape[0] and 0 <= c0 < c1 <= img.shape[1]):
            raise ParameterError(f"box {(x1, y1, x2, y2)} leaves the {img.shape[0]} x {img.shape[1]} image")
        crop = img[r0:r1, c0:c1]
        if min(crop.shape) < 2:  # too small for a co-occurrence matrix: grow it to 2 x 2 inside the image
            r1, c1 = min(img.shape[0], max(r1, r0 + 2)), min(img.shape[1], max(c1, c0 + 2))
            crop = img[max(0, r1 - max(2, r1 - r0)):r1, max(0, c1 - max(2, c1 - c0)):c1]
        out.append(glcm_features(crop, **kwargs))
    return out


def feature_differences(images_hu, references_hu, boxes_per_slice, **kwargs) -> dict[str, float]:
    """Mean absolute difference of each feature between ``images`` and their
    references (the NDCT) over every lesion box (LIDnet Table 3); also the number
    of boxes as ``lesions``."""
    diffs = {f: [] for f in FEATURES}
    for img, ref, boxes in zip(images_hu, references_hu, boxes_per_slice):
        for a, b in zip(box_features(img, boxes, **kwargs), box_features(ref, boxes, **kwargs)):
            for f in FEATURES:
                diffs[f].append(abs(a[f] - b[f]))
    n = len(diffs[FEATURES[0]])
    return {**{f: float(np.mean(v)) if v else float("nan") for f, v in diffs.items()}, "lesions": n}
