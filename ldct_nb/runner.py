"""Papermill batch runner: ``python -m ldct_nb run --profile NAME [--only 01,04] [--run-dir DIR] [--wait]``.

A profile (``notebooks/profiles/NAME.yaml``) gives the parameters of every
notebook::

    description: one line
    run_dir: runs/smoke          # default run folder
    common: {seed: 0, device: auto}   # given to every notebook that has the parameter
    notebooks:
      01_data: {image_size: 64, n_train: 8}

Each notebook gets ``profile``, ``run_dir`` and the common and per-notebook
values that its ``parameters`` cell declares. A profile is refused (exit 2,
before anything runs) when it names no notebook, names a notebook that does
not exist, sets a parameter the notebook does not declare, has a ``common``
key that no notebook declares, or gives a value of the wrong type: where the
notebook's default is a number, a numeric string (``"1e6"``) is converted and
any other string is refused, so a string never reaches a number parameter.
Profiles are read with the manifests' YAML loader (``1e6`` is a float,
duplicate keys are refused).

Executed notebooks go to ``book/executed/`` (the book shows the latest
successful run) with a copy in ``run_dir/executed/``. Papermill writes into a
temporary file in ``run_dir/executed/``; the book's copy is replaced
atomically only when the notebook succeeded, so a failed or killed run never
destroys the last good executed notebook nor leaves a truncated one. On
failure the runner names the notebook and the cell, keeps the partly executed
notebook as ``run_dir/executed/NN_name.failed.ipynb`` and exits non-zero.

One run at a time per run folder: the runner holds a lock on
``run_dir/.lock`` (holding its process id); a second run on the same folder
stops with a message naming that process, or waits for it with ``--wait``.

Exit status of ``python -m ldct_nb``: 0 when every notebook ran, 1 when a
notebook failed (or its kernel could not run), 2 for a bad profile or option,
3 when the run folder is in use by another run.
The kernels see ``LDCT_NB_BATCH=1`` and an inline ``MPLBACKEND`` (see
:data:`KERNEL_ENV`) and receive ``run_dir`` as an absolute path.
"""
from __future__ import annotations

import argparse
import ast
import logging
import math
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ldct_nb import provenance
from ldct_nb.data.manifest import StrictYamlLoader
from ldct_nb.errors import BusyError, ParameterError
from ldct_nb.locks import file_lock
from ldct_nb.paths import REPO_ROOT, atomic_copy, resolve
from ldct_nb.progress import BATCH_ENV

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PROFILE_DIR = NOTEBOOK_DIR / "profiles"
EXECUTED_DIR = REPO_ROOT / "book" / "executed"
PROFILE_KEYS = {"description", "run_dir", "common", "notebooks"}
LOCK_NAME = ".lock"
"""The run folder's lock file (holds the running runner's process id)."""


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
    """Load and check a profile by name or path: keys, types, and notebook names
    (every key of ``notebooks`` must be an existing notebook, and there must be one)."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ParameterError(f"profile {str(name_or_path)!r} not found: available profiles are {available_profiles()}")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=StrictYamlLoader) or {}  # noqa: S506
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
    names = [p.stem for p in available_notebooks()]
    if not notebooks:
        raise ParameterError(f"{path}: the profile lists no notebook under 'notebooks'; notebooks: {names}")
    for key, value in notebooks.items():
        if str(key) not in names:
            raise ParameterError(f"{path}: notebooks.{key} names no notebook; valid names: {names}")
        if value is None:
            notebooks[key] = value = {}
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


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The parameters a notebook declares, mapped to their default values
    (:data:`NO_DEFAULT` where the default is not a literal; a :class:`TypedNone` where
    the default is None and the cell annotates the type, ``n0_full: float = None``)."""
    import papermill

    log = logging.getLogger("papermill")
    level = log.level
    log.setLevel(logging.WARNING)  # not an "Input Notebook: ..." line per notebook inspected
    try:
        declared = papermill.inspect_notebook(str(notebook))
    finally:
        log.setLevel(level)
    if not declared:
        raise ParameterError(f"{notebook}: has no cell tagged 'parameters'")
    out = {}
    for name, info in declared.items():
        try:
            out[name] = ast.literal_eval(str(info.get("default")))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            out[name] = NO_DEFAULT
        annotated = str(info.get("inferred_type_name") or "None")
        if out[name] is None and annotated in TypedNone.EXAMPLES:
            out[name] = TypedNone(annotated)
    return out


NO_DEFAULT = object()
"""Default of a notebook parameter whose value is not a Python literal."""


