"""Torch datasets over the array cache: paired slices, paired patches, detection slices.

Intensities are normalised with an explicit HU window (ASCON: [-1000, 2000] HU
-> [0, 1], section 3.1) by :class:`HUWindow`, whose inverse is exact; by
default the window the cache was built with (the manifest's ``hu_window``). Paired
augmentation applies the *same* flip / rot90 to the LDCT input, the NDCT
target and the tissue labels, so pairs stay aligned.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ldct_nb.data.cache import CacheSplit
from ldct_nb.errors import ParameterError

ASCON_WINDOW = (-1000.0, 2000.0)


@dataclass(frozen=True)
class HUWindow:
    """Linear map of the HU interval [low, high] onto [0, 1].

    ``normalize`` clips to the window first when ``clip`` is true (ASCON clips
    HU to [-1000, 2000]); ``denormalize`` is its inverse for every value inside
    the window (and everywhere when ``clip`` is false): in float64 up to a few
    units in the last place (about 1e-13 HU), so float32 HU values (the cache's
    dtype) come back exactly after rounding to float32.
    """

    low: float = ASCON_WINDOW[0]
    high: float = ASCON_WINDOW[1]
    clip: bool = True

    def __post_init__(self) -> None:
        try:
            ok = float(self.high) > float(self.low)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ParameterError(f"HUWindow: need low < high (HU), got low={self.low!r}, high={self.high!r}")

    @property
    def width(self) -> float:
        return float(self.high) - float(self.low)

    def normalize(self, hu):
        """HU -> [0, 1] (numpy or torch)."""
        if self.clip:
            hu = hu.clip(self.low, self.high)
        return (hu - self.low) / self.width

    def denormalize(self, x):
        """[0, 1] -> HU, the inverse of :meth:`normalize` (see the class docstring)."""
        return x * self.width + self.low

    def __repr__(self) -> str:
        return f"HUWindow([{self.low:g}, {self.high:g}] HU -> [0, 1]{', clipped' if self.clip else ''})"


def paired_augment(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Apply one random element of the dihedral group (flips and rot90) to every
    array of ``arrays`` (each ... x H x W), the same for all of them."""
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = []
    for a in arrays:
        a = np.rot90(a, k, axes=(-2, -1))
        if flip:
            a = a[..., ::-1]
        out.append(np.ascontiguousarray(a))
    return out


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _window(split: CacheSplit, window: HUWindow | None) -> HUWindow:
    """The given window, or by default the HU window the cache was built with (its
    manifest's ``hu_window``), so a data set with another window is not normalised
    with ASCON's silently."""
    if window is None:
        return HUWindow(*split.hu_window)
    if not isinstance(window, HUWindow):
        raise ParameterError(f"window must be an HUWindow or None (the cache's window), got {window!r}")
    return window


