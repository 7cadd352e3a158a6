"""The papermill runner: profiles, notebook selection, parameters, failures, provenance."""
from __future__ import annotations

import json

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
