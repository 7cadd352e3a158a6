"""One-time conversion of a data set into a fast array cache in ``run_dir/data/<split>/``.

Layout of one split folder::

    meta.json      what was built, from what (fingerprint, manifest checksum, data-stage code
                   version, HU window, shape, slice ids, patients, pixel sizes, dose, what the
                   DICOM reader repaired) and "complete": true
    ndct.npy       float32 S x H x W, HU (memory-mapped when read)
    ldct.npy       float32 S x H x W, HU
    phantom.npy    float32 S x H x W, noise-free HU (synthetic data only)
    labels.npy     uint8   S x H x W, tissue labels (synthetic data only)
    boxes.json     {"boxes": per slice a list of [x1, y1, x2, y2] lesion boxes (pixels, xyxy),
                    "labels": per slice the class of each box (1 = lesion)}

Crash safety. A split is written into a hidden temporary folder
(``.<split>.tmp-<8 hex digits>``): memory maps flushed, every file and the folder
``fsync``-ed, ``meta.json`` written last. Publishing it renames the previous
split aside (``.<split>.old-<8 hex digits>``), renames the new one into place and
removes the old one. A crash at any instant leaves the old or the new complete
split findable: when the split folder is missing, :func:`clean_partial` and
:func:`open_split` put back the newest *complete* leftover (the new one if its
``meta.json`` was written, else the old one) before removing the others, so
leftovers are never deleted while they hold the only complete copy.

Concurrency. Writers hold ``run_dir/data/.lock`` (:mod:`ldct_nb.locks`) from
the temporary folder's creation to the rename, and :func:`prepare_data
<ldct_nb.data.stage.prepare_data>` holds it throughout, so one process never
removes the temporary folder of another; a second writer waits.

Reuse. A split is reused when its fingerprint matches: a checksum of the
build parameters, the manifest's sha256, the version of the data-stage code
(:func:`data_code_version`) and, for real data, every input file's size and
modification time (or its sha256 with ``hash_files``). :func:`open_split`
validates what it opens (shapes against ``meta.json`` and each other, dtypes,
boxes inside the image, readable ``.npy`` files); a builder that finds a
damaged split rebuilds it with a :class:`~ldct_nb.errors.DataWarning`, a reader
refuses it naming the file.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap

from ldct_nb.errors import BusyError, DataError, DataWarning, ParameterError
from ldct_nb.locks import file_lock, holder_pid
from ldct_nb.paths import atomic_write_json, fsync_dir, resolve
from ldct_nb.progress import progress as progress_bar

CACHE_VERSION = 2
ARRAYS = ("ndct", "ldct", "phantom", "labels")
DTYPES = {"ndct": np.float32, "ldct": np.float32, "phantom": np.float32, "labels": np.uint8}
DATA_STAGE_MODULES = ("cache", "dicom", "manifest", "phantom", "simulate", "stage")
"""Modules of :mod:`ldct_nb.data` whose code decides what a cache holds."""
LOCK_NAME = ".lock"
_LEFTOVER = re.compile(r"^\.(?P<split>.+)\.(?P<kind>tmp|old)-[0-9a-f]{8}$")


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
    box_labels: list[np.ndarray] = field(default_factory=list)  # per slice, the class of each box

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


def _code_version(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in DATA_STAGE_MODULES:
        digest.update(name.encode())
        digest.update((folder / f"{name}.py").read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _package_code_version() -> str:  # the code a process runs does not change while it runs
    return _code_version(Path(__file__).parent)


def data_code_version(folder: str | Path | None = None) -> str:
    """A checksum of the source of the data-stage modules (:data:`DATA_STAGE_MODULES`,
    in ``folder``, default this package): a change of the code that converts or
    simulates data invalidates the caches it built."""
    return _package_code_version() if folder is None else _code_version(Path(folder))


def fingerprint(params: dict[str, Any]) -> str:
    """A checksum of everything that determines a split's content: ``params``,
    the cache format and the data-stage code version."""
    blob = json.dumps(
        {"cache_version": CACHE_VERSION, "code_version": data_code_version(), **params}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def file_signature(paths, *, hash_files: bool = False) -> list[list]:
    """``[path, size, mtime_ns]`` of every file (``[path, size, sha256]`` with
    ``hash_files``), for fingerprints: an edited or replaced input file changes it."""
    out = []
    for path in paths:
        path = Path(path)
        try:
            st = path.stat()
        except OSError as exc:
            raise DataError(f"{path}: cannot read the input file ({exc})") from exc
        out.append([str(path), st.st_size, _sha256(path) if hash_files else st.st_mtime_ns])
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def data_lock(run_dir: str | Path):
    """Hold the lock of ``run_dir/data`` (waiting for another writer, with a message)."""
    root = resolve(run_dir) / "data"

    def waiting(pid):
        print(f"cache {root} is being written by process {pid}: waiting for it", flush=True)

    with file_lock(root / LOCK_NAME, wait=True, what=f"cache {root}", on_wait=waiting):
        yield root


def _load(folder: Path) -> CacheSplit:
    """Open and validate the split folder ``folder``; DataError naming the bad file."""
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{meta_path}: missing or corrupt cache metadata ({exc})") from exc
    if not isinstance(meta, dict):
        raise DataError(f"{meta_path}: corrupt cache metadata (a JSON {type(meta).__name__}, expected an object)")
    if not meta.get("complete") or meta.get("cache_version") != CACHE_VERSION:
        raise DataError(
            f"{folder}: incomplete or outdated cache (version {meta.get('cache_version')}, this code writes "
            f"version {CACHE_VERSION})"
        )
    n, shape = meta.get("n_slices"), meta.get("shape")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DataError(f"{meta_path}: n_slices is {n!r}, expected an int >= 1")
    if not (isinstance(shape, list) and len(shape) == 3 and shape[0] == n
            and all(isinstance(v, int) and v > 0 for v in shape)):
        raise DataError(f"{meta_path}: shape is {shape!r}, expected [n_slices, H, W] with n_slices = {n}")
    if len(meta.get("slices") or ()) != n:
        raise DataError(f"{meta_path}: {len(meta.get('slices') or ())} slice records, n_slices says {n}")
    arrays: dict[str, np.ndarray | None] = {}
    for name in ARRAYS:
        path = folder / f"{name}.npy"
        if not path.is_file():
            if name in ("ndct", "ldct"):
                raise DataError(f"{path}: missing from the cache")
            arrays[name] = None
            continue
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            # numpy reads a file without the .npy header as pickled data and suggests loading it unsafely
            why = "no .npy header: not an array file" if "pickle" in str(exc) else str(exc)
            raise DataError(f"{path}: damaged array file ({why})") from exc
        if list(arr.shape) != shape:
            raise DataError(f"{path}: shape {list(arr.shape)}, meta.json says {shape}")
        if arr.dtype != DTYPES[name]:
            raise DataError(f"{path}: dtype {arr.dtype}, expected {np.dtype(DTYPES[name])}")
        arrays[name] = arr
    boxes_path = folder / "boxes.json"
    try:
        raw = json.loads(boxes_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{boxes_path}: missing or corrupt lesion boxes ({exc})") from exc
    boxes, labels = _check_boxes(raw, n, shape[1], shape[2], str(boxes_path))
    return CacheSplit(folder, meta, arrays["ndct"], arrays["ldct"], arrays["phantom"], arrays["labels"], boxes, labels)


def _check_boxes(raw: Any, n: int, h: int, w: int, where: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Boxes and their labels per slice; DataError for a malformed box or one outside the H x W image."""
    if not (isinstance(raw, dict) and isinstance(raw.get("boxes"), list) and isinstance(raw.get("labels"), list)
            and len(raw["boxes"]) == n and len(raw["labels"]) == n):
        raise DataError(f"{where}: expected {{'boxes': [...], 'labels': [...]}} with one entry per slice ({n})")
    boxes, labels = [], []
    for i, (b, lab) in enumerate(zip(raw["boxes"], raw["labels"])):
        try:
            arr = np.asarray(b, dtype=np.float32).reshape(-1, 4)
            lab = np.asarray(lab, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where}: slice {i}: boxes must be [x1, y1, x2, y2] lists ({exc})") from exc
        if len(lab) != len(arr):
            raise DataError(f"{where}: slice {i}: {len(arr)} boxes but {len(lab)} labels")
        bad = ~(np.isfinite(arr).all(1) & (arr[:, 0] >= 0) & (arr[:, 1] >= 0) & (arr[:, 2] <= w)
                & (arr[:, 3] <= h) & (arr[:, 2] > arr[:, 0]) & (arr[:, 3] > arr[:, 1]))
        if bad.any():
            raise DataError(
                f"{where}: slice {i}: box {arr[bad][0].tolist()} is empty or leaves the {h}x{w} image "
                f"(expected 0 <= x1 < x2 <= {w}, 0 <= y1 < y2 <= {h})"
            )
        if (lab < 1).any():
            raise DataError(f"{where}: slice {i}: box labels must be >= 1, got {lab.tolist()}")
        boxes.append(arr)
        labels.append(lab)
    return boxes, labels