@dataclass(frozen=True)
class TypedNone:
    """The default None of a parameter whose cell states its type (``n0_full: float = None``,
    papermill's ``inferred_type_name``): a profile may give None or a value of that type."""

    type_name: str
    EXAMPLES: ClassVar[dict[str, Any]] = {"int": 1, "float": 1.0, "str": "", "bool": False, "list": []}

    def __repr__(self) -> str:
        return f"None ({self.type_name})"


_NUMBER = re.compile(r"^[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def coerce_parameter(where: str, value: Any, default: Any) -> Any:
    """``value`` checked against the type of the notebook's ``default``.

    A number default takes a number or None; a numeric string (``"1e6"``, as
    YAML 1.1 reads ``1e6``) is converted, any other string refused. An int default
    (every one is a count or a size) takes whole numbers only and passes them on as
    ints (``1e6`` -> 1000000), refusing 64.5. A string default takes a string or None,
    a boolean default a boolean. A None default is checked against the type the cell
    annotates (:class:`TypedNone`), and passed on unchecked when it annotates none.
    ``where`` names the value in messages (``file: notebooks.01_data.n0_full``).
    """
    if isinstance(default, TypedNone):
        if value is None:
            return None
        return _coerce(where, value, TypedNone.EXAMPLES[default.type_name], f"the notebook declares it {default.type_name}")
    if value is None or default is NO_DEFAULT or default is None:
        return value
    return _coerce(where, value, default, f"the notebook's default is {default!r}")


def _coerce(where: str, value: Any, default: Any, said: str) -> Any:
    """:func:`coerce_parameter` for a non-None ``value`` and ``default``; ``said`` is what the
    notebook says of the parameter (``the notebook's default is 128``, ``the notebook declares it float``)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParameterError(f"{where} must be true or false ({said}), got {value!r}")
        return value
    if _is_number(default):
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            text = value.strip().replace("_", "")
            value = int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
        if not _is_number(value) or not math.isfinite(value):
            raise ParameterError(
                f"{where} must be a number ({said}), got {type(value).__name__} {value!r}"
            )
        if isinstance(default, int):
            if value != int(value):
                raise ParameterError(f"{where} must be a whole number ({said}), got {value!r}")
            return int(value)
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ParameterError(
                f"{where} must be a string ({said}), got {type(value).__name__} "
                f"{value!r}; quote it in the profile"
            )
        return value
    if isinstance(default, (list, tuple)) and default and all(_is_number(v) for v in default):
        if not isinstance(value, (list, tuple)):
            raise ParameterError(f"{where} must be a list of numbers like the notebook's default {default!r}, got {value!r}")
        return [_coerce(f"{where}[{i}]", v, default[0], said) for i, v in enumerate(value)]
    if isinstance(default, (list, tuple)) and not isinstance(value, (list, tuple)):
        raise ParameterError(f"{where} must be a list ({said}), got {type(value).__name__} {value!r}; "
                             "write [a, b] in the profile")
    return value


def notebook_parameters(
    profile: Profile, notebook: Path, run_dir: str, declared: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The parameters the profile gives ``notebook``, checked against its parameters cell
    (names and types, see :func:`coerce_parameter`)."""
    declared = declared_parameters(notebook) if declared is None else declared
    specific = profile.notebooks.get(notebook.stem, {})
    unknown = set(specific) - set(declared)
    if unknown:
        raise ParameterError(
            f"{profile.path}: notebooks.{notebook.stem} sets {sorted(unknown)}, which the notebook does not "
            f"declare; its parameters are {sorted(declared)}"
        )
    params = {
        k: coerce_parameter(f"{profile.path}: common.{k} (for {notebook.stem})", v, declared[k])
        for k, v in profile.common.items() if k in declared
    }
    params.update({
        k: coerce_parameter(f"{profile.path}: notebooks.{notebook.stem}.{k}", v, declared[k])
        for k, v in specific.items()
    })
    params.update({k: v for k, v in {"profile": profile.name, "run_dir": run_dir}.items() if k in declared})
    return params


def check_profile(profile: Profile) -> dict[str, dict[str, Any]]:
    """Check the profile against every notebook (not only those that will run):
    a ``common`` key must be declared by at least one notebook. Returns each
    notebook's declared parameters (name -> default)."""
    declared = {nb.stem: declared_parameters(nb) for nb in available_notebooks()}
    for key in profile.common:
        if not any(key in params for params in declared.values()):
            raise ParameterError(
                f"{profile.path}: common.{key} is declared by no notebook ({sorted(declared)}); "
                f"their parameters are {sorted(set().union(*declared.values()))}"
            )
    for nb in available_notebooks():  # names and types of every notebook's values
        notebook_parameters(profile, nb, "run_dir", declared[nb.stem])
    return declared


def run(
    profile_name: str,
    *,
    only: str | None = None,
    run_dir: str | None = None,
    executed_dir: str | Path | None = None,
    log_output: bool = True,
    wait: bool = False,
) -> list[Path]:
    """Execute notebooks with a profile; return the executed notebook paths.

    Holds the lock of ``run_dir`` throughout (:class:`~ldct_nb.errors.BusyError`
    when another run holds it, unless ``wait``)."""
    profile = load_profile(profile_name)
    notebooks = select_notebooks(only)
    if not notebooks:
        raise ParameterError(f"no notebooks found in {NOTEBOOK_DIR}")
    declared = check_profile(profile)
    run_dir = run_dir or profile.run_dir
    run_path = resolve(run_dir)
    out_dir = resolve(executed_dir) if executed_dir else EXECUTED_DIR
    plans = [(nb, notebook_parameters(profile, nb, str(run_path), declared[nb.stem])) for nb in notebooks]

    def waiting(pid):
        print(f"[{profile.name}] run folder {run_path} is in use by process {pid}: waiting for it", flush=True)

    with file_lock(run_path / LOCK_NAME, wait=wait, what=f"run folder {run_path}", on_wait=waiting):
        return _run_locked(profile, plans, run_path, out_dir, log_output)


def _run_locked(profile: Profile, plans, run_path: Path, out_dir: Path, log_output: bool) -> list[Path]:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    kept_dir = run_path / "executed"
    kept_dir.mkdir(parents=True, exist_ok=True)
    for stale in kept_dir.glob(".*.running-*.ipynb"):  # left by a killed run (we hold the lock)
        stale.unlink(missing_ok=True)
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
            work = kept_dir / f".{nb.stem}.running-{os.getpid()}.ipynb"
            failed = kept_dir / f"{nb.stem}.failed.ipynb"
            print(f"[{profile.name}] {nb.stem}: running -> {target}", flush=True)
            start = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(nb),
                    str(work),
                    parameters=params,
                    kernel_name="python3",
                    log_output=log_output,
                    cwd=str(nb.parent),
                    progress_bar=False,
                )
            except PapermillExecutionError as exc:
                kept = _keep_failed(work, failed)
                raise NotebookFailed(nb.stem, exc.cell_index, exc.exec_count, exc.ename, exc.evalue, kept,
                                     target) from exc
            except Exception as exc:  # no kernel, dead kernel, timeout: not an error raised by a cell
                kept = _keep_failed(work, failed)
                raise NotebookFailed(nb.stem, None, None, type(exc).__name__, str(exc), kept, target) from exc
            except BaseException:  # Ctrl-C: keep what was executed, leave the book's copy alone
                _keep_failed(work, failed)
                raise
            atomic_copy(work, target)  # the book's copy changes only now, in one rename
            os.replace(work, kept_dir / nb.name)
            failed.unlink(missing_ok=True)  # an older failure of this notebook is outdated
            print(f"[{profile.name}] {nb.stem}: done in {time.perf_counter() - start:.0f} s", flush=True)
            done.append(target)
    return done