class PairedSlices(Dataset):
    """Whole LDCT / NDCT slices: items are dicts with ``ldct`` and ``ndct``
    (1 x H x W float tensors on the window's [0, 1] scale), ``index`` and,
    when the cache has them and ``with_labels`` is set, ``labels`` (H x W)."""

    def __init__(
        self,
        split: CacheSplit,
        *,
        window: HUWindow | None = None,
        augment: bool = False,
        with_labels: bool = False,
        seed: int = 0,
    ) -> None:
        self.split, self.window, self.augment = split, _window(split, window), augment
        self.seed = _check_int("seed", seed, 0)
        if with_labels and split.labels is None:
            raise ParameterError(f"with_labels=True but the cache {split.path} has no tissue labels")
        self.with_labels = with_labels
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (deterministic per seed, epoch and index)."""
        self._epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} slices")
        arrays = [np.asarray(self.split.ldct[index]), np.asarray(self.split.ndct[index])]
        if self.with_labels:
            arrays.append(np.asarray(self.split.labels[index]))
        if self.augment:
            arrays = paired_augment(arrays, np.random.default_rng([self.seed, self._epoch, index]))
        item = {
            "ldct": torch.from_numpy(np.asarray(self.window.normalize(arrays[0]), np.float32)[None]),
            "ndct": torch.from_numpy(np.asarray(self.window.normalize(arrays[1]), np.float32)[None]),
            "index": index,
        }
        if self.with_labels:
            item["labels"] = torch.from_numpy(arrays[2].astype(np.int64))
        return item

    def __repr__(self) -> str:
        return f"PairedSlices({len(self)} slices from {self.split.meta['dataset']}/{self.split.split}, {self.window}, augment={self.augment})"


class PairedPatches(Dataset):
    """Random paired patches (Mayo-2020 training in ASCON uses 256 x 256).

    Item ``i`` takes slice ``i // patches_per_slice`` and draws a patch position
    from a generator seeded by (seed, epoch, i). Background rejection: a patch
    whose fraction of pixels below ``air_hu`` in the NDCT exceeds
    ``max_air_fraction`` is redrawn (up to ``max_tries`` times, then the least
    empty draw is kept). The default ``air_hu`` = -850 HU is ASCON's background
    threshold (0.05 on the [0, 1] scale of [-1000, 2000] HU).
    """

    def __init__(
        self,
        split: CacheSplit,
        *,
        patch_size: int,
        patches_per_slice: int = 1,
        window: HUWindow | None = None,
        augment: bool = True,
        air_hu: float = -850.0,
        max_air_fraction: float = 0.5,
        max_tries: int = 10,
        seed: int = 0,
    ) -> None:
        h, w = split.ndct.shape[1:]
        self.patch_size = _check_int("patch_size", patch_size)
        if self.patch_size > min(h, w):
            raise ParameterError(f"patch_size {patch_size} is larger than the {h}x{w} slices of {split.path}")
        self.patches_per_slice = _check_int("patches_per_slice", patches_per_slice)
        if not 0.0 <= float(max_air_fraction) <= 1.0:
            raise ParameterError(f"max_air_fraction must be in [0, 1], got {max_air_fraction!r}")
        self.split, self.window, self.augment = split, _window(split, window), augment
        self.air_hu, self.max_air_fraction = float(air_hu), float(max_air_fraction)
        self.max_tries = _check_int("max_tries", max_tries)
        self.seed, self._epoch = _check_int("seed", seed, 0), 0

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.split) * self.patches_per_slice

    def position(self, index: int) -> tuple[int, int, int]:
        """(slice, top, left) of item ``index`` for the current epoch."""
        s = index // self.patches_per_slice
        rng = np.random.default_rng([self.seed, self._epoch, index])
        ndct = self.split.ndct[s]
        h, w = ndct.shape
        p = self.patch_size
        best, best_air = (0, 0), 2.0
        for _ in range(self.max_tries):
            top, left = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
            air = float((np.asarray(ndct[top : top + p, left : left + p]) < self.air_hu).mean())
            if air < best_air:
                best, best_air = (top, left), air
            if air <= self.max_air_fraction:
                break
        return s, best[0], best[1]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} patches")
        s, top, left = self.position(index)
        p = self.patch_size
        arrays = [np.asarray(a[s, top : top + p, left : left + p]) for a in (self.split.ldct, self.split.ndct)]
        if self.augment:
            arrays = paired_augment(arrays, np.random.default_rng([self.seed, self._epoch, index, 1]))
        return {
            "ldct": torch.from_numpy(np.asarray(self.window.normalize(arrays[0]), np.float32)[None]),
            "ndct": torch.from_numpy(np.asarray(self.window.normalize(arrays[1]), np.float32)[None]),
            "index": index,
            "origin": (s, top, left),
        }

    def __repr__(self) -> str:
        return (
            f"PairedPatches({len(self)} patches of {self.patch_size}x{self.patch_size} from "
            f"{self.split.meta['dataset']}/{self.split.split}, air < {self.air_hu:g} HU at most "
            f"{self.max_air_fraction:.0%})"
        )


class DetectionSlices(Dataset):
    """Slices with lesion boxes in torchvision's detection format.

    Items are ``(image, target)``: ``image`` a 1 x H x W float tensor (the
    ``source`` image, ``"ndct"`` or ``"ldct"``, on the window's scale) and
    ``target`` a dict with ``boxes`` (N x 4 float, xyxy pixels), ``labels``
    (N int64, the classes of the annotation CSV; 1 = lesion) and ``image_id``. With ``hflip`` a random horizontal
    flip is applied to the image and its boxes together.
    """

    def __init__(
        self,
        split: CacheSplit,
        *,
        source: str = "ndct",
        window: HUWindow | None = None,
        hflip: bool = False,
        seed: int = 0,
    ) -> None:
        if source not in ("ndct", "ldct"):
            raise ParameterError(f"source must be 'ndct' or 'ldct', got {source!r}")
        self.split, self.source, self.window, self.hflip = split, source, _window(split, window), hflip
        self.seed = _check_int("seed", seed, 0)
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the flip draw (deterministic per seed, epoch and index)."""
        self._epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} slices")
        image = np.asarray(getattr(self.split, self.source)[index])
        boxes = self.split.boxes[index].copy()
        if self.hflip and np.random.default_rng([self.seed, self._epoch, index]).integers(2):
            image = np.ascontiguousarray(image[:, ::-1])
            w = image.shape[1]
            boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
        labels = self.split.box_labels[index] if self.split.box_labels else np.ones(len(boxes), np.int64)
        target = {
            "boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.as_tensor(labels, dtype=torch.int64).reshape(-1),
            "image_id": index,
        }
        return torch.from_numpy(np.asarray(self.window.normalize(image), np.float32)[None]), target

    def __repr__(self) -> str:
        n = sum(len(b) for b in self.split.boxes)
        return f"DetectionSlices({len(self)} {self.source} slices, {n} boxes, {self.window})"


def detection_collate(batch):
    """Collate for torchvision detectors: a tuple of images and a tuple of targets."""
    return tuple(zip(*batch))
