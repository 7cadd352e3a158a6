"""Provenance of a run: what produced the figures (``run_dir/provenance.json``).

The runner records the profile and the command; each notebook adds its own
parameters, seeds, manifest checksum and device when its banner is shown. The
file is rewritten atomically, so a crashed notebook never leaves it broken.
"""
from __future__ import annotations

import datetime as _dt
import json
import subprocess
from pathlib import Path
from typing import Any

from ldct_nb.env import device_description, package_versions
from ldct_nb.paths import REPO_ROOT, atomic_write_json, resolve

FILE_NAME = "provenance.json"


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


def load(run_dir: str | Path) -> dict[str, Any]:
    """The run's provenance record (empty if none yet)."""
    path = resolve(run_dir) / FILE_NAME
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}


def record_run(run_dir: str | Path, *, profile: str, parameters: dict[str, Any], command: str) -> dict[str, Any]:
    """Start a run's record (called by the runner)."""
    prov = load(run_dir)
    prov.update(
        {
            "profile": profile,
            "profile_parameters": parameters,
            "command": command,
            "started": _now(),
            "git": git_commit(),
            "packages": package_versions(),
        }
    )
    atomic_write_json(resolve(run_dir) / FILE_NAME, prov)
    return prov


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
    prov = load(run_dir)
    prov.setdefault("git", git_commit())
    prov.setdefault("packages", package_versions())
    entry = {
        "profile": profile,
        "parameters": parameters,
        "device": device_description(device),
        "seeds": seeds or {},
        "executed": _now(),
    }
    if manifest is not None:
        entry["manifest"] = {"name": manifest.name, "path": str(manifest.path), "sha256": manifest.sha256()}
    prov.setdefault("notebooks", {})[notebook] = entry
    atomic_write_json(resolve(run_dir) / FILE_NAME, prov)
    return prov


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
