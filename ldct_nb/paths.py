"""Where things live: the repository root, run directories, atomic file writes
(temporary file, ``fsync``, rename, ``fsync`` of the folder)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The checkout the package is installed from (editable install)."""


def resolve(path: str | os.PathLike[str]) -> Path:
    """An absolute path: relative paths are taken from the repository root, so a
    notebook finds ``runs/cpu`` whether it runs from ``notebooks/``, from
    ``book/executed/`` or under papermill."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p).resolve()


def _process_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _process_umask()  # read once, at import: os.umask can only be read by setting it


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(fh)`` on a temporary binary file in ``path``'s folder, flush and
    ``fsync`` it, :func:`os.replace` it over ``path`` and ``fsync`` the folder: at every
    instant ``path`` holds its previous complete content or the new one, and an
    interrupted write leaves no temporary file behind. The file keeps the permissions of
    the one it replaces, or gets those of a file created with :func:`open` (``mkstemp``
    alone would make it private to the user, unreadable to a colleague on a shared box)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_UMASK
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), mode)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`), so a reader
    never sees a half-written file and an interrupted write keeps the previous version."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Copy ``src`` to ``dst`` atomically (:func:`atomic_write`): ``dst`` is at every
    instant either its previous content or a complete copy of ``src``."""
    src = Path(src)

    def copy(out: BinaryIO) -> None:
        with open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)

    dst = atomic_write(dst, copy)
    shutil.copystat(src, dst)
    return dst


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """``fsync`` a folder, so the renames and new names in it survive a power cut
    (a no-op where folders cannot be opened, e.g. on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """:func:`atomic_write_text` of ``obj`` as indented, key-sorted JSON."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
