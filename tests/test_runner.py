"""The papermill runner: profiles, notebook selection, parameters, failures, provenance."""
from __future__ import annotations

import json
import os

import nbformat
import pytest
import yaml

from ldct_nb import runner
from ldct_nb.errors import BusyError, ParameterError


def test_every_shipped_profile_matches_the_notebooks_parameters():
    # A typo in a profile (a parameter no notebook declares) must be caught here, not at run time.
    assert {"smoke", "cpu", "gpu", "mayo2016", "mayo2020", "pe_ct", "l_ct_a", "l_ct_g"} <= set(runner.available_profiles())
    for name in runner.available_profiles():
        profile = runner.load_profile(name)
        for nb in runner.available_notebooks():
            params = runner.notebook_parameters(profile, nb, "/tmp/run")
            assert params["profile"] == name
            assert params["run_dir"] == "/tmp/run"


def test_profile_values_reach_the_notebook_and_common_values_are_filtered():
    profile = runner.load_profile("smoke")
    nb = runner.select_notebooks("01")[0]
    params = runner.notebook_parameters(profile, nb, "runs/x")
    assert params["image_size"] == profile.notebooks["01_data"]["image_size"]
    assert params["seed"] == profile.common["seed"]


def test_unknown_profile_lists_the_available_ones():
    with pytest.raises(ParameterError, match="smoke"):
        runner.load_profile("no-such-profile")


def test_profile_with_unknown_key_or_parameter_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"comon": {"seed": 0}}))
    with pytest.raises(ParameterError, match="comon"):
        runner.load_profile(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({"notebooks": {"01_data": {"imagesize": 32}}}))
    with pytest.raises(ParameterError, match="imagesize"):
        runner.notebook_parameters(runner.load_profile(typo), runner.select_notebooks("01")[0], "r")
    broken = tmp_path / "broken.yaml"
    broken.write_text("notebooks: [unclosed\n")
    with pytest.raises(ParameterError, match="broken.yaml"):
        runner.load_profile(broken)


def test_select_notebooks_by_number_or_name():
    assert [p.stem for p in runner.select_notebooks("01")] == ["01_data"]
    assert [p.stem for p in runner.select_notebooks("01_data")] == ["01_data"]
    assert runner.select_notebooks(None) == runner.available_notebooks()
    with pytest.raises(ParameterError, match="99"):
        runner.select_notebooks("99")


