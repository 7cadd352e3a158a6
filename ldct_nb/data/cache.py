"""One-time conversion of a data set into a fast array cache in ``run_dir/data/<split>/``.

Layout of one split folder::

    meta.json      what was built, from what (fingerprint, manifest checksum, HU window,
                   slice ids, patients, pixel sizes, dose) and "complete": true
    ndct.npy       float32 S x H x W, HU (memory-mapped when read)
    ldct.npy       float32 S x H x W, HU
    phantom.npy    float32 S x H x W, noise-free HU (synthetic data only)
    labels.npy     uint8   S x H x W, tissue labels (synthetic data only)
    boxes.json     per slice, a list of [x1, y1, x2, y2] lesion boxes (pixels, xyxy)

A split is written into a hidden temporary folder and renamed into place only
when complete, so an interrupted conversion never leaves a half cache that
looks complete: the next run sees no (or the previous) cache and converts
again. A cache whose fingerprint matches the requested build is reused.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap

from ldct_nb.errors import DataError, ParameterError
from ldct_nb.paths import atomic_write_json, resolve
from ldct_nb.progress import progress as progress_bar

CACHE_VERSION = 1
ARRAYS = ("ndct", "ldct", "phantom", "labels")


@dataclass
class CacheSplit:
    """A converted split: memory-mapped arrays plus metadata."""

    path: Path
    meta: dict[str, Any]
    ndct: np.ndarray
    ldct: np.ndarray
    phantom: np.ndarray | None
    labels: np.ndarray | None
    boxes: list[np.ndarray]

    @property
    def split(self) -> str:
        return self.meta["split"]

    @property
    def hu_window(self) -> tuple[float, float]:
        return tuple(self.meta["hu_window"])

    @property
    def tissues(self) -> tuple[str, ...]:
        return tuple(self.meta.get("tissues") or ())

    def __len__(self) -> int:
        return int(self.ndct.shape[0])

    def __repr__(self) -> str:
        s, h, w = self.ndct.shape
        extras = [n for n in ("phantom", "labels") if getattr(self, n) is not None]
        n_boxes = sum(len(b) for b in self.boxes)
        return (
            f"CacheSplit({self.meta['dataset']}/{self.split}: {s} slices {h}x{w}, "
            f"{n_boxes} lesion boxes, extras={extras}, path={str(self.path)!r})"
        )


def split_dir(run_dir: str | Path, split: str) -> Path:
    """Folder of one split's cache."""
    return resolve(run_dir) / "data" / split


