"""Checkpoints written atomically and read with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python values only (no pickled
objects), so ``weights_only=True`` can read it: the training config as a
dict, the step, every network's and optimiser's ``state_dict``, the random
states of Python, NumPy and torch, the metrics so far and the best
validation score. :func:`save_checkpoint` writes it to a temporary file in
the same folder, flushes and ``fsync``\\ s it, renames it over the old file and
``fsync``\\ s the folder: at every instant the path holds either the previous
complete checkpoint or the new one.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldct_nb.errors import ParameterError
from ldct_nb.paths import atomic_write

__all__ = ["FORMAT", "load_checkpoint", "restore_rng_state", "rng_state", "save_checkpoint"]

FORMAT = "ldct_nb.train/1"
"""Written into every checkpoint; a file without it is refused."""


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (plus :data:`FORMAT`) atomically to ``path`` (see the module docstring)."""
    return atomic_write(path, lambda fh: torch.save({"format": FORMAT, **state}, fh))


def load_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Refuses, naming the file, a missing file, one torch cannot read (truncated,
    not a checkpoint) and one without this package's format tag."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"checkpoint {str(path)!r} does not exist")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds here; re-raised naming the file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ParameterError(
            f"checkpoint {str(path)!r} cannot be read with torch.load(weights_only=True): it is truncated, damaged or "
            f"not a checkpoint ({first})"
        ) from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ParameterError(f"{str(path)!r} is not a checkpoint written by ldct_nb.train (format {FORMAT!r})")
    return blob


def rng_state() -> dict[str, Any]:
    """The random states of Python, NumPy (legacy global) and torch (CPU and CUDA), as tensors and lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": _to_lists(random.getstate()),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo :func:`rng_state`."""
    random.setstate(_to_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value):
    return [_to_lists(v) for v in value] if isinstance(value, tuple) else value


def _to_tuples(value):
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value
