"""The environment banner every notebook shows after its imports.

It seeds everything, picks the device (falling back to CPU), records the
notebook's provenance in ``run_dir/provenance.json`` and shows a table saying
which profile, parameters, commit, packages and device produced the page.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ldct_nb import provenance
from ldct_nb.env import device_description, package_versions, seed_everything, select_device
from ldct_nb.paths import resolve


@dataclass
class NotebookContext:
    """What a notebook needs after its banner: the resolved run folder and device."""

    notebook: str
    profile: str
    run_dir: Path
    device: torch.device
    seed: int
    parameters: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"NotebookContext({self.notebook}, profile={self.profile!r}, run_dir={str(self.run_dir)!r}, "
            f"device={self.device}, seed={self.seed})"
        )


def start_notebook(
    notebook: str,
    *,
    profile: str,
    run_dir: str | Path,
    seed: int,
    device: str = "auto",
    parameters: dict[str, Any] | None = None,
    manifest=None,
    show: bool = True,
) -> NotebookContext:
    """Seed, choose the device, record provenance and show the banner."""
    seed_everything(seed)
    dev = select_device(device)
    run_path = resolve(run_dir)
    run_path.mkdir(parents=True, exist_ok=True)
    params = dict(parameters or {})
    prov = provenance.record_notebook(
        run_path, notebook, profile=profile, parameters=params, device=dev, seeds={"seed": seed}, manifest=manifest
    )
    ctx = NotebookContext(notebook, profile, run_path, dev, seed, params)
    if show:
        _show(banner_rows(ctx, prov, manifest))
    return ctx


def banner_rows(ctx: NotebookContext, prov: dict[str, Any], manifest=None) -> list[tuple[str, str]]:
    """The banner as (key, value) rows."""
    git = prov.get("git", {})
    commit = str(git.get("commit", "unknown"))[:12] + (" (uncommitted changes)" if git.get("dirty") else "")
    versions = package_versions()
    rows = [
        ("notebook", ctx.notebook),
        ("profile", ctx.profile + ("" if prov.get("profile") in (None, ctx.profile) else f" (run started as {prov['profile']})")),
        ("run folder", str(ctx.run_dir)),
        ("git commit", commit),
        ("device", f"{ctx.device} — {device_description(ctx.device)}"),
        ("seed", str(ctx.seed)),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if v != "not installed")),
    ]
    if manifest is not None:
        rows.append(("manifest", f"{manifest.name} (sha256 {manifest.sha256()[:12]})"))
    rows.append(("parameters", ", ".join(f"{k}={v!r}" for k, v in ctx.parameters.items())))
    return rows


def _show(rows: list[tuple[str, str]]) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display

        if get_ipython() is not None:
            body = "".join(
                f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
                for k, v in rows
            )
            display(HTML(f"<table class='ldct-banner'>{body}</table>"))
            return
    except ImportError:
        pass
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:>{width}}: {v}")
