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
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ldct_nb.errors import ParameterError

__all__ = ["DifficultyStudy", "lesion_cnr", "lesion_crops", "measure_difficulty", "phantom_lesion_cnr",
           "summarise_cnr"]

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


# --------------------------------------------------------------------------- study on a synthetic manifest


@dataclass(eq=False)
class DifficultyStudy:
    """Lesions of ``n`` phantoms of a synthetic manifest at its dose, with their CNR.

    ``rows`` holds one dict per lesion (phantom index, lesion index, box, host,
    pixels, ``cnr_ndct``, ``cnr_ldct``, contrasts and noises); ``ndct``,
    ``ldct``, ``noise_free`` the images (n x H x W); ``settings`` the
    resolved synthetic settings (with ``settings["dose"]``)."""

    name: str
    title: str
    settings: dict
    phantoms: list
    ndct: np.ndarray
    ldct: np.ndarray
    noise_free: np.ndarray
    rows: list[dict]
    display_window: tuple[float, float]

    def summary(self) -> dict:
        """One table row: lesions, CNR medians / quartiles and fractions below 1 (NDCT, LDCT)."""
        nd = summarise_cnr([r["cnr_ndct"] for r in self.rows])
        ld = summarise_cnr([r["cnr_ldct"] for r in self.rows])
        rose = [r["rose_ldct"] for r in self.rows if not math.isnan(r["rose_ldct"])]
        return {"data set": self.name, "lesion kind": self.settings["lesion_kind"], "phantoms": len(self.phantoms),
                "lesions": nd["lesions"], "NDCT CNR median": nd["median"], "NDCT CNR < 1": nd["fraction_below_1"],
                "LDCT CNR median": ld["median"], "LDCT CNR q25": ld["q25"], "LDCT CNR q75": ld["q75"],
                "LDCT CNR < 1": ld["fraction_below_1"],
                "LDCT Rose median": float(np.median(rose)) if rose else math.nan}

    def __repr__(self) -> str:
        s = self.summary()
        return (f"DifficultyStudy({self.name!r}, {s['lesions']} lesions in {s['phantoms']} phantoms, LDCT CNR median "
                f"{s['LDCT CNR median']:.2f}, {s['LDCT CNR < 1']:.0%} below 1)")


def measure_difficulty(
    manifest,
    *,
    image_size: int,
    n_phantoms: int,
    split: str = "test",
    device: str | None = None,
    **overrides,
) -> DifficultyStudy:
    """CNR of every lesion of the first ``n_phantoms`` phantoms of ``split`` of a
    synthetic manifest, on its NDCT and LDCT at the manifest's dose (noise targets
    calibrated for ``image_size``). ``overrides`` go to
    :func:`~ldct_nb.data.stage.synthetic_settings` (e.g. ``phantom_kind``,
    ``lesion_kind``)."""
    from ldct_nb.data.phantom import make_phantom
    from ldct_nb.data.simulate import reconstruct_noise_free, simulate_pair
    from ldct_nb.data.stage import synthetic_settings

    if manifest.kind != "synthetic":
        raise ParameterError(f"measure_difficulty needs a synthetic manifest, got {manifest.name} ({manifest.kind})")
    if isinstance(n_phantoms, bool) or not isinstance(n_phantoms, int) or n_phantoms < 1:
        raise ParameterError(f"n_phantoms must be an int >= 1, got {n_phantoms!r}")
    s = synthetic_settings(manifest, image_size=image_size, device=device, **overrides)
    if split not in s["split_seeds"]:
        raise ParameterError(f"split must be one of {sorted(s['split_seeds'])}, got {split!r}")
    seeds = [s["seed"] + int(s["split_seeds"][split]) + i for i in range(n_phantoms)]
    phantoms = [make_phantom(s["image_size"], sd, s["phantom_kind"], fov_mm=s["fov_mm"], lesion_kind=s["lesion_kind"])
                for sd in seeds]
    sim = dict(pixel_size_mm=s["fov_mm"] / s["image_size"], mu_water_per_mm=s["mu_water_per_mm"],
               n_views=s["n_views"], electronic_noise_std=s["electronic_noise_std"], filter_name=s["filter_name"],
               filter_cutoff=s["filter_cutoff"], circle=True, device=device)
    hu = np.stack([p.hu for p in phantoms])
    ndct, ldct = simulate_pair(hu, n0_full=s["n0_full"], dose_fraction=s["dose_fraction"], seed=seeds, **sim)
    clean = reconstruct_noise_free(hu, **sim)
    rows = []
    for i, p in enumerate(phantoms):
        for a, b in zip(phantom_lesion_cnr(p, ndct[i], noise_free=clean[i]),
                        phantom_lesion_cnr(p, ldct[i], noise_free=clean[i])):
            k = a["lesion"]
            rows.append({"phantom": i, "seed": seeds[i], "lesion": k, "box": tuple(float(v) for v in p.boxes[k - 1]),
                         "host": p.tissues[a["host"]], "pixels": a["pixels"],
                         "diameter_mm": 2.0 * math.sqrt(a["pixels"] / math.pi) * p.pixel_size_mm,
                         "contrast_ndct_hu": a["contrast_hu"], "noise_ndct_hu": a["noise_hu"], "cnr_ndct": a["cnr"],
                         "contrast_ldct_hu": b["contrast_hu"], "noise_ldct_hu": b["noise_hu"], "cnr_ldct": b["cnr"],
                         "rose_ldct": b["rose"]})
    window = tuple(manifest.display_window)
    if s["phantom_kind"] != manifest.raw["generator"]["kind"]:  # overridden anatomy: its usual window
        window = {"abdomen": (-160.0, 240.0), "chest": (-1350.0, 150.0)}[s["phantom_kind"]]
    return DifficultyStudy(manifest.name, manifest.title, s, phantoms, ndct, ldct, clean, rows, window)


def lesion_crops(study: DifficultyStudy, n: int, *, min_side_px: int = 16) -> list[dict]:
    """Up to ``n`` lesions of a study, spread over its LDCT CNR range (lowest to highest),
    each with square NDCT / LDCT crops around its box (twice its size, at least
    ``min_side_px``) and its CNRs."""
    rows = sorted((r for r in study.rows if not math.isnan(r["cnr_ldct"])), key=lambda r: r["cnr_ldct"])
    if not rows or n < 1:
        return []
    pick = sorted({int(round(x)) for x in np.linspace(0, len(rows) - 1, min(n, len(rows)))})
    size = study.ndct.shape[-1]
    out = []
    for j in pick:
        r = rows[j]
        x1, y1, x2, y2 = r["box"]
        side = int(min(size, max(min_side_px, 2 * max(x2 - x1, y2 - y1))))
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        c0 = int(min(max(0, round(cx - side / 2)), size - side))
        r0 = int(min(max(0, round(cy - side / 2)), size - side))
        sl = (r["phantom"], slice(r0, r0 + side), slice(c0, c0 + side))
        out.append({**r, "ndct": np.asarray(study.ndct[sl]), "ldct": np.asarray(study.ldct[sl]),
                    "box_in_crop": (x1 - c0, y1 - r0, x2 - c0, y2 - r0)})
    return out
