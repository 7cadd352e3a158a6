"""Inter-process locks on a file (``fcntl.flock``) that name the process holding them.

``file_lock(path)`` takes an exclusive lock on ``path`` (created if needed) and
writes the process id into it, so a second process that finds the lock taken
can say who holds it. The lock is released when the block ends or the process
dies (the kernel drops ``flock`` locks of a dead process, so a crash never
leaves a stale lock). The lock file itself is never deleted: deleting it while
another process waits on it would let two processes hold "the" lock at once.

Within one process the lock is re-entrant (the data stage takes the data lock
and the cache builders it calls take it again). On a system without
``fcntl`` (Windows) the lock is a no-op with a warning.
"""
from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ldct_nb.errors import BusyError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_guard = threading.Lock()
_held: dict[str, list] = {}  # resolved lock path -> [fd, depth]


def holder_pid(path: str | os.PathLike) -> int | None:
    """The process id written into the lock file ``path`` (None if unknown)."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


@contextmanager
def file_lock(
    path: str | os.PathLike,
    *,
    wait: bool = False,
    what: str | None = None,
    on_wait: Callable[[int | None], None] | None = None,
) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` for the duration of the block.

    When another process holds it: with ``wait`` false raise
    :class:`~ldct_nb.errors.BusyError` naming ``what`` (default: the lock
    file) and the holder's process id; with ``wait`` true call
    ``on_wait(pid)`` once and block until the lock is free.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is not None:
        try:
            yield path
        finally:
            with _guard:
                entry[1] -= 1
        return
    if fcntl is None:  # pragma: no cover - Windows
        warnings.warn(f"{path}: file locks are not available on this system; concurrent runs are not detected",
                      stacklevel=3)
        yield path
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = holder_pid(path)
            who = f"process {pid}" if pid is not None else "another process"
            if not wait:
                raise BusyError(
                    f"{what or path} is in use by {who} (lock file {path}); wait until it ends, or let this "
                    f"call wait for it (runner: --wait)"
                ) from None
            if on_wait is not None:
                on_wait(pid)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        with _guard:
            _held[key] = [fd, 1]
        try:
            yield path
        finally:
            with _guard:
                _held.pop(key, None)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
