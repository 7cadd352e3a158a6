"""The papermill runner: profiles, notebook selection, parameters, failures, provenance."""
from __future__ import annotations

import json
import os

import nbformat
import pytest
import yaml

from ldct_nb import runner
from ldct_nb.errors import ParameterError


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


def test_failure_names_notebook_and_cell_and_keeps_the_partial_notebook(tiny_project, capsys):
    _tiny_notebook(tiny_project / "notebooks" / "01_ok.ipynb", "raise ValueError('boom from the test')")
    with pytest.raises(runner.NotebookFailed) as info:
        runner.run("t", run_dir=str(tiny_project / "run"), executed_dir=tiny_project / "executed", log_output=False)
    message = str(info.value)
    assert "01_ok" in message and "cell" in message and "boom from the test" in message
    assert (tiny_project / "executed" / "01_ok.ipynb").is_file()
    assert (tiny_project / "run" / "executed" / "01_ok.ipynb").is_file()
    code = runner.main(["run", "--profile", "t", "--run-dir", str(tiny_project / "run2"),
                        "--executed-dir", str(tiny_project / "executed2")])
    assert code == 1
    assert "boom from the test" in capsys.readouterr().err


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
    params = runner.notebook_parameters(runner.load_profile("c"), tiny_project / "notebooks" / "01_ok.ipynb", "/abs")
    assert params == {"value": 7, "profile": "c", "run_dir": "/abs"}  # seed is not declared: not injected


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