def _tiny_notebook(path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "x"  # profile\nrun_dir = "r"  # run folder\nvalue = 1  # a number')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def tiny_project(tmp_path, monkeypatch):
    nb_dir = tmp_path / "notebooks"
    (nb_dir / "profiles").mkdir(parents=True)
    (nb_dir / "profiles" / "t.yaml").write_text(yaml.safe_dump({"notebooks": {"01_ok": {"value": 41}}}))
    monkeypatch.setattr(runner, "NOTEBOOK_DIR", nb_dir)
    monkeypatch.setattr(runner, "PROFILE_DIR", nb_dir / "profiles")
    return tmp_path


def test_run_injects_parameters_writes_copies_and_provenance(tiny_project):
    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "print('answer', value + 1)")
    out = runner.run("t", run_dir=str(tiny_project / "run"), executed_dir=tiny_project / "executed", log_output=False)
    executed = nbformat.read(out[0], as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "answer 42" in text
    assert (tiny_project / "run" / "executed" / "01_ok.ipynb").is_file()
    prov = json.loads((tiny_project / "run" / "provenance.json").read_text())
    assert prov["profile"] == "t" and "commit" in prov["git"] and "torch" in prov["packages"]


def _outputs(path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_failure_names_notebook_and_cell_keeps_the_failed_notebook_and_the_last_good_one(tiny_project, capsys):
    nb_path, book = tiny_project / "notebooks" / "01_ok.ipynb", tiny_project / "executed" / "01_ok.ipynb"
    run_dir = tiny_project / "run"
    _tiny_notebook(nb_path, "print('good run', value)")
    runner.run("t", run_dir=str(run_dir), executed_dir=tiny_project / "executed", log_output=False)
    good = book.read_bytes()
    _tiny_notebook(nb_path, "print('started')\nraise ValueError('boom from the test')")
    with pytest.raises(runner.NotebookFailed) as info:
        runner.run("t", run_dir=str(run_dir), executed_dir=tiny_project / "executed", log_output=False)
    message = str(info.value)
    assert "01_ok" in message and "cell" in message and "boom from the test" in message
    assert "still holds the last successful run" in message
    # The book's copy is the last good run, untouched; the failed one is kept in the run folder.
    assert book.read_bytes() == good
    failed = run_dir / "executed" / "01_ok.failed.ipynb"
    assert info.value.kept == failed and "boom from the test" in json.dumps(nbformat.read(failed, as_version=4))
    assert "good run 41" in _outputs(run_dir / "executed" / "01_ok.ipynb")
    assert not list((run_dir / "executed").glob(".*running*"))
    code = runner.main(["run", "--profile", "t", "--run-dir", str(tiny_project / "run2"),
                        "--executed-dir", str(tiny_project / "executed2")])
    assert code == 1
    assert "boom from the test" in capsys.readouterr().err
    assert not (tiny_project / "executed2" / "01_ok.ipynb").exists()  # a failed first run publishes nothing
    _tiny_notebook(nb_path, "print('fixed')")  # a later success replaces both copies, the failure is outdated
    runner.run("t", run_dir=str(run_dir), executed_dir=tiny_project / "executed", log_output=False)
    assert "fixed" in _outputs(book) and not failed.exists()


KILL_SCRIPT = """
import sys
from pathlib import Path
from ldct_nb import runner
nb_dir = Path(sys.argv[1])
runner.NOTEBOOK_DIR, runner.PROFILE_DIR = nb_dir, nb_dir / "profiles"
runner.run("t", run_dir=sys.argv[2], executed_dir=sys.argv[3], log_output=False, wait="--wait" in sys.argv)
"""


def test_a_killed_run_leaves_the_last_good_executed_notebook_intact(tiny_project):
    import signal
    import subprocess
    import sys
    import time

    nb_path, book = tiny_project / "notebooks" / "01_ok.ipynb", tiny_project / "executed" / "01_ok.ipynb"
    run_dir = tiny_project / "run"
    _tiny_notebook(nb_path, "print('good run', value)")
    runner.run("t", run_dir=str(run_dir), executed_dir=tiny_project / "executed", log_output=False)
    good = book.read_bytes()
    flag = tiny_project / "started"
    _tiny_notebook(nb_path, f"import pathlib, time\nprint('long run')\npathlib.Path({str(flag)!r}).touch()\ntime.sleep(120)")
    script = tiny_project / "kill_me.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(tiny_project / "notebooks"), str(run_dir),
                             str(tiny_project / "executed")], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():  # the kernel is inside the long cell: papermill has written its file
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel, no cleanup
        proc.wait()
    assert book.read_bytes() == good  # still the complete last good run
    assert "good run 41" in _outputs(book)
    assert list((run_dir / "executed").glob(".01_ok.running-*.ipynb"))  # papermill's file went to the run folder
    _tiny_notebook(nb_path, "print('after the kill')")  # the lock died with the process; leftovers are cleaned
    runner.run("t", run_dir=str(run_dir), executed_dir=tiny_project / "executed", log_output=False)
    assert "after the kill" in _outputs(book)
    assert not list((run_dir / "executed").glob(".*running*"))


def _hold_lock(path, seconds: float):
    """A separate process that holds the lock ``path`` for ``seconds``; returns it once it holds it."""
    import subprocess
    import sys

    code = ("import sys, time\nfrom ldct_nb.locks import file_lock\n"
            "with file_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(float(sys.argv[2]))\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_the_same_run_dir_is_refused_naming_the_holder(tiny_project, capsys):
    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "print('ran')")
    run_dir = tiny_project / "run"
    holder = _hold_lock(run_dir / runner.LOCK_NAME, 60)
    try:
        with pytest.raises(BusyError, match=rf"run folder {run_dir} is in use by process {holder.pid}"):
            runner.run("t", run_dir=str(run_dir), executed_dir=tiny_project / "executed", log_output=False)
        assert runner.main(["run", "--profile", "t", "--run-dir", str(run_dir),
                            "--executed-dir", str(tiny_project / "executed")]) == 3
        err = capsys.readouterr().err
        assert f"process {holder.pid}" in err and "--wait" in err
        assert not (tiny_project / "executed" / "01_ok.ipynb").exists()
    finally:
        holder.kill()
        holder.wait()


def test_wait_waits_for_the_run_that_holds_the_run_dir(tiny_project, capsys):
    import time

    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "print('ran')")
    run_dir = tiny_project / "run"
    holder = _hold_lock(run_dir / runner.LOCK_NAME, 3)
    start = time.monotonic()
    try:
        out = runner.run("t", run_dir=str(run_dir), executed_dir=tiny_project / "executed", log_output=False,
                         wait=True)
    finally:
        holder.wait()
    assert holder.returncode == 0  # the holder was not disturbed: we waited for it to finish
    assert time.monotonic() - start > 1.0
    assert f"in use by process {holder.pid}: waiting" in capsys.readouterr().out
    assert "ran" in _outputs(out[0])