def _keep_failed(work: Path, failed: Path) -> Path | None:
    """Move the partly executed notebook to ``failed`` (None when papermill wrote none)."""
    if not work.is_file():
        return None
    os.replace(work, failed)
    return failed


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

    def __init__(self, notebook: str, cell_index: int | None, exec_count, ename: str, evalue: str, kept: Path | None,
                 book_copy: Path | None = None):
        self.notebook, self.cell_index, self.kept = notebook, cell_index, kept
        where = (
            f"in cell {cell_index} (execution count {exec_count})" if cell_index is not None
            else "outside its cells (kernel missing, dead or timed out; `make install` registers the python3 kernel)"
        )
        kept_line = f"the partly executed notebook is kept at {kept}" if kept else "no partly executed notebook was written"
        if book_copy is not None:
            kept_line += (f"; {book_copy} still holds the last successful run" if book_copy.is_file()
                          else f"; {book_copy} was not written")
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
    p_run.add_argument("--wait", action="store_true", help="wait for another run that holds the run folder")
    sub.add_parser("profiles", help="list the profiles")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # papermill logs cell outputs at INFO
    try:
        if args.command == "profiles":
            for name in available_profiles():
                print(f"{name}: {load_profile(name).description}")
            return 0
        run(args.profile, only=args.only, run_dir=args.run_dir, executed_dir=args.executed_dir, wait=args.wait)
    except NotebookFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
