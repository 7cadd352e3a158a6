"""Progress bars that suit where the code runs.

Interactively (Jupyter, terminal) this is :func:`tqdm.auto.tqdm`: a widget in
a notebook, text in a terminal. Under the batch runner (environment variable
``LDCT_NB_BATCH=1``, set by :mod:`ldct_nb.runner`) widgets would be dead
JavaScript in the static book, so bars are plain text on stderr, updated at
most every 10 s (they show in the runner's log, not in the book).
"""
from __future__ import annotations

import os
import sys

BATCH_ENV = "LDCT_NB_BATCH"


def in_batch() -> bool:
    """True when running under ``python -m ldct_nb run``."""
    return os.environ.get(BATCH_ENV) == "1"


def progress(iterable=None, **kwargs):
    """A tqdm progress bar (see the module docstring); keywords go to tqdm."""
    if in_batch():
        from tqdm import tqdm

        kwargs.setdefault("mininterval", 10.0)
        kwargs.setdefault("file", sys.stderr)
        return tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