def test_main_reports_bad_arguments_without_a_traceback(capsys):
    assert runner.main(["run", "--profile", "no-such-profile"]) == 2
    assert "no-such-profile" in capsys.readouterr().err


def test_kernel_sees_batch_env_inline_backend_and_absolute_run_dir_and_env_is_restored(tiny_project, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv(runner.BATCH_ENV, raising=False)
    _tiny_notebook(
        tiny_project / "notebooks" / "01_ok.ipynb",
        "import os, pathlib\n"
        "print('batch', os.environ.get('LDCT_NB_BATCH'), 'backend', os.environ.get('MPLBACKEND'))\n"
        "print('absolute', pathlib.Path(run_dir).is_absolute(), run_dir)",
    )
    # Relative run folders are taken from the repository root; here from the temporary project.
    monkeypatch.setattr(runner, "resolve", lambda p: tiny_project / p)
    out = runner.run("t", run_dir="relative/run", executed_dir=tiny_project / "executed", log_output=False)
    executed = nbformat.read(out[0], as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "batch 1 backend module://matplotlib_inline.backend_inline" in text
    assert "absolute True" in text
    # The caller's environment is left as it was.
    assert os.environ["MPLBACKEND"] == "Agg" and runner.BATCH_ENV not in os.environ
    assert (tiny_project / "relative" / "run" / "executed" / "01_ok.ipynb").is_file()


def test_common_values_reach_only_notebooks_that_declare_them(tiny_project):
    (tiny_project / "notebooks" / "profiles" / "c.yaml").write_text(
        yaml.safe_dump({"common": {"seed": 3, "value": 7}, "notebooks": {"01_ok": {}}})
    )
    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "pass")
    nb = nbformat.v4.new_notebook()  # a second notebook that declares seed but not value
    cell = nbformat.v4.new_code_cell('profile = "x"\nrun_dir = "r"\nseed = 0')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tiny_project / "notebooks" / "02_seed.ipynb")
    profile = runner.load_profile("c")
    runner.check_profile(profile)
    params = runner.notebook_parameters(profile, tiny_project / "notebooks" / "01_ok.ipynb", "/abs")
    assert params == {"value": 7, "profile": "c", "run_dir": "/abs"}  # seed is not declared here: not injected
    params = runner.notebook_parameters(profile, tiny_project / "notebooks" / "02_seed.ipynb", "/abs")
    assert params == {"seed": 3, "profile": "c", "run_dir": "/abs"}


