"""Provenance of a run: what produced the figures (``run_dir/provenance.json``).

The runner records the profile and the command; each notebook adds its own
parameters, seeds, manifest checksum and device when its banner is shown.
Every update reads, changes and rewrites the file under a lock
(``run_dir/.provenance.lock``), so two notebooks writing at once never lose
each other's entries, and the rewrite is atomic, so a crashed notebook never
leaves it broken. A file that is not valid JSON (edited by hand, written by
something else) is never discarded: it is moved aside to
``provenance.corrupt-<time>.json`` with a warning and a new record started.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ldct_nb.env import device_description, package_versions
from ldct_nb.errors import DataWarning
from ldct_nb.locks import file_lock
from ldct_nb.paths import REPO_ROOT, atomic_write_json, resolve

FILE_NAME = "provenance.json"
LOCK_NAME = ".provenance.lock"


def git_commit(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """The commit of the checkout and whether it has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=repo, capture_output=True, text=True, timeout=10, check=True,
            ).stdout.strip()
        )
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown (not a git checkout)", "dirty": None}


def _read(path: Path) -> dict[str, Any] | None:
    """The record at ``path`` ({} if there is none), or None when it is not a JSON object."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def load(run_dir: str | Path) -> dict[str, Any]:
    """The run's provenance record (empty if none yet). A corrupt file is left
    where it is (the next update moves it aside) and gives {} with a warning."""
    path = resolve(run_dir) / FILE_NAME
    prov = _read(path)
    if prov is None:
        warnings.warn(f"{path}: not a JSON object; it will be moved aside at the next update", DataWarning,
                      stacklevel=2)
        return {}
    return prov


def update(run_dir: str | Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read the record, apply ``change`` (which edits the dict in place) and
    write it back atomically, all under the run folder's provenance lock."""
    folder = resolve(run_dir)
    path = folder / FILE_NAME
    with file_lock(folder / LOCK_NAME, wait=True, what=f"provenance record {path}"):
        prov = _read(path)
        if prov is None:
            aside = folder / f"provenance.corrupt-{_dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.json"
            os.replace(path, aside)
            warnings.warn(f"{path}: not a JSON object; moved aside to {aside} and a new record started",
                          DataWarning, stacklevel=3)
            prov = {}
        change(prov)
        atomic_write_json(path, prov)
    return prov


def record_run(run_dir: str | Path, *, profile: str, parameters: dict[str, Any], command: str) -> dict[str, Any]:
    """Start a run's record (called by the runner)."""
    values = {
        "profile": profile,
        "profile_parameters": parameters,
        "command": command,
        "started": _now(),
        "git": git_commit(),
        "packages": package_versions(),
    }
    return update(run_dir, lambda prov: prov.update(values))


def record_notebook(
    run_dir: str | Path,
    notebook: str,
    *,
    profile: str,
    parameters: dict[str, Any],
    device,
    seeds: dict[str, int] | None = None,
    manifest=None,
) -> dict[str, Any]:
    """Add one notebook's entry (parameters, seeds, device, manifest checksum)."""
    entry = {
        "profile": profile,
        "parameters": parameters,
        "device": device_description(device),
        "seeds": seeds or {},
        "executed": _now(),
    }
    if manifest is not None:
        entry["manifest"] = {"name": manifest.name, "path": str(manifest.path), "sha256": manifest.sha256()}
    defaults = {"git": git_commit(), "packages": package_versions()}

    def change(prov: dict[str, Any]) -> None:
        for key, value in defaults.items():
            prov.setdefault(key, value)
        prov.setdefault("notebooks", {})[notebook] = entry

    return update(run_dir, change)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
