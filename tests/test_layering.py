"""The package's layering: ``models <- losses <- train``. Networks (``ldct_nb.models``)
import neither the losses nor the training code, not even lazily inside a function;
the losses do not import training.

Two checks: a fresh interpreter imports every module of the lower layer and
``sys.modules`` must hold nothing of the upper ones; and every ``import`` statement
in the lower layer's source (function bodies included, relative imports resolved)
must name no upper-layer module.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import ldct_nb

PACKAGE_DIR = Path(ldct_nb.__file__).parent
LAYERS = [("ldct_nb.models", ("ldct_nb.losses", "ldct_nb.train")), ("ldct_nb.losses", ("ldct_nb.train",))]

PROBE = """
import importlib, json, pkgutil, sys
import {package}
for info in pkgutil.walk_packages({package}.__path__, "{package}."):
    importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


def _is_under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in the file ``path`` of ``module``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found += [(node.lineno, name)] + [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return found


def layer_violations(root: Path, package: str, forbidden: tuple[str, ...]) -> list[str]:
    """``file:line module`` for every import of a ``forbidden`` package in ``package``'s
    source under ``root`` (the folder holding ``ldct_nb``)."""
    folder = root.joinpath(*package.split("."))
    bad = []
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        bad += [f"{path.relative_to(root)}:{line} {name}" for line, name in imported_modules(path, module)
                if _is_under(name, forbidden)]
    return bad


@pytest.mark.parametrize(("package", "forbidden"), LAYERS)
def test_importing_a_lower_layer_loads_no_upper_layer(package, forbidden):
    code = PROBE.format(package=package)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert sum(m.startswith(package + ".") for m in loaded) >= 5  # the probe did import the package's modules
    assert [m for m in loaded if _is_under(m, forbidden)] == [], f"importing {package} loaded an upper layer"


@pytest.mark.parametrize(("package", "forbidden"), LAYERS)
def test_no_import_statement_reaches_an_upper_layer(package, forbidden):
    assert layer_violations(PACKAGE_DIR.parent, package, forbidden) == []


def test_the_source_check_sees_lazy_and_relative_imports(tmp_path):
    """The checker itself, on a tiny package written here: an import inside a function
    body and a relative import both count."""
    models = tmp_path / "ldct_nb" / "models"
    models.mkdir(parents=True)
    (tmp_path / "ldct_nb" / "__init__.py").write_text("")
    (models / "__init__.py").write_text("from . import net\n")
    (models / "net.py").write_text("def f():\n    from ldct_nb.losses.ssim import ssim\n    return ssim\n")
    (models / "rel.py").write_text("from ..train import loop\n")
    assert layer_violations(tmp_path, "ldct_nb.models", ("ldct_nb.losses", "ldct_nb.train")) == [
        "ldct_nb/models/net.py:2 ldct_nb.losses.ssim",
        "ldct_nb/models/net.py:2 ldct_nb.losses.ssim.ssim",
        "ldct_nb/models/rel.py:1 ldct_nb.train",
        "ldct_nb/models/rel.py:1 ldct_nb.train.loop",
    ]