def test_common_key_that_no_notebook_declares_is_refused(tiny_project, capsys):
    # Formerly dropped silently: a typo such as `sed: 0` in common changed nothing and said nothing.
    (tiny_project / "notebooks" / "profiles" / "c.yaml").write_text(
        yaml.safe_dump({"common": {"sed": 3}, "notebooks": {"01_ok": {}}})
    )
    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "pass")
    with pytest.raises(ParameterError, match=r"common\.sed is declared by no notebook .*'value'"):
        runner.check_profile(runner.load_profile("c"))
    assert runner.main(["run", "--profile", "c", "--run-dir", str(tiny_project / "run")]) == 2
    assert "common.sed" in capsys.readouterr().err
    assert not (tiny_project / "run").exists()  # refused before anything was written


def test_notebook_name_that_matches_no_notebook_is_refused(tiny_project, capsys):
    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "pass")
    (tiny_project / "notebooks" / "profiles" / "typo.yaml").write_text(
        yaml.safe_dump({"notebooks": {"01_ok": {}, "01_dta": {"value": 2}}})
    )
    with pytest.raises(ParameterError, match=r"notebooks\.01_dta names no notebook; valid names: \['01_ok'\]"):
        runner.load_profile("typo")
    assert runner.main(["run", "--profile", "typo"]) == 2
    assert "01_dta" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["description: nothing\n", "notebooks: {}\n", "notebooks:\n", ""])
def test_profile_without_notebooks_is_refused(tiny_project, text):
    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "pass")
    (tiny_project / "notebooks" / "profiles" / "empty.yaml").write_text(text)
    with pytest.raises(ParameterError, match="lists no notebook"):
        runner.load_profile("empty")


@pytest.mark.parametrize("written, expected", [
    ("1e6", 1000000), ("1.0e6", 1000000), ("'2.5e3'", 2500), ("'12'", 12), ("-3", -3), ("4.0", 4), ("null", None),
])
def test_yaml_numbers_reach_a_number_parameter_as_numbers(tiny_project, written, expected):
    # PyYAML (YAML 1.1) reads 1e6 and 1.0e6 as strings; the notebook's default (1) is an int (a count or a
    # size), so whole numbers arrive as ints: a float 1000000.0 reached the notebook's range checks.
    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "pass")
    (tiny_project / "notebooks" / "profiles" / "n.yaml").write_text(f"notebooks:\n  01_ok:\n    value: {written}\n")
    params = runner.notebook_parameters(runner.load_profile("n"), tiny_project / "notebooks" / "01_ok.ipynb", "r")
    assert params["value"] == expected and type(params["value"]) is type(expected)


@pytest.mark.parametrize("written, needle", [
    ("abc", "got str 'abc'"), ("'1e6x'", "got str '1e6x'"), ("true", "got bool True"), ("[1, 2]", "got list"),
])
def test_a_string_or_other_type_for_a_number_parameter_is_refused(tiny_project, written, needle):
    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "pass")
    (tiny_project / "notebooks" / "profiles" / "n.yaml").write_text(f"notebooks:\n  01_ok:\n    value: {written}\n")
    with pytest.raises(ParameterError, match=r"notebooks\.01_ok\.value must be a number \(the notebook's default is 1\)") as err:
        runner.notebook_parameters(runner.load_profile("n"), tiny_project / "notebooks" / "01_ok.ipynb", "r")
    assert needle in str(err.value)


@pytest.mark.parametrize("written", ["64.5", "'2.5e-1'", ".nan", ".inf"])
def test_a_fraction_for_an_int_parameter_is_refused_before_any_kernel_starts(tiny_project, written):
    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "pass")
    (tiny_project / "notebooks" / "profiles" / "n.yaml").write_text(f"notebooks:\n  01_ok:\n    value: {written}\n")
    with pytest.raises(ParameterError, match=r"notebooks\.01_ok\.value must be a (whole )?number \(the notebook's default is 1\)"):
        runner.notebook_parameters(runner.load_profile("n"), tiny_project / "notebooks" / "01_ok.ipynb", "r")


