"""How hard the benchmark's lesions are to see: per-lesion contrast-to-noise ratio.

A detection benchmark should be neither trivial nor impossible. For every
lesion of a phantom (:attr:`~ldct_nb.data.phantom.Phantom.lesion_map`) and an
image of it (NDCT or LDCT), :func:`lesion_cnr` measures

* the contrast C = s (mean(lesion) - mean(background)) on the image, where the
  background is the lesion's host tissue (the most frequent tissue label
  around it: liver, lung, the artery of an embolus) in a ring outside the
  lesion, and s = +1 or -1 the polarity of the lesion in the noise-free
  ``reference`` (so that noise cannot make an invisible lesion look
  contrasted: an invisible lesion has C near 0 or below);
* the noise sigma: the standard deviation of ``image - noise_free`` over the
  lesion and its ring when the noise-free reconstruction is given (pure
  quantum noise; the simulation knows it), else the standard deviation of the
  background ring on the image itself (the clinical ROI definition, which
  also counts texture and partial-volume edges);
* CNR = C / sigma. Rose's criterion puts the visibility of a lesion of A pixels
  at CNR sqrt(A) of about 3-5; ``rose`` reports that product.

:func:`summarise_cnr` gives the median, quartiles and the fraction of lesions
with CNR below 1.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ldct_nb.errors import ParameterError

__all__ = ["lesion_cnr", "phantom_lesion_cnr", "summarise_cnr"]

_EIGHT = np.ones((3, 3), bool)


def _as_image(name: str, value, shape=None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 2 or (shape is not None and arr.shape != shape):
        want = f"{shape}" if shape is not None else "H x W"
        raise ParameterError(f"{name} must be a 2-D array of shape {want}, got shape {arr.shape}")
    return arr


def lesion_cnr(
    image,
    lesion_map,
    labels,
    *,
    hosts=None,
    reference=None,
    noise_free=None,
    ring_px: int = 3,
    min_background: int = 12,
) -> list[dict]:
    """Contrast, noise and CNR of every lesion of ``lesion_map`` on ``image``.

    Args:
        image: the image (HU), H x W.
        lesion_map: lesion instances (0 = none, k = lesion k), H x W.
        labels: tissue labels (0 = air), H x W.
        hosts: label of each lesion's host tissue (lesion k -> ``hosts[k - 1]``),
            e.g. from :attr:`Phantom.lesion_hosts`; default: the most frequent
            non-lesion label around the lesion (wrong for an embolus filling
            most of a small artery: give the hosts when they are known).
        reference: noise-free image (e.g. the phantom) giving each lesion's
            polarity; default ``noise_free``, else ``image``.
        noise_free: noise-free reconstruction of the same object: if given, the
            noise is std(image - noise_free) over the lesion and its ring.
        ring_px: width of the background ring in pixels (grown up to 4x until
            it holds ``min_background`` host pixels).
        min_background: background pixels wanted in the ring.

    Returns:
        One dict per lesion (in lesion order) with ``lesion``, ``host``
        (label), ``pixels``, ``contrast_hu``, ``noise_hu``, ``cnr``, ``rose``
        (= cnr * sqrt(pixels)) and ``background_pixels``; the values are NaN
        for a lesion with fewer than 2 host pixels around it.
    """
    image = _as_image("image", image).astype(np.float64)
    lesion_map = _as_image("lesion_map", lesion_map, image.shape).astype(np.int64)
    labels = _as_image("labels", labels, image.shape)
    if noise_free is not None:
        noise_free = _as_image("noise_free", noise_free, image.shape).astype(np.float64)
    ref = reference if reference is not None else (noise_free if noise_free is not None else image)
    ref = _as_image("reference", ref, image.shape).astype(np.float64)
    if isinstance(ring_px, bool) or not isinstance(ring_px, int) or ring_px < 1:
        raise ParameterError(f"ring_px must be an int >= 1, got {ring_px!r}")
    n = int(lesion_map.max()) if lesion_map.size else 0
    rows = []
    any_lesion = lesion_map > 0
    for k, sl in enumerate(ndimage.find_objects(lesion_map.astype(np.int32), max_label=n), start=1):
        if sl is None:
            continue
        pad = 4 * ring_px + 2
        win = tuple(slice(max(0, s.start - pad), s.stop + pad) for s in sl)
        lesion = lesion_map[win] == k
        lab = labels[win]
        around = ndimage.binary_dilation(lesion, _EIGHT, iterations=ring_px) & ~lesion
        if hosts is not None:
            host = int(hosts[k - 1])
        else:
            host_labels = lab[around & ~any_lesion[win] & (lab != 0)]
            if host_labels.size == 0:
                continue
            host = int(np.bincount(host_labels.astype(np.int64)).argmax())
        host_all = (lab == host) & ~any_lesion[win]
        # the host tissue away from its own edges with other tissues (partial volume), the
        # lesion excluded: a lesion's edge belongs to the lesion, an artery's wall to the lung
        host_core = ndimage.binary_erosion(host_all | lesion, _EIGHT) & host_all
        inner = ndimage.binary_dilation(lesion, _EIGHT, iterations=1)  # skip the lesion's own edge
        for host_mask in (host_core, host_all):
            for width in range(ring_px, 4 * ring_px + 1):
                ring = ndimage.binary_dilation(lesion, _EIGHT, iterations=1 + width) & ~inner & host_mask
                if ring.sum() >= min_background:
                    break
            if ring.sum() >= 2:
                break
        core = ndimage.binary_erosion(lesion, _EIGHT)
        if core.sum() < 4:
            core = lesion
        if ring.sum() < 2:  # no host tissue left around it (an artery filled by its clot)
            rows.append({"lesion": k, "host": host, "pixels": int(lesion.sum()), "contrast_hu": math.nan,
                         "noise_hu": math.nan, "cnr": math.nan, "rose": math.nan, "background_pixels": 0})
            continue
        img, rf = image[win], ref[win]
        polarity = 1.0 if rf[core].mean() >= rf[ring].mean() else -1.0
        contrast = polarity * float(img[core].mean() - img[ring].mean())
        if noise_free is not None:
            region = lesion | ring
            noise = float((img - noise_free[win])[region].std())
        else:
            noise = float(img[ring].std())
        cnr = contrast / noise if noise > 0 else math.inf
        pixels = int(lesion.sum())
        rows.append({"lesion": k, "host": host, "pixels": pixels, "contrast_hu": contrast,
                     "noise_hu": noise, "cnr": cnr, "rose": cnr * math.sqrt(pixels),
                     "background_pixels": int(ring.sum())})
    return rows


def phantom_lesion_cnr(phantom, image, *, noise_free=None, **kwargs) -> list[dict]:
    """:func:`lesion_cnr` for a :class:`~ldct_nb.data.phantom.Phantom` and an image of it:
    hosts from ``phantom.lesion_hosts``, polarity from ``phantom.hu``."""
    hosts = [phantom.tissues.index(h) for h in phantom.lesion_hosts]
    return lesion_cnr(image, phantom.lesion_map, phantom.labels, hosts=hosts, reference=phantom.hu,
                      noise_free=noise_free, **kwargs)


def summarise_cnr(cnr) -> dict:
    """Median, quartiles, and fraction below 1 of a list of CNR values (NaN, a lesion
    without background, are left out and counted in ``no_background``)."""
    values = np.asarray(list(cnr), dtype=np.float64)
    missing = int(np.isnan(values).sum())
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"lesions": 0, "median": math.nan, "q25": math.nan, "q75": math.nan, "fraction_below_1": math.nan,
                "no_background": missing}
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return {"lesions": int(values.size), "median": float(median), "q25": float(q25), "q75": float(q75),
            "fraction_below_1": float(np.mean(values < 1.0)), "no_background": missing}
