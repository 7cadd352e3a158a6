"""Tests of ldct_nb.env, ldct_nb.paths, ldct_nb.provenance and ldct_nb.banner."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import random

import numpy as np
import pytest
import torch

from ldct_nb import banner, env, paths, provenance
from ldct_nb.data.manifest import load_manifest
from ldct_nb.errors import DataWarning, ParameterError


@pytest.fixture(autouse=True)
def _restore_torch_determinism():
    """seed_everything switches torch to deterministic kernels globally: undo it after each test."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.benchmark = benchmark


@pytest.fixture
def no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


# ----------------------------------------------------------------- select_device


def test_auto_is_cpu_without_accelerator(no_accelerator):
    assert env.select_device("auto") == torch.device("cpu")
    assert env.select_device(" AUTO ") == torch.device("cpu")


def test_auto_matches_this_machine():
    want = "cuda" if torch.cuda.is_available() else None
    got = env.select_device("auto")
    assert got.type == want if want else got.type in ("cpu", "mps")


@pytest.mark.parametrize("name", ["cuda", "cuda:1", "mps"])
def test_unavailable_accelerator_falls_back_to_cpu(no_accelerator, capsys, name):
    assert env.select_device(name) == torch.device("cpu")
    out = capsys.readouterr().out
    assert f"device {name!r} is not available here" in out and "falling back to CPU" in out