def _typed_none_notebook(path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "x"  # profile\nrun_dir = "r"  # run folder\n'
                                       'n0: float = None  # photons; None: calibrated\nkind: str = None  # a name\n'
                                       'count: int = None  # slices\nfree = None  # anything')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("pass")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.parametrize("key, written, expected", [
    ("n0", "1e6", 1e6), ("n0", "3000", 3000.0), ("n0", "null", None), ("kind", "chest", "chest"),
    ("count", "1e3", 1000), ("free", "[1, x]", [1, "x"]),
])
def test_a_none_default_with_a_type_annotation_takes_that_type(tiny_project, key, written, expected):
    path = tiny_project / "notebooks" / "01_ok.ipynb"
    _typed_none_notebook(path)
    (tiny_project / "notebooks" / "profiles" / "n.yaml").write_text(f"notebooks:\n  01_ok:\n    {key}: {written}\n")
    value = runner.notebook_parameters(runner.load_profile("n"), path, "r")[key]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("key, written, message", [
    # n0_full: true became 1.0 photon, silently; abc failed inside the notebook with float()'s ValueError
    ("n0", "true", r"notebooks\.01_ok\.n0 must be a number \(the notebook declares it float\), got bool True"),
    ("n0", "abc", r"n0 must be a number .*got str 'abc'"),
    ("kind", "3", r"kind must be a string \(the notebook declares it str\), got int 3"),
    ("count", "2.5", r"count must be a whole number \(the notebook declares it int\)"),
])
def test_a_none_default_with_a_type_annotation_refuses_other_types(tiny_project, key, written, message):
    path = tiny_project / "notebooks" / "01_ok.ipynb"
    _typed_none_notebook(path)
    (tiny_project / "notebooks" / "profiles" / "n.yaml").write_text(f"notebooks:\n  01_ok:\n    {key}: {written}\n")
    with pytest.raises(ParameterError, match=message):
        runner.notebook_parameters(runner.load_profile("n"), path, "r")


def test_every_none_default_of_the_shipped_notebooks_states_its_type():
    # Without an annotation the runner cannot check a value given for a None default.
    for nb in runner.available_notebooks():
        untyped = [k for k, v in runner.declared_parameters(nb).items() if v is None]
        assert not untyped, f"{nb.name}: annotate {untyped} in the parameters cell (name: type = None)"


def test_a_number_for_a_string_parameter_and_duplicate_keys_are_refused(tiny_project):
    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "pass")
    (tiny_project / "notebooks" / "profiles" / "s.yaml").write_text("notebooks:\n  01_ok:\n    profile: 3\n")
    with pytest.raises(ParameterError, match=r"notebooks\.01_ok\.profile must be a string"):
        runner.notebook_parameters(runner.load_profile("s"), tiny_project / "notebooks" / "01_ok.ipynb", "r")
    (tiny_project / "notebooks" / "profiles" / "d.yaml").write_text(
        "notebooks:\n  01_ok:\n    value: 1\n    value: 2\n")
    with pytest.raises(ParameterError, match="duplicate key 'value'"):
        runner.load_profile("d")


def test_every_shipped_profile_passes_the_whole_profile_check():
    for name in runner.available_profiles():
        declared = runner.check_profile(runner.load_profile(name))
        for nb in runner.available_notebooks():
            for key, value in runner.notebook_parameters(runner.load_profile(name), nb, "/r", declared[nb.stem]).items():
                default = declared[nb.stem][key]
                if isinstance(default, (int, float)) and not isinstance(default, bool) and value is not None:
                    assert isinstance(value, (int, float)), (name, nb.stem, key, value)


def test_a_kernel_that_cannot_start_is_reported_without_a_traceback(tiny_project, monkeypatch, capsys):
    import papermill

    def no_kernel(*args, **kwargs):
        raise RuntimeError("No such kernel named python3")

    monkeypatch.setattr(papermill, "execute_notebook", no_kernel)
    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "pass")
    code = runner.main(["run", "--profile", "t", "--run-dir", str(tiny_project / "run"),
                        "--executed-dir", str(tiny_project / "executed")])
    err = capsys.readouterr().err
    assert code == 1 and "01_ok" in err and "No such kernel" in err and "kernel" in err


def test_profiles_command_lists_descriptions(capsys):
    assert runner.main(["profiles"]) == 0
    assert "smoke:" in capsys.readouterr().out
