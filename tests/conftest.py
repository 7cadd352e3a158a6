"""Shared fixtures: a small array cache written with the real :class:`SplitWriter`."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ldct_nb.data.cache import CacheSplit, SplitWriter, open_split

# Subprocesses and notebook kernels started by the tests must import the package under test (this
# checkout), not whichever checkout the environment's editable install happens to point at: the cache's
# fingerprint hashes the data modules' source, so a stale copy writes a different cache.
_ROOT = str(Path(__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join([_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])


def write_cache(
    run_dir: Path,
    ndct: np.ndarray,
    ldct: np.ndarray | None = None,
    *,
    labels: np.ndarray | None = None,
    boxes: list | None = None,
    box_labels: list | None = None,
    split: str = "train",
    dataset: str = "test",
) -> CacheSplit:
    """Write S x H x W HU arrays as a cached split of ``run_dir`` and open it (memory-mapped)."""
    ndct = np.asarray(ndct, np.float32)
    ldct = ndct if ldct is None else np.asarray(ldct, np.float32)
    meta = {"dataset": dataset, "hu_window": [-1000.0, 2000.0], "fingerprint": "handmade"}
    with SplitWriter(run_dir, split, meta) as writer:
        writer.array("ndct", ndct.shape, np.float32)[:] = ndct
        writer.array("ldct", ldct.shape, np.float32)[:] = ldct
        if labels is not None:
            writer.array("labels", labels.shape, np.uint8)[:] = labels
        for i in range(len(ndct)):
            writer.add_slice(np.zeros((0, 4)) if boxes is None else boxes[i],
                             None if box_labels is None else box_labels[i], id=f"{split}-{i}", patient="p0")
    return open_split(run_dir, split)


@pytest.fixture
def make_cache(tmp_path):
    """``make_cache(ndct, ldct=None, labels=None, boxes=None, box_labels=None, split="train")`` -> an opened CacheSplit."""

    def make(ndct, ldct=None, **kwargs) -> CacheSplit:
        return write_cache(tmp_path / "run", ndct, ldct, **kwargs)

    return make
