"""Papermill batch runner: ``python -m ldct_nb run --profile NAME [--only 01,04] [--run-dir DIR]``.

A profile (``notebooks/profiles/NAME.yaml``) gives the parameters of every
notebook::

    description: one line
    run_dir: runs/smoke          # default run folder
    common: {seed: 0, device: auto}   # given to every notebook that has the parameter
    notebooks:
      01_data: {image_size: 64, n_train: 8}

Each notebook gets ``profile``, ``run_dir`` and the common and per-notebook
values that its ``parameters`` cell declares (an unknown name is an error, so
a typo in a profile cannot be silently ignored). Executed notebooks go to
``book/executed/`` (the book shows the latest run) with a copy in
``run_dir/executed/``. On failure the runner names the notebook and the cell,
keeps the partly executed notebook and exits non-zero.

Exit status of ``python -m ldct_nb``: 0 when every notebook ran, 1 when a
notebook failed (or its kernel could not run), 2 for a bad profile or option.
The kernels see ``LDCT_NB_BATCH=1`` and an inline ``MPLBACKEND`` (see
:data:`KERNEL_ENV`) and receive ``run_dir`` as an absolute path.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ldct_nb import provenance
from ldct_nb.errors import ParameterError
from ldct_nb.paths import REPO_ROOT, resolve
from ldct_nb.progress import BATCH_ENV

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PROFILE_DIR = NOTEBOOK_DIR / "profiles"
EXECUTED_DIR = REPO_ROOT / "book" / "executed"
PROFILE_KEYS = {"description", "run_dir", "common", "notebooks"}


@dataclass(frozen=True)
class Profile:
    """A parsed profile file."""

    name: str
    path: Path
    description: str
    run_dir: str
    common: dict[str, Any]
    notebooks: dict[str, dict[str, Any]]

    def __repr__(self) -> str:
        return f"Profile({self.name!r}, run_dir={self.run_dir!r}, notebooks={sorted(self.notebooks)})"


def available_profiles() -> list[str]:
    """Names of the profiles in ``notebooks/profiles``."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def available_notebooks() -> list[Path]:
    """The stage notebooks (``NN_name.ipynb``) in order."""
    return sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def load_profile(name_or_path: str | Path) -> Profile:
    """Load and check a profile by name or path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ParameterError(f"profile {str(name_or_path)!r} not found: available profiles are {available_profiles()}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ParameterError(f"{path}: a profile must be a mapping, got {type(raw).__name__}")
    unknown = set(raw) - PROFILE_KEYS
    if unknown:
        raise ParameterError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(PROFILE_KEYS)}")
    common = raw.get("common") or {}
    notebooks = raw.get("notebooks") or {}
    if not isinstance(common, dict) or not isinstance(notebooks, dict):
        raise ParameterError(f"{path}: 'common' and 'notebooks' must be mappings")
    for key, value in notebooks.items():
        if not isinstance(value, dict):
            raise ParameterError(f"{path}: notebooks.{key} must be a mapping of parameters, got {type(value).__name__}")
    return Profile(
        name=path.stem,
        path=path,
        description=str(raw.get("description", "")),
        run_dir=str(raw.get("run_dir", f"runs/{path.stem}")),
        common=dict(common),
        notebooks={str(k): dict(v) for k, v in notebooks.items()},
    )


def select_notebooks(only: str | None) -> list[Path]:
    """The notebooks to run: all, or those whose number or name is listed in ``only``."""
    notebooks = available_notebooks()
    if not only:
        return notebooks
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    chosen = []
    for w in wanted:
        match = [p for p in notebooks if p.stem == w or p.stem.split("_", 1)[0] == w.zfill(2)]
        if not match:
            names = [p.stem for p in notebooks]
            raise ParameterError(f"--only: no notebook {w!r}; available: {names}")
        chosen.extend(m for m in match if m not in chosen)
    return sorted(chosen)


def notebook_parameters(profile: Profile, notebook: Path, run_dir: str) -> dict[str, Any]:
    """The parameters the profile gives ``notebook``, checked against its parameters cell."""
    import papermill

    declared = set(papermill.inspect_notebook(str(notebook)))
    if not declared:
        raise ParameterError(f"{notebook}: has no cell tagged 'parameters'")
    specific = profile.notebooks.get(notebook.stem, {})
    unknown = set(specific) - declared
    if unknown:
        raise ParameterError(
            f"{profile.path}: notebooks.{notebook.stem} sets {sorted(unknown)}, which the notebook does not "
            f"declare; its parameters are {sorted(declared)}"
        )
    params = {k: v for k, v in profile.common.items() if k in declared}
    params.update(specific)
    params.update({k: v for k, v in {"profile": profile.name, "run_dir": run_dir}.items() if k in declared})
    return params


def run(
    profile_name: str,
    *,
    only: str | None = None,
    run_dir: str | None = None,
    executed_dir: str | Path | None = None,
    log_output: bool = True,
) -> list[Path]:
    """Execute notebooks with a profile; return the executed notebook paths."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    profile = load_profile(profile_name)
    notebooks = select_notebooks(only)
    if not notebooks:
        raise ParameterError(f"no notebooks found in {NOTEBOOK_DIR}")
    run_dir = run_dir or profile.run_dir
    run_path = resolve(run_dir)
    out_dir = resolve(executed_dir) if executed_dir else EXECUTED_DIR
    plans = [(nb, notebook_parameters(profile, nb, str(run_path))) for nb in notebooks]  # check all first
    out_dir.mkdir(parents=True, exist_ok=True)
    (run_path / "executed").mkdir(parents=True, exist_ok=True)
    provenance.record_run(
        run_path,
        profile=profile.name,
        parameters={"common": profile.common, "notebooks": profile.notebooks},
        command=" ".join(sys.argv) if sys.argv else "ldct_nb.runner.run",
    )
    done = []
    with _kernel_environment():
        for nb, params in plans:
            target = out_dir / nb.name
            print(f"[{profile.name}] {nb.stem}: running -> {target}", flush=True)
            start = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(nb),
                    str(target),
                    parameters=params,
                    kernel_name="python3",
                    log_output=log_output,
                    cwd=str(nb.parent),
                    progress_bar=False,
                )
            except PapermillExecutionError as exc:
                shutil.copy2(target, run_path / "executed" / nb.name)
                raise NotebookFailed(nb.stem, exc.cell_index, exc.exec_count, exc.ename, exc.evalue, target) from exc
            except Exception as exc:  # no kernel, dead kernel, timeout: not an error raised by a cell
                kept = None
                if target.is_file():
                    shutil.copy2(target, run_path / "executed" / nb.name)
                    kept = target
                raise NotebookFailed(nb.stem, None, None, type(exc).__name__, str(exc), kept) from exc
            shutil.copy2(target, run_path / "executed" / nb.name)
            print(f"[{profile.name}] {nb.stem}: done in {time.perf_counter() - start:.0f} s", flush=True)
            done.append(target)
    return done