def open_split(run_dir: str | Path, split: str) -> CacheSplit:
    """Open a complete cached split (memory-mapped), validated; DataError names what is
    missing or damaged (rerunning notebook 01 rebuilds a damaged split)."""
    _recover_if_needed(run_dir)
    folder = split_dir(run_dir, split)
    if not (folder / "meta.json").is_file():
        available = list_splits(run_dir)
        busy = ""
        if folder.parent.is_dir():
            try:
                with file_lock(folder.parent / LOCK_NAME):
                    pass
            except BusyError:
                busy = f"; process {holder_pid(folder.parent / LOCK_NAME)} is writing the cache now"
        raise DataError(
            f"{folder}: no cached split {split!r} (cached: {available or 'none'}){busy}; run notebook 01_data "
            f"with this run_dir first"
        )
    try:
        return _load(folder)
    except DataError as exc:
        raise DataError(f"{exc}; rerun notebook 01_data with this run_dir: it rebuilds the split") from exc


def list_splits(run_dir: str | Path) -> list[str]:
    """Names of the complete cached splits of a run."""
    _recover_if_needed(run_dir)
    root = resolve(run_dir) / "data"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and (p / "meta.json").is_file())


def cached_fingerprint(run_dir: str | Path, split: str) -> str | None:
    """Fingerprint of an existing complete split, or None."""
    _recover_if_needed(run_dir)
    try:
        meta = json.loads((split_dir(run_dir, split) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return meta.get("fingerprint") if isinstance(meta, dict) and meta.get("complete") else None


def _reuse(run_dir: str | Path, split: str, fp: str, force: bool) -> CacheSplit | None:
    """The cached split when its fingerprint is ``fp`` and it opens cleanly; None when
    it must be (re)built. A damaged split is reported with a DataWarning."""
    folder = split_dir(run_dir, split)
    if force or not folder.exists():
        return None
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError(f"a JSON {type(meta).__name__}, expected an object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        warnings.warn(f"{meta_path}: damaged cache metadata ({exc}); rebuilding split {split!r}", DataWarning,
                      stacklevel=3)
        return None
    if meta.get("fingerprint") != fp or meta.get("cache_version") != CACHE_VERSION:
        return None  # built from other inputs: rebuilt
    try:
        return _load(folder)
    except DataError as exc:
        warnings.warn(f"damaged cache: {exc}; rebuilding split {split!r}", DataWarning, stacklevel=3)
        return None


class SplitWriter:
    """Write one split into a temporary folder, then rename it into place.

    Use as a context manager; arrays are created with :meth:`array` (memory
    maps, so a large real data set never has to fit in memory), per-slice
    metadata is added with :meth:`add_slice`. Leaving the block with an
    exception removes the temporary folder and keeps the previous cache. The
    data lock of the run is held from entering the block to the rename.
    """

    def __init__(self, run_dir: str | Path, split: str, meta: dict[str, Any]):
        self.run_dir = run_dir
        self.final = split_dir(run_dir, split)
        self.tmp = self.final.parent / f".{split}.tmp-{uuid.uuid4().hex[:8]}"
        self.meta = {"split": split, "cache_version": CACHE_VERSION, "code_version": data_code_version(), **meta}
        self.arrays: dict[str, np.memmap] = {}
        self.boxes: list[list[list[float]]] = []
        self.box_labels: list[list[int]] = []
        self.slices: list[dict[str, Any]] = []
        self._lock = None

    def __enter__(self) -> SplitWriter:
        self._lock = data_lock(self.run_dir)
        self._lock.__enter__()
        try:
            self.tmp.mkdir(parents=True)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def array(self, name: str, shape: tuple[int, ...], dtype) -> np.memmap:
        if name not in ARRAYS:
            raise ParameterError(f"SplitWriter.array: name must be one of {ARRAYS}, got {name!r}")
        if np.dtype(dtype) != DTYPES[name]:
            raise ParameterError(f"SplitWriter.array: {name} must be {np.dtype(DTYPES[name])}, got {np.dtype(dtype)}")
        arr = open_memmap(self.tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
        self.arrays[name] = arr
        return arr

    def shrink(self, n: int) -> None:
        """Keep only the first ``n`` slices of every array (when fewer slices were
        read than the arrays were sized for), copying in chunks."""
        for name, arr in list(self.arrays.items()):
            if arr.shape[0] == n:
                continue
            path, part = self.tmp / f"{name}.npy", self.tmp / f"{name}.part.npy"
            small = open_memmap(part, mode="w+", dtype=arr.dtype, shape=(n, *arr.shape[1:]))
            for start in range(0, n, 64):
                small[start:start + 64] = arr[start:min(start + 64, n)]
            small.flush()
            del arr, small
            self.arrays.pop(name)
            os.replace(part, path)
            self.arrays[name] = np.load(path, mmap_mode="r+")

    def add_slice(self, boxes: np.ndarray, box_labels=None, **info: Any) -> None:
        """Record one slice: its lesion boxes (N x 4, xyxy pixels), their classes
        (default 1 = lesion) and metadata (``id``, ``patient``, ...)."""
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        labels = np.ones(len(boxes), dtype=int) if box_labels is None else np.asarray(box_labels).reshape(-1)
        if len(labels) != len(boxes):
            raise ParameterError(f"add_slice: {len(boxes)} boxes but {len(labels)} box_labels")
        self.boxes.append(boxes.round(3).tolist())
        self.box_labels.append([int(v) for v in labels])
        self.slices.append(info)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None:
                self.arrays.clear()
                shutil.rmtree(self.tmp, ignore_errors=True)
                return
            try:
                self._publish()
            except BaseException:
                self.arrays.clear()
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise
        finally:
            self._lock.__exit__(None, None, None)

    def _publish(self) -> None:
        n = len(self.slices)
        shapes = {name: tuple(arr.shape) for name, arr in self.arrays.items()}
        if "ndct" not in shapes or "ldct" not in shapes:
            raise DataError(f"cache {self.final}: ndct and ldct arrays are required, got {sorted(shapes)}")
        ref = shapes["ndct"]
        for name, shape in shapes.items():
            if shape[0] != n:
                raise DataError(f"cache {self.final}: {name} has {shape[0]} slices but {n} were added")
            if shape != ref:
                raise DataError(f"cache {self.final}: {name} is {shape} but ndct is {ref}")
        if len(ref) != 3 or n < 1:
            raise DataError(f"cache {self.final}: expected S x H x W arrays with S >= 1, got {ref}")
        raw_boxes = {"boxes": self.boxes, "labels": self.box_labels}
        _check_boxes(raw_boxes, n, ref[1], ref[2], f"cache {self.final}")
        for name, arr in self.arrays.items():
            arr.flush()
        self.arrays.clear()
        for name in shapes:
            _fsync_file(self.tmp / f"{name}.npy")
        atomic_write_json(self.tmp / "boxes.json", raw_boxes)
        atomic_write_json(  # last: a folder with a complete meta.json is complete
            self.tmp / "meta.json",
            {**self.meta, "n_slices": n, "shape": list(ref), "slices": self.slices, "complete": True},
        )
        fsync_dir(self.tmp)
        _replace_dir(self.tmp, self.final)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_dir(src: Path, dst: Path) -> None:
    """Move the complete folder ``src`` to ``dst``, replacing an existing folder with two
    renames; a crash between them is repaired by :func:`_recover` (see the module docstring)."""
    old = None
    if dst.exists():
        old = dst.parent / f".{dst.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except BaseException:
        if old is not None:  # put the previous cache back
            os.replace(old, dst)
        raise
    fsync_dir(dst.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _leftovers(root: Path) -> dict[str, list[Path]]:
    """Temporary and replaced folders in ``root`` (``run_dir/data``), by split."""
    out: dict[str, list[Path]] = {}
    if root.is_dir():
        for p in root.iterdir():
            m = _LEFTOVER.match(p.name)
            if m and p.is_dir():
                out.setdefault(m["split"], []).append(p)
    return out


def _recover(root: Path) -> list[Path]:
    """With the data lock held: put back the newest complete leftover of every split
    whose folder is missing (an interrupted swap), then remove the leftovers."""
    removed = []
    for split, items in sorted(_leftovers(root).items()):
        final = root / split
        if not final.exists():
            # the new copy (tmp) if it was completed, else the one it replaced (old); newest first
            ranked = sorted(items, key=lambda p: (".tmp-" not in p.name, -p.stat().st_mtime_ns))
            for candidate in ranked:
                try:
                    _load(candidate)
                except DataError:
                    continue
                os.replace(candidate, final)
                fsync_dir(root)
                warnings.warn(f"{final}: restored from {candidate.name}, left complete by an interrupted "
                              f"cache update", DataWarning, stacklevel=3)
                break
        for p in items:
            if p.exists():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def _recover_if_needed(run_dir: str | Path) -> None:
    """Readers: repair an interrupted swap (a split folder missing, leftovers present),
    unless a writer holds the data lock (it is mid-write and completes the swap itself)."""
    root = resolve(run_dir) / "data"
    if not any(not (root / split).exists() for split in _leftovers(root)):
        return
    try:
        with file_lock(root / LOCK_NAME, what=f"cache {root}"):
            _recover(root)
    except BusyError:
        pass


def clean_partial(run_dir: str | Path) -> list[Path]:
    """Remove the folders left by interrupted conversions (after putting back a split
    whose folder an interrupted swap left missing); return the removed folders.
    Holds the data lock, so another process's folder in progress is never touched."""
    with data_lock(run_dir) as root:
        return _recover(root)


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
    lesion_kind: str | None = None,
    filter_name: str = "ramp",
    filter_cutoff: float | None = None,
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
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ParameterError(f"image_size must be an int >= 1, got {image_size!r}")
    params = dict(
        dataset=dataset, split=split, n_slices=n_slices, image_size=image_size, base_seed=base_seed, kind=kind,
        fov_mm=fov_mm, n0_full=n0_full, dose_fraction=dose_fraction, n_views=n_views,
        electronic_noise_std=electronic_noise_std, mu_water_per_mm=mu_water_per_mm,
        hu_window=list(hu_window), manifest_sha256=manifest_sha256,
        lesion_kind=lesion_kind, filter_name=filter_name, filter_cutoff=filter_cutoff,
    )
    fp = fingerprint(params)
    with data_lock(run_dir):  # a damaged or stale split is rebuilt; nobody else writes meanwhile
        cached = _reuse(run_dir, split, fp, force)
        if cached is not None:
            return cached
        meta = {**params, "fingerprint": fp, "tissues": list(TISSUES), "pixel_size_mm": fov_mm / image_size}
        shape = (n_slices, image_size, image_size)
        with SplitWriter(run_dir, split, meta) as writer:
            arrays = {name: writer.array(name, shape, np.uint8 if name == "labels" else np.float32) for name in ARRAYS}
            bar = progress_bar(total=n_slices, desc=f"{dataset}/{split}", disable=not progress, unit="slice")
            for start in range(0, n_slices, batch_size):
                idx = range(start, min(start + batch_size, n_slices))
                seeds = [base_seed + i for i in idx]
                phantoms = [make_phantom(image_size, s, kind, fov_mm=fov_mm, lesion_kind=lesion_kind) for s in seeds]
                hu = np.stack([p.hu for p in phantoms])
                ndct, ldct = simulate_pair(
                    hu, n0_full=n0_full, dose_fraction=dose_fraction, seed=seeds, pixel_size_mm=fov_mm / image_size,
                    mu_water_per_mm=mu_water_per_mm, n_views=n_views, electronic_noise_std=electronic_noise_std,
                    filter_name=filter_name, filter_cutoff=filter_cutoff, circle=True, device=device,
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
    hash_files: bool = False,
    force: bool = False,
    progress: bool = True,
) -> CacheSplit:
    """Read each patient's full- and quarter-dose series of a ``paired_dicom``
    manifest (Mayo-2016 / Mayo-2020), pair them by slice position and cache
    them. ``max_slices_per_patient`` > 0 keeps that many slices spread evenly
    over each patient (for a quick run on real data). The manifest's
    ``slice_thickness_mm`` selects the series where a folder holds several;
    what the DICOM reader repaired or noticed (padding, clamped pixels, missing
    slices) is recorded per patient in ``meta["series"]``."""
    from ldct_nb.data.dicom import read_series

    patients = manifest.patients(split)
    thickness = manifest.raw.get("slice_thickness_mm")
    thickness = float(thickness) if isinstance(thickness, (int, float)) and not isinstance(thickness, bool) else None
    params = dict(
        dataset=manifest.name, split=split, manifest_sha256=manifest.sha256(), variant=manifest.variant,
        hu_window=list(manifest.hu_window), max_slices_per_patient=max_slices_per_patient,
        slice_thickness_mm=thickness, hash_files=bool(hash_files),
        files=[[p.patient, file_signature(p.ndct, hash_files=hash_files), file_signature(p.ldct, hash_files=hash_files)]
               for p in patients],
    )
    fp = fingerprint(params)
    with data_lock(run_dir):
        cached = _reuse(run_dir, split, fp, force)
        if cached is not None:
            return cached
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
        # One patient in memory at a time: each is written to the memory-mapped arrays (sized by the
        # file counts) before the next is read.
        meta = {k: v for k, v in params.items() if k != "files"}
        meta.update(fingerprint=fp, patients=[p.patient for p in patients], series={})
        reports = meta["series"]
        with SplitWriter(run_dir, split, meta) as writer:
            ndct_arr = ldct_arr = None
            k = 0
            for p in progress_bar(patients, desc=f"{manifest.name}/{split}", disable=not progress):
                nd = read_series(list(p.ndct), slice_thickness_mm=thickness)
                ld = read_series(list(p.ldct), slice_thickness_mm=thickness)
                pairs = _pair_by_position(nd, ld, p.patient)
                keep = _even_subset(len(pairs), max_slices_per_patient)
                reports[p.patient] = {"ndct": nd.report(), "ldct": ld.report()}
                if ndct_arr is None:
                    first, (h, w) = p.patient, nd.hu.shape[1:]
                    n = sum(len(_even_subset(len(q.ndct), max_slices_per_patient)) for q in patients)
                    ndct_arr = writer.array("ndct", (n, h, w), np.float32)
                    ldct_arr = writer.array("ldct", (n, h, w), np.float32)
                elif nd.hu.shape[1:] != (h, w):
                    raise DataError(
                        f"{manifest.name}/{split}: patient {p.patient} has {nd.hu.shape[1:]} images but patient "
                        f"{first} has {(h, w)}; all patients of a split must have the same image size"
                    )
                if k + len(keep) > ndct_arr.shape[0]:
                    raise DataError(f"{manifest.name}/{split}: patient {p.patient}: more slices than files")
                for i, j in (pairs[q] for q in keep):
                    ndct_arr[k], ldct_arr[k] = nd.hu[i], ld.hu[j]
                    writer.add_slice(
                        np.zeros((0, 4)), id=f"{p.patient}-{i:04d}", patient=p.patient, ndct_file=str(nd.files[i]),
                        ldct_file=str(ld.files[j]), pixel_size_mm=list(nd.pixel_spacing),
                    )
                    k += 1
                del nd, ld
            writer.shrink(k)  # a series selection may read fewer slices than files were found
    return open_split(run_dir, split)


def _noise_seed(seed: int, key: str) -> int:
    """The noise seed of one image: a hash of the run's ``seed`` and the image's path,
    so no two images (of any split) share noise and a slice's noise does not depend
    on which other slices are kept."""
    return int.from_bytes(hashlib.sha256(f"{int(seed)}:{key}".encode()).digest()[:8], "little") >> 2


def build_detection_split(
    run_dir: str | Path,
    manifest,
    split: str,
    *,
    max_slices: int = 0,
    seed: int = 0,
    hash_files: bool = False,
    device: str | None = None,
    force: bool = False,
    progress: bool = True,
) -> CacheSplit:
    """LIDnet's detection sets: read each annotated NDCT image, simulate its
    LDCT with the manifest's ``simulation`` settings (``n0``, ``n_views``,
    ``electronic_noise_std``, ``mu_water_per_mm``; LIDnet Table 1 /
    section 4), cache both with the lesion boxes and their CSV labels.

    Refused (DataError naming the file): an image without ``PixelSpacing``
    (the simulation needs the pixel size) or with non-square pixels, and a box
    that leaves its image. Each image's noise seed is derived from ``seed``
    and its path (:func:`_noise_seed`), so the splits never share noise."""
    from ldct_nb.data.dicom import read_series
    from ldct_nb.data.simulate import simulate_ldct

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be an int >= 0, got {seed!r}")
    rows = [r for r in manifest.annotations() if r["split"] == split]
    if not rows:
        raise DataError(f"{manifest.name}: the annotation file lists no image for split {split!r}")
    by_image: dict[str, list[dict]] = {}
    for r in rows:
        by_image.setdefault(r["image"], []).append(r)
    images = sorted(by_image)
    images = [images[k] for k in _even_subset(len(images), max_slices)]
    root = manifest.require_root()
    csv_path = root / manifest.raw["annotations"]["file"]
    sim = dict(manifest.raw.get("simulation") or {})
    params = dict(
        dataset=manifest.name, split=split, manifest_sha256=manifest.sha256(), images=images,
        files=file_signature([root / image for image in images], hash_files=hash_files),
        annotations_sha256=_sha256(csv_path), seed=int(seed), hu_window=list(manifest.hu_window),
        n0=float(sim.get("n0", 1000)), mu_water_per_mm=float(sim.get("mu_water_per_mm", 0.0171)),
        n_views=sim.get("n_views"), electronic_noise_std=float(sim.get("electronic_noise_std", 0.0)),
        hash_files=bool(hash_files), filter_name=sim.get("filter_name") or "ramp",
        filter_cutoff=sim.get("filter_cutoff"),
    )
    fp = fingerprint(params)
    with data_lock(run_dir):
        cached = _reuse(run_dir, split, fp, force)
        if cached is not None:
            return cached
        meta = {k: v for k, v in params.items() if k not in ("images", "files")}
        meta["fingerprint"] = fp
        with SplitWriter(run_dir, split, meta) as writer:
            ndct_arr = ldct_arr = None
            for k, image in enumerate(progress_bar(images, desc=f"{manifest.name}/{split}", disable=not progress)):
                path = root / image
                series = read_series([path])  # refuses a missing PixelSpacing; padding -> air, clamped
                hu = series.hu[0]
                if ndct_arr is None:
                    (h, w), first = hu.shape, path
                    ndct_arr = writer.array("ndct", (len(images), h, w), np.float32)
                    ldct_arr = writer.array("ldct", (len(images), h, w), np.float32)
                elif hu.shape != (h, w):
                    raise DataError(f"{path}: image is {hu.shape}, expected {(h, w)} like {first}")
                sy, sx = series.pixel_spacing
                if abs(sy - sx) > 1e-3 * max(sy, sx):
                    raise DataError(
                        f"{path}: PixelSpacing is {sy:g} x {sx:g} mm, expected square pixels (the LDCT "
                        f"simulation uses one pixel size)"
                    )
                boxed = [r for r in by_image[image] if r["box"] is not None]
                for r in boxed:
                    x1, y1, x2, y2 = r["box"]
                    if x2 > w or y2 > h:
                        raise DataError(
                            f"{csv_path}: line {r['line']}: the box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) leaves the "
                            f"{h}x{w} image {path} (x = column < {w}, y = row < {h})"
                        )
                noise_seed = _noise_seed(seed, image)
                ndct_arr[k] = hu
                ldct_arr[k] = simulate_ldct(
                    hu, params["n0"], seed=noise_seed, pixel_size_mm=sx, mu_water_per_mm=params["mu_water_per_mm"],
                    n_views=params["n_views"], electronic_noise_std=params["electronic_noise_std"],
                    filter_name=params["filter_name"], filter_cutoff=params["filter_cutoff"], device=device,
                )
                writer.add_slice(
                    np.array([r["box"] for r in boxed], dtype=np.float32).reshape(-1, 4),
                    box_labels=[r["label"] for r in boxed], id=image, patient=by_image[image][0].get("patient", ""),
                    file=str(path), pixel_size_mm=[sy, sx], noise_seed=noise_seed,
                    padding_pixels=series.padding_pixels, clamped_pixels=series.clamped_pixels,
                )
    return open_split(run_dir, split)