def test_cuda_index_beyond_device_count(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert env.select_device("cuda:0") == torch.device("cuda:0")
    assert capsys.readouterr().out == ""
    assert env.select_device("cuda:1") == torch.device("cpu")
    assert "'cuda:1'" in capsys.readouterr().out


def test_explicit_cpu():
    assert env.select_device("CPU") == torch.device("cpu")


@pytest.mark.parametrize("bad", ["banana", "gpu", "cuda:x", "meta", 0, None])
def test_bad_device_is_refused(bad):
    with pytest.raises(ParameterError, match="device") as err:
        env.select_device(bad)
    assert repr(bad) in str(err.value)


def test_bad_device_message_names_the_parameter():
    with pytest.raises(ParameterError, match=r"^MACNet\(device=\.\.\.\) 'banana' is not a torch device: use 'auto'"):
        env.select_device("banana", name="MACNet(device=...)")


def test_a_torch_device_is_accepted(no_accelerator, capsys):
    # Formerly refused although functions document `device: str | torch.device`.
    assert env.select_device(torch.device("cpu")) == torch.device("cpu")
    assert env.select_device(torch.device("cuda", 0)) == torch.device("cpu")
    assert "'cuda:0' is not available here" in capsys.readouterr().out


# ----------------------------------------------------------------- seeding


def _draws():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist(), torch.randint(0, 10**6, (2,)).tolist()


def test_seed_everything_repeats_all_generators():
    env.seed_everything(123)
    first = _draws()
    env.seed_everything(123)
    assert _draws() == first
    env.seed_everything(124)
    assert _draws() != first
    env.seed_everything(2**40)  # large seeds are fine (numpy takes it modulo 2**32)
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG")


def test_seed_everything_without_determinism():
    torch.use_deterministic_algorithms(False)
    env.seed_everything(0, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("bad", [-1, 1.5, True, "0", None])
def test_bad_seed(bad):
    with pytest.raises(ParameterError, match="seed") as err:
        env.seed_everything(bad)
    assert repr(bad) in str(err.value)


def test_package_versions_and_device_description():
    versions = env.package_versions()
    assert versions["python"].count(".") == 2
    assert versions["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert versions["numpy"] == np.__version__
    assert env.package_versions(("surely-not-a-package-xyz",))["surely-not-a-package-xyz"] == "not installed"
    desc = env.device_description(torch.device("cpu"))
    assert desc.startswith("CPU") and f"{torch.get_num_threads()} threads" in desc


# ----------------------------------------------------------------- paths


def test_resolve():
    assert (paths.REPO_ROOT / "pyproject.toml").is_file()
    p = paths.resolve("runs/x")
    assert p.is_absolute() and p == paths.REPO_ROOT / "runs" / "x"
    assert paths.resolve("runs/../runs/x") == p
    assert paths.resolve("/tmp/elsewhere/run") == paths.Path("/tmp/elsewhere/run")
    assert paths.resolve(paths.Path("/abs")) == paths.Path("/abs")
    assert paths.resolve("~/r") == paths.Path.home() / "r"


def test_resolve_does_not_depend_on_cwd(tmp_path, monkeypatch):
    before = paths.resolve("runs/cpu")
    monkeypatch.chdir(tmp_path)
    assert paths.resolve("runs/cpu") == before


def test_atomic_write_json(tmp_path):
    target = tmp_path / "sub" / "dir" / "f.json"
    paths.atomic_write_json(target, {"b": 1, "a": paths.Path("/x"), "arr": np.arange(3), "n": np.float32(0.5)})
    assert json.loads(target.read_text()) == {"a": "/x", "arr": [0, 1, 2], "b": 1, "n": 0.5}
    assert target.read_text().index('"a"') < target.read_text().index('"b"')  # keys sorted
    assert os.listdir(target.parent) == ["f.json"]  # no temporary file left


def test_interrupted_write_keeps_old_content(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    paths.atomic_write_json(target, {"v": "old"})

    def crash(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        paths.atomic_write_json(target, {"v": "new"})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"v": "old"}
    assert os.listdir(tmp_path) == ["f.json"]
    with pytest.raises(TypeError, match="object"):
        paths.atomic_write_json(target, {"v": object()})  # not serialisable: nothing written
    assert json.loads(target.read_text()) == {"v": "old"} and os.listdir(tmp_path) == ["f.json"]


def test_atomic_write_text(tmp_path):
    target = tmp_path / "t.txt"
    assert paths.atomic_write_text(target, "héllo\n") == target
    paths.atomic_write_text(target, "second")
    assert target.read_text(encoding="utf-8") == "second" and os.listdir(tmp_path) == ["t.txt"]


def test_atomic_writes_get_the_permissions_of_an_ordinary_file(tmp_path):
    # mkstemp makes files private (0600): checkpoints and executed notebooks were unreadable to colleagues.
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives under this process's umask
    fresh = paths.atomic_write_text(tmp_path / "fresh.txt", "x")
    assert stat.S_IMODE(fresh.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    os.chmod(fresh, 0o640)
    paths.atomic_write_text(fresh, "y")  # replacing keeps the file's own permissions
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
    checkpoint = paths.atomic_write(tmp_path / "c.pt", lambda fh: torch.save({"w": torch.ones(1)}, fh))
    assert stat.S_IMODE(checkpoint.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


# ----------------------------------------------------------------- provenance


def test_record_notebook(tmp_path):
    manifest = load_manifest("synthetic")
    params = {"image_size": 32, "steps": 3}
    prov = provenance.record_notebook(
        tmp_path, "01_data", profile="smoke", parameters=params, device=torch.device("cpu"), seeds={"seed": 4},
        manifest=manifest,
    )
    on_disk = json.loads((tmp_path / "provenance.json").read_text())
    assert on_disk == prov
    entry = on_disk["notebooks"]["01_data"]
    assert entry["profile"] == "smoke" and entry["parameters"] == params and entry["seeds"] == {"seed": 4}
    assert entry["device"] == env.device_description(torch.device("cpu"))
    assert entry["manifest"]["sha256"] == hashlib.sha256(manifest.path.read_bytes()).hexdigest()
    assert entry["manifest"]["name"] == "synthetic"
    assert on_disk["packages"]["torch"] == env.package_versions()["torch"]
    assert set(on_disk["git"]) == {"commit", "dirty"}
    provenance.record_notebook(tmp_path, "02_train", profile="smoke", parameters={}, device=torch.device("cpu"))
    both = provenance.load(tmp_path)
    assert set(both["notebooks"]) == {"01_data", "02_train"} and "manifest" not in both["notebooks"]["02_train"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".provenance.lock", "provenance.json"]  # no temp file


def test_record_run_then_notebook(tmp_path):
    provenance.record_run(tmp_path, profile="cpu", parameters={"x": 1}, command="python -m ldct_nb run cpu")
    provenance.record_notebook(tmp_path, "01_data", profile="cpu", parameters={}, device=torch.device("cpu"))
    prov = provenance.load(tmp_path)
    assert prov["profile"] == "cpu" and prov["command"].startswith("python -m ldct_nb")
    assert "01_data" in prov["notebooks"] and prov["profile_parameters"] == {"x": 1}


def test_corrupt_provenance_is_moved_aside_with_a_warning_never_discarded(tmp_path):
    # Formerly replaced by {} silently: a hand-edited or damaged record vanished.
    (tmp_path / "provenance.json").write_text("{ broken")
    with pytest.warns(DataWarning, match="provenance.json: not a JSON object"):
        assert provenance.load(tmp_path) == {}
    assert (tmp_path / "provenance.json").read_text() == "{ broken"  # reading changes nothing
    with pytest.warns(DataWarning, match=r"moved aside to .*provenance\.corrupt-.*\.json"):
        provenance.record_notebook(tmp_path, "01_data", profile="cpu", parameters={}, device=torch.device("cpu"))
    assert "01_data" in provenance.load(tmp_path)["notebooks"]
    aside = list(tmp_path.glob("provenance.corrupt-*.json"))
    assert len(aside) == 1 and aside[0].read_text() == "{ broken"
    (tmp_path / "provenance.json").write_text("[1, 2]")  # valid JSON but not a record
    with pytest.warns(DataWarning, match="moved aside"):
        provenance.record_run(tmp_path, profile="cpu", parameters={}, command="x")
    assert provenance.load(tmp_path / "nowhere") == {}


CONCURRENT_WRITER = """
import sys, time
import torch
from ldct_nb import provenance
real = provenance.atomic_write_json
def slow(path, obj):  # widen the window between reading and writing the record
    time.sleep(0.02)
    return real(path, obj)
provenance.atomic_write_json = slow
provenance.git_commit = lambda repo=None: {"commit": "x", "dirty": False}
for i in range(int(sys.argv[3])):
    provenance.record_notebook(sys.argv[1], f"{sys.argv[2]}-{i}", profile="p", parameters={}, device=torch.device("cpu"))
"""


def test_concurrent_provenance_updates_lose_nothing(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "writer.py"
    script.write_text(CONCURRENT_WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "run"), name, "15"])
             for name in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    names = set(provenance.load(tmp_path / "run")["notebooks"])
    assert names == {f"{n}-{i}" for n in "ab" for i in range(15)}


def test_git_commit(tmp_path):
    here = provenance.git_commit()
    assert set(here) == {"commit", "dirty"}
    if here["dirty"] is not None:  # a git checkout: a 40-hex commit
        assert len(here["commit"]) == 40 and int(here["commit"], 16) >= 0
    assert provenance.git_commit(tmp_path) == {"commit": "unknown (not a git checkout)", "dirty": None}


# ----------------------------------------------------------------- banner


def test_start_notebook_context_and_provenance(tmp_path, monkeypatch, no_accelerator, capsys):
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)  # relative run_dir -> under the (fake) repo root
    ctx = banner.start_notebook("01_data", profile="smoke", run_dir="runs/smoke", seed=3, device="auto",
                                parameters={"image_size": 32}, show=False)
    assert ctx.run_dir == tmp_path / "runs" / "smoke" and ctx.run_dir.is_dir()
    assert ctx.device == torch.device("cpu") and ctx.seed == 3 and ctx.parameters == {"image_size": 32}
    assert "01_data" in repr(ctx) and "smoke" in repr(ctx)
    assert capsys.readouterr().out == ""  # show=False prints nothing
    entry = provenance.load(ctx.run_dir)["notebooks"]["01_data"]
    assert entry["seeds"] == {"seed": 3} and entry["parameters"] == {"image_size": 32}
    a = torch.rand(2)
    banner.start_notebook("01_data", profile="smoke", run_dir=ctx.run_dir, seed=3, device="cpu", show=False)
    assert torch.equal(torch.rand(2), a)  # seeded


def test_start_notebook_shows_rows_as_text(tmp_path, capsys):
    banner.start_notebook("03_x", profile="cpu", run_dir=tmp_path, seed=0, device="cpu", parameters={"steps": 2})
    out = capsys.readouterr().out
    for key in ("notebook: 03_x", "profile: cpu", "git commit:", "versions:", "parameters: steps=2"):
        assert key in out


def test_start_notebook_bad_device(tmp_path):
    with pytest.raises(ParameterError, match="banana"):
        banner.start_notebook("01_data", profile="cpu", run_dir=tmp_path, seed=0, device="banana", show=False)


def test_banner_rows(tmp_path):
    ctx = banner.NotebookContext("01_data", "cpu", tmp_path, torch.device("cpu"), 5, {"image_size": 32})
    prov = {"profile": "cpu", "git": {"commit": "0123456789abcdef0123", "dirty": False}}
    rows = dict(banner.banner_rows(ctx, prov))
    assert rows["profile"] == "cpu" and rows["git commit"] == "0123456789ab"
    assert rows["seed"] == "5" and rows["run folder"] == str(tmp_path)
    assert f"torch {env.package_versions()['torch']}" in rows["versions"] and "python" in rows["versions"]
    assert "not installed" not in rows["versions"]
    assert rows["parameters"] == "image_size=32" and rows["device"].startswith("cpu")
    assert "manifest" not in rows
    manifest = load_manifest("synthetic")
    dirty = dict(banner.banner_rows(ctx, {"profile": "gpu", "git": {"commit": "ab" * 20, "dirty": True}}, manifest))
    assert dirty["profile"] == "cpu (run started as gpu)"
    assert dirty["git commit"] == "abababababab (uncommitted changes)"
    assert dirty["manifest"] == f"synthetic (sha256 {manifest.sha256()[:12]})"