KERNEL_ENV = {
    BATCH_ENV: "1",  # text progress bars, no widgets in the book
    # Figures must be captured into the notebook whatever the caller's MPLBACKEND (Agg would drop them).
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}
"""Environment the kernels inherit from the runner."""


@contextmanager
def _kernel_environment():
    """Set :data:`KERNEL_ENV` for the kernels, and find the ``python3`` kernel of
    this environment before a user-wide one (``JUPYTER_PREFER_ENV_PATH``, as
    ``make`` sets it); the caller's environment is restored afterwards."""
    values = {**KERNEL_ENV, "JUPYTER_PREFER_ENV_PATH": os.environ.get("JUPYTER_PREFER_ENV_PATH", "1")}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class NotebookFailed(RuntimeError):
    """A notebook raised: names the notebook, the cell and the error."""

    def __init__(self, notebook: str, cell_index: int | None, exec_count, ename: str, evalue: str, kept: Path | None):
        self.notebook, self.cell_index, self.kept = notebook, cell_index, kept
        where = (
            f"in cell {cell_index} (execution count {exec_count})" if cell_index is not None
            else "outside its cells (kernel missing, dead or timed out; `make install` registers the python3 kernel)"
        )
        kept_line = f"the partly executed notebook is kept at {kept}" if kept else "no partly executed notebook was written"
        super().__init__(f"notebook {notebook} failed {where}: {ename}: {evalue}\n{kept_line}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m ldct_nb", description="ldct-notebooks command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute notebooks with papermill using a profile")
    p_run.add_argument("--profile", required=True, help=f"profile name ({', '.join(available_profiles())}) or path")
    p_run.add_argument("--only", help="comma-separated notebook numbers or names, e.g. 01,04")
    p_run.add_argument("--run-dir", help="run folder (default: the profile's run_dir)")
    p_run.add_argument("--executed-dir", help="where executed notebooks go (default: book/executed)")
    sub.add_parser("profiles", help="list the profiles")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # papermill logs cell outputs at INFO
    try:
        if args.command == "profiles":
            for name in available_profiles():
                print(f"{name}: {load_profile(name).description}")
            return 0
        run(args.profile, only=args.only, run_dir=args.run_dir, executed_dir=args.executed_dir)
    except NotebookFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