def fingerprint(params: dict[str, Any]) -> str:
    """A checksum of everything that determines a split's content."""
    blob = json.dumps({"cache_version": CACHE_VERSION, **params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def open_split(run_dir: str | Path, split: str) -> CacheSplit:
    """Open a complete cached split (memory-mapped); DataError names what is missing."""
    folder = split_dir(run_dir, split)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        available = list_splits(run_dir)
        raise DataError(
            f"{folder}: no cached split {split!r} (cached: {available or 'none'}); run notebook 01_data "
            f"with this run_dir first"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{meta_path}: corrupt cache metadata ({exc}); delete the folder and rerun 01_data") from exc
    if not meta.get("complete") or meta.get("cache_version") != CACHE_VERSION:
        raise DataError(f"{folder}: incomplete or outdated cache (version {meta.get('cache_version')}); rerun 01_data")
    arrays: dict[str, np.ndarray | None] = {}
    for name in ARRAYS:
        path = folder / f"{name}.npy"
        if name in ("ndct", "ldct") and not path.is_file():
            raise DataError(f"{path}: missing from the cache; rerun 01_data")
        arrays[name] = np.load(path, mmap_mode="r") if path.is_file() else None
    n = meta["n_slices"]
    for name, arr in arrays.items():
        if arr is not None and arr.shape[0] != n:
            raise DataError(f"{folder / (name + '.npy')}: {arr.shape[0]} slices, meta.json says {n}")
    boxes_path = folder / "boxes.json"
    try:
        boxes_raw = json.loads(boxes_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{boxes_path}: missing or corrupt lesion boxes ({exc}); rerun 01_data") from exc
    boxes = [np.asarray(b, dtype=np.float32).reshape(-1, 4) for b in boxes_raw]
    return CacheSplit(folder, meta, arrays["ndct"], arrays["ldct"], arrays["phantom"], arrays["labels"], boxes)


def list_splits(run_dir: str | Path) -> list[str]:
    """Names of the complete cached splits of a run."""
    root = resolve(run_dir) / "data"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and (p / "meta.json").is_file())


def cached_fingerprint(run_dir: str | Path, split: str) -> str | None:
    """Fingerprint of an existing complete split, or None."""
    try:
        meta = json.loads((split_dir(run_dir, split) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return meta.get("fingerprint") if meta.get("complete") else None


class SplitWriter:
    """Write one split into a temporary folder, then rename it into place.

    Use as a context manager; arrays are created with :meth:`array` (memory
    maps, so a large real data set never has to fit in memory), per-slice
    metadata is added with :meth:`add_slice`. Leaving the block with an
    exception removes the temporary folder and keeps the previous cache.
    """

    def __init__(self, run_dir: str | Path, split: str, meta: dict[str, Any]):
        self.final = split_dir(run_dir, split)
        self.tmp = self.final.parent / f".{split}.tmp-{uuid.uuid4().hex[:8]}"
        self.meta = {"split": split, "cache_version": CACHE_VERSION, **meta}
        self.arrays: dict[str, np.memmap] = {}
        self.boxes: list[list[list[float]]] = []
        self.slices: list[dict[str, Any]] = []

    def __enter__(self) -> SplitWriter:
        self.tmp.mkdir(parents=True)
        return self

    def array(self, name: str, shape: tuple[int, ...], dtype) -> np.memmap:
        if name not in ARRAYS:
            raise ParameterError(f"SplitWriter.array: name must be one of {ARRAYS}, got {name!r}")
        arr = open_memmap(self.tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
        self.arrays[name] = arr
        return arr

    def add_slice(self, boxes: np.ndarray, **info: Any) -> None:
        self.boxes.append(np.asarray(boxes, dtype=float).reshape(-1, 4).round(3).tolist())
        self.slices.append(info)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        n = len(self.slices)
        for name, arr in self.arrays.items():
            if arr.shape[0] != n:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise DataError(f"cache {self.final}: {name} has {arr.shape[0]} slices but {n} were added")
            arr.flush()
        self.arrays.clear()
        try:
            (self.tmp / "boxes.json").write_text(json.dumps(self.boxes), encoding="utf-8")
            atomic_write_json(
                self.tmp / "meta.json", {**self.meta, "n_slices": n, "slices": self.slices, "complete": True}
            )
            _replace_dir(self.tmp, self.final)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, replacing an existing folder with two renames."""
    old = None
    if dst.exists():
        old = dst.parent / f".{dst.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except BaseException:
        if old is not None:  # put the previous cache back (clean_partial would delete it)
            os.replace(old, dst)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def clean_partial(run_dir: str | Path) -> list[Path]:
    """Remove temporary folders left by interrupted conversions; return them."""
    root = resolve(run_dir) / "data"
    removed = []
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


# -- builders ---------------------------------------------------------------------------

def build_synthetic_split(
    run_dir: str | Path,
    split: str,
    *,
    n_slices: int,
    image_size: int,
    base_seed: int,
    kind: str = "abdomen",
    fov_mm: float = 360.0,
    n0_full: float = 1e5,
    dose_fraction: float = 0.25,
    n_views: int | None = None,
    electronic_noise_std: float = 0.0,
    mu_water_per_mm: float = 0.0171,
    hu_window: tuple[float, float] = (-1000.0, 2000.0),
    dataset: str = "synthetic",
    manifest_sha256: str | None = None,
    batch_size: int = 8,
    device: str | None = None,
    force: bool = False,
    progress: bool = True,
) -> CacheSplit:
    """Generate phantoms, simulate NDCT (``n0_full``) and LDCT
    (``dose_fraction * n0_full``) and cache them. Phantom ``i`` of the split
    uses seed ``base_seed + i`` for its anatomy and its noise, so slices do not
    depend on the batch size and splits with distant base seeds never share a
    phantom."""
    from ldct_nb.data.phantom import TISSUES, make_phantom
    from ldct_nb.data.simulate import simulate_pair

    if isinstance(n_slices, bool) or not isinstance(n_slices, int) or n_slices < 1:
        raise ParameterError(f"n_slices for split {split!r} must be an int >= 1, got {n_slices!r}")
    params = dict(
        dataset=dataset, split=split, n_slices=n_slices, image_size=image_size, base_seed=base_seed, kind=kind,
        fov_mm=fov_mm, n0_full=n0_full, dose_fraction=dose_fraction, n_views=n_views,
        electronic_noise_std=electronic_noise_std, mu_water_per_mm=mu_water_per_mm,
        hu_window=list(hu_window), manifest_sha256=manifest_sha256,
    )
    fp = fingerprint(params)
    if not force and cached_fingerprint(run_dir, split) == fp:
        return open_split(run_dir, split)
    meta = {**params, "fingerprint": fp, "tissues": list(TISSUES), "pixel_size_mm": fov_mm / image_size}
    shape = (n_slices, image_size, image_size)
    with SplitWriter(run_dir, split, meta) as writer:
        arrays = {name: writer.array(name, shape, np.uint8 if name == "labels" else np.float32) for name in ARRAYS}
        bar = progress_bar(total=n_slices, desc=f"{dataset}/{split}", disable=not progress, unit="slice")
        for start in range(0, n_slices, batch_size):
            idx = range(start, min(start + batch_size, n_slices))
            seeds = [base_seed + i for i in idx]
            phantoms = [make_phantom(image_size, s, kind, fov_mm=fov_mm) for s in seeds]
            hu = np.stack([p.hu for p in phantoms])
            ndct, ldct = simulate_pair(
                hu, n0_full=n0_full, dose_fraction=dose_fraction, seed=seeds, pixel_size_mm=fov_mm / image_size,
                mu_water_per_mm=mu_water_per_mm, n_views=n_views, electronic_noise_std=electronic_noise_std,
                circle=True, device=device,
            )
            for j, (i, p) in enumerate(zip(idx, phantoms)):
                arrays["phantom"][i] = p.hu
                arrays["labels"][i] = p.labels
                arrays["ndct"][i] = ndct[j]
                arrays["ldct"][i] = ldct[j]
                writer.add_slice(p.boxes, id=f"{split}-{i:05d}", patient=f"phantom-{seeds[j]}", seed=seeds[j])
            bar.update(len(idx))
        bar.close()
    return open_split(run_dir, split)


def _even_subset(n: int, keep: int) -> list[int]:
    """``keep`` indices spread evenly over ``range(n)`` (all if keep <= 0 or >= n)."""
    if keep <= 0 or keep >= n:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, keep)})


def _pair_by_position(ndct, ldct, patient: str) -> list[tuple[int, int]]:
    """Match NDCT and LDCT slices of one patient by slice position (or order)."""
    if len(ndct) != len(ldct):
        raise DataError(
            f"patient {patient}: {len(ndct)} full-dose slices ({ndct.files[0].parent}) but {len(ldct)} "
            f"low-dose slices ({ldct.files[0].parent}); the pairs must match"
        )
    if ndct.hu.shape[1:] != ldct.hu.shape[1:]:
        raise DataError(
            f"patient {patient}: full-dose images are {ndct.hu.shape[1:]} but low-dose images are {ldct.hu.shape[1:]}"
        )
    if np.isfinite(ndct.positions).all() and np.isfinite(ldct.positions).all():
        gap = np.abs(ndct.positions - ldct.positions).max()
        if gap > 0.5:
            raise DataError(
                f"patient {patient}: full- and low-dose slice positions differ by up to {gap:.2f} mm "
                f"({ndct.files[0].parent} vs {ldct.files[0].parent})"
            )
    return [(i, i) for i in range(len(ndct))]


def build_paired_dicom_split(
    run_dir: str | Path,
    manifest,
    split: str,
    *,
    max_slices_per_patient: int = 0,
    force: bool = False,
    progress: bool = True,
) -> CacheSplit:
    """Read each patient's full- and quarter-dose series of a ``paired_dicom``
    manifest (Mayo-2016 / Mayo-2020), pair them by slice position and cache
    them. ``max_slices_per_patient`` > 0 keeps that many slices spread evenly
    over each patient (for a quick run on real data)."""
    from ldct_nb.data.dicom import read_series

    patients = manifest.patients(split)
    params = dict(
        dataset=manifest.name, split=split, manifest_sha256=manifest.sha256(), hu_window=list(manifest.hu_window),
        max_slices_per_patient=max_slices_per_patient,
        files=[[p.patient, [str(f) for f in p.ndct], [str(f) for f in p.ldct]] for p in patients],
    )
    fp = fingerprint(params)
    if not force and cached_fingerprint(run_dir, split) == fp:
        return open_split(run_dir, split)
    if not patients:
        raise DataError(f"{manifest.path}: split {split!r} of {manifest.name} lists no patient")
    for p in patients:
        if not p.ndct or not p.ldct:
            raise DataError(f"{manifest.path}: patient {p.patient} ({split}) has no full-dose or no low-dose files")
        if len(p.ndct) != len(p.ldct):
            raise DataError(
                f"patient {p.patient}: {len(p.ndct)} full-dose slices ({p.ndct[0].parent}) but {len(p.ldct)} "
                f"low-dose slices ({p.ldct[0].parent}); the pairs must match"
            )
    # One patient in memory at a time: the sizes are known from the file counts.
    keeps = [_even_subset(len(p.ndct), max_slices_per_patient) for p in patients]
    n = sum(len(k) for k in keeps)
    meta = {k: v for k, v in params.items() if k != "files"}
    meta.update(fingerprint=fp, patients=[p.patient for p in patients])
    with SplitWriter(run_dir, split, meta) as writer:
        ndct_arr = ldct_arr = None
        k = 0
        for p, keep in zip(progress_bar(patients, desc=f"{manifest.name}/{split}", disable=not progress), keeps):
            nd, ld = read_series(list(p.ndct)), read_series(list(p.ldct))
            pairs = _pair_by_position(nd, ld, p.patient)
            if ndct_arr is None:
                first, (h, w) = p.patient, nd.hu.shape[1:]
                ndct_arr = writer.array("ndct", (n, h, w), np.float32)
                ldct_arr = writer.array("ldct", (n, h, w), np.float32)
            elif nd.hu.shape[1:] != (h, w):
                raise DataError(
                    f"{manifest.name}/{split}: patient {p.patient} has {nd.hu.shape[1:]} images but patient "
                    f"{first} has {(h, w)}; all patients of a split must have the same image size"
                )
            for i, j in (pairs[q] for q in keep):
                ndct_arr[k], ldct_arr[k] = nd.hu[i], ld.hu[j]
                writer.add_slice(
                    np.zeros((0, 4)), id=f"{p.patient}-{i:04d}", patient=p.patient, ndct_file=str(nd.files[i]),
                    ldct_file=str(ld.files[j]), pixel_size_mm=list(nd.pixel_spacing),
                )
                k += 1
            del nd, ld
    return open_split(run_dir, split)


def build_detection_split(
    run_dir: str | Path,
    manifest,
    split: str,
    *,
    max_slices: int = 0,
    seed: int = 0,
    device: str | None = None,
    force: bool = False,
    progress: bool = True,
) -> CacheSplit:
    """LIDnet's detection sets: read each annotated NDCT image, simulate its
    LDCT at the manifest's N0 (LIDnet Table 1 / section 4), cache both with
    the lesion boxes."""
    from ldct_nb.data.dicom import read_slice
    from ldct_nb.data.simulate import simulate_ldct

    rows = [r for r in manifest.annotations() if r["split"] == split]
    if not rows:
        raise DataError(f"{manifest.name}: the annotation file lists no image for split {split!r}")
    by_image: dict[str, list[dict]] = {}
    for r in rows:
        by_image.setdefault(r["image"], []).append(r)
    images = sorted(by_image)
    images = [images[k] for k in _even_subset(len(images), max_slices)]
    sim = dict(manifest.raw.get("simulation") or {})
    n0 = float(sim.get("n0", 1000))
    params = dict(
        dataset=manifest.name, split=split, manifest_sha256=manifest.sha256(), images=images, n0=n0, seed=seed,
        hu_window=list(manifest.hu_window), mu_water_per_mm=float(sim.get("mu_water_per_mm", 0.0171)),
    )
    fp = fingerprint(params)
    if not force and cached_fingerprint(run_dir, split) == fp:
        return open_split(run_dir, split)
    root = manifest.require_root()
    first, _ = read_slice(root / images[0])
    h, w = first.shape
    meta = {k: v for k, v in params.items() if k != "images"}
    meta["fingerprint"] = fp
    with SplitWriter(run_dir, split, meta) as writer:
        ndct_arr = writer.array("ndct", (len(images), h, w), np.float32)
        ldct_arr = writer.array("ldct", (len(images), h, w), np.float32)
        for k, image in enumerate(progress_bar(images, desc=f"{manifest.name}/{split}", disable=not progress)):
            hu, ds = read_slice(root / image)
            if hu.shape != (h, w):
                raise DataError(f"{root / image}: image is {hu.shape}, expected {(h, w)} like {root / images[0]}")
            spacing = [float(v) for v in getattr(ds, "PixelSpacing", [0.7, 0.7])]
            ndct_arr[k] = hu
            ldct_arr[k] = simulate_ldct(
                hu, n0, seed=seed * 1_000_003 + k, pixel_size_mm=spacing[0],
                mu_water_per_mm=params["mu_water_per_mm"], device=device,
            )
            boxes = np.array([r["box"] for r in by_image[image] if r["box"] is not None], dtype=np.float32)
            writer.add_slice(boxes, id=image, patient=by_image[image][0].get("patient", ""), pixel_size_mm=spacing)
    return open_split(run_dir, split)
