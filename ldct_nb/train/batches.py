"""Training batches that are a pure function of (seed, step).

Batch ``k`` holds the global sample positions ``k * B ... k * B + B - 1`` of an
endless sequence of epochs; each epoch is a permutation of the training split
drawn from ``(seed, epoch)``, and each item's patch position and paired
flip / rot90 come from :class:`~ldct_nb.data.datasets.PairedPatches` (or
:class:`~ldct_nb.data.datasets.PairedSlices` for whole slices) with the same
epoch. Nothing about the data stream needs saving: a run resumed at step
``k`` sees exactly the batches an uninterrupted run sees, and under data
parallelism rank ``r`` of ``W`` takes the ``r``-th contiguous ``B / W`` of the
same global batch, so the global batch does not depend on the number of
processes.
"""
from __future__ import annotations

import numpy as np
import torch

from ldct_nb.data.cache import CacheSplit
from ldct_nb.data.datasets import PairedPatches, PairedSlices
from ldct_nb.errors import ParameterError

__all__ = ["BatchStream", "validation_batches"]


class BatchStream:
    """Deterministic training batches from a cached split.

    Args:
        split: the training :class:`~ldct_nb.data.cache.CacheSplit`.
        batch_size: the global batch size B.
        patch_size: square patch side, or None for whole slices.
        seed: the stream's seed.
        augment: paired dihedral augmentation.
        rank, world_size: this process's share of the global batch.
        multiple: patch sides and slice sides must be multiples of this
            (16 for MAC-Net's four down-samplings).
    """

    def __init__(
        self,
        split: CacheSplit,
        *,
        batch_size: int,
        patch_size: int | None,
        seed: int = 0,
        augment: bool = True,
        rank: int = 0,
        world_size: int = 1,
        multiple: int = 1,
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ParameterError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
        if batch_size % world_size:
            raise ParameterError(
                f"batch_size {batch_size} must be divisible by the number of processes ({world_size}), "
                "so that every process gets the same share of the global batch"
            )
        h, w = split.ndct.shape[1:]
        side = patch_size if patch_size is not None else None
        if side is not None and side % multiple:
            raise ParameterError(f"patch_size {patch_size} must be a multiple of {multiple} for this method")
        if side is None and (h % multiple or w % multiple):
            raise ParameterError(
                f"whole slices of {h} x {w} pixels are not multiples of {multiple}, which this method needs: "
                f"set patch_size to a multiple of {multiple}"
            )
        if side is not None:
            self.dataset = PairedPatches(split, patch_size=side, augment=augment, seed=seed)
        else:
            self.dataset = PairedSlices(split, augment=augment, seed=seed)
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.n = len(split)
        if self.n < 1:
            raise ParameterError(f"the training split {split.path} holds no slices")
        self._perm: tuple[int, np.ndarray] | None = None

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, epoch, 7]).permutation(self.n))
        return self._perm[1]

    def indices(self, step: int) -> list[tuple[int, int]]:
        """(epoch, item index) of every sample of this process's share of batch ``step``."""
        share = self.batch_size // self.world_size
        first = step * self.batch_size + self.rank * share
        out = []
        for p in range(first, first + share):
            epoch = p // self.n
            out.append((epoch, int(self._permutation(epoch)[p % self.n])))
        return out

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ldct, ndct)``: this process's share of batch ``step``, N x 1 x H x W on [0, 1]."""
        items = []
        for epoch, index in self.indices(step):
            self.dataset.set_epoch(epoch)
            items.append(self.dataset[index])
        return torch.stack([it["ldct"] for it in items]), torch.stack([it["ndct"] for it in items])

    @property
    def epoch_steps(self) -> float:
        """Steps per pass over the training split."""
        return self.n / self.batch_size

    def __repr__(self) -> str:
        return (f"BatchStream(batch {self.batch_size} of {self.dataset!r}, seed {self.seed}, "
                f"rank {self.rank}/{self.world_size})")


def validation_batches(split: CacheSplit, *, max_slices: int | None = None, batch_size: int = 4):
    """Whole slices of the validation split, ``(ldct, ndct)`` in chunks of ``batch_size``
    (the first ``max_slices`` slices, or all), on the cache window's [0, 1] scale."""
    ds = PairedSlices(split)
    n = len(ds) if max_slices is None else min(len(ds), int(max_slices))
    if n < 1:
        raise ParameterError(f"the validation split {split.path} holds no slices")
    for start in range(0, n, batch_size):
        items = [ds[i] for i in range(start, min(n, start + batch_size))]
        yield torch.stack([it["ldct"] for it in items]), torch.stack([it["ndct"] for it in items])
