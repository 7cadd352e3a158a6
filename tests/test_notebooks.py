"""Notebook smoke runs: the runner with the smoke profile, the book build, the
book in a real browser, and notebook 01 on a miniature Mayo-2016 data set.

Marked ``notebook`` (slow, but part of ``make test``). The book is built in a
temporary folder, so running the tests never replaces the book a user built.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml

from ldct_nb import runner
from ldct_nb.data.cache import open_split
from ldct_nb.paths import REPO_ROOT

sys.path.insert(0, str(Path(__file__).parent))
from browser import check_pages, chromium_available  # noqa: E402
from dicom_factory import write_ct_series  # noqa: E402

pytestmark = pytest.mark.notebook
BOOK_FILES = ["_config.yml", "_toc.yml", "book/intro.md", "book/reproduction.md", "book/references.bib"]


def toc_pages(root: Path) -> list[str]:
    """Every file of the toc (root and chapters), without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [c["file"] for c in part.get("chapters", [])]
    return pages


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """Run every notebook with the smoke profile into a temporary book and build it."""
    root = tmp_path_factory.mktemp("book")
    for name in BOOK_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, root / name)
    executed = runner.run("smoke", run_dir=str(root / "run"), executed_dir=root / "book" / "executed", log_output=False)
    build = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(root), "--path-output", str(root), "-q"],
        capture_output=True, text=True, timeout=900,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    warnings = [line for line in (build.stdout + build.stderr).splitlines() if "WARNING" in line]
    return {"root": root, "html": root / "_build" / "html", "executed": executed, "warnings": warnings}


def test_runner_executes_every_notebook_with_the_smoke_profile(smoke_book):
    names = [p.stem for p in runner.available_notebooks()]
    assert [p.stem for p in smoke_book["executed"]] == names
    for path in smoke_book["executed"]:
        nb = nbformat.read(path, as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
        assert (smoke_book["root"] / "run" / "executed" / path.name).is_file()
    assert (smoke_book["root"] / "run" / "provenance.json").is_file()


def test_book_html_exists_for_every_toc_page_and_embeds_the_figures(smoke_book):
    assert not smoke_book["warnings"], smoke_book["warnings"]
    html_dir = smoke_book["html"]
    for page in toc_pages(smoke_book["root"]):
        html = html_dir / f"{page}.html"
        assert html.is_file(), f"no HTML for toc page {page}"
        if page.startswith("book/executed/"):
            text = html.read_text(encoding="utf-8")
            images = re.findall(r'<img[^>]+src="([^"]+)"', text)
            assert len(images) >= 4, f"{page}: only {len(images)} figures embedded"
            for src in images:
                if not src.startswith("data:"):
                    assert (html.parent / src).resolve().is_file(), f"{page}: missing image {src}"
            assert "smoke" in text  # the banner names the profile


def test_data_notebook_reports_unbiased_noise_scaling(smoke_book):
    nb = nbformat.read(smoke_book["root"] / "book" / "executed" / "01_data.ipynb", as_version=4)
    glued = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook", {})
            if meta:
                glued[meta["name"]] = out["data"][meta["mime_prefix"] + "text/plain"]
    assert float(glued["water_bias"].strip("'")) < 5.0
    assert float(glued["noise_fit_dev"].strip("'%")) < 15.0


def test_smoke_run_writes_every_table_and_checkpoint_the_later_stages_read(smoke_book):
    """Notebook 04 leaves a checkpoint per run and results/training.json; notebook 06 every table file."""
    import json

    run = smoke_book["root"] / "run"
    training = json.loads((run / "results" / "training.json").read_text())
    tables = {row["table"] for row in training["rows"]}
    assert {"table1", "table2", "tableS1", "tableS2", "presets"} <= tables
    for row in training["rows"]:
        assert Path(row["last"]).is_file(), row
    for name in ("table1", "table2", "tableS1", "tableS2", "presets", "per_slice", "tests", "cnr", "tissue_error",
                 "radiomics"):
        assert (run / "results" / f"ascon_{name}.csv").is_file(), name
    summary = json.loads((run / "results" / "ascon_tables.json").read_text())
    assert [r["row"] for r in summary["tables"]["table1"]][0] == "LDCT"
    assert len(summary["tables"]["table1"]) == 9  # the LDCT input and the eight methods of Table 1
    lidnet = sorted((run / "results" / "lidnet").glob("*/summary.json"))
    assert lidnet, "notebook 05 wrote no LIDnet results"
    for folder in (p.parent for p in lidnet):
        for name in ("scores", "table2", "table3", "table4"):
            assert (folder / f"eval_{name}.csv").is_file(), (folder, name)


def test_smoke_run_writes_the_lidnet_results_and_checkpoints(smoke_book):
    """Notebook 05: results/lidnet/<analogue>/{detection.csv,summary.json}; every run's checkpoint
    loads (denoisers with load_denoiser, the NDCT detector with load_detector)."""
    import json

    from ldct_nb.models.detector import load_detector
    from ldct_nb.train import load_denoiser

    folder = smoke_book["root"] / "run" / "results" / "lidnet" / "synthetic_l_ct_a"
    summary = json.loads((folder / "summary.json").read_text())
    assert (folder / "detection.csv").is_file()
    assert {"ndct_ap50", "ndct_ap75", "checkpoint"} <= set(summary["ndct_detector"])
    load_detector(summary["ndct_detector"]["checkpoint"])
    rows = [r["denoiser"] for r in summary["test_table"]]
    assert rows[:2] == ["LDCT", "NDCT"] and "Ours-cpce" in rows and "Ours-esau_net" in rows
    kinds = {r["kind"] for r in summary["runs"].values()}
    assert kinds == {"detector", "baseline", "collaborative", "simultaneous"}
    for name, run in summary["runs"].items():
        if run["kind"] != "detector":
            load_denoiser(run["last"])


def test_every_book_page_loads_in_a_real_browser(smoke_book):
    if not chromium_available():
        if os.environ.get("CI"):
            pytest.fail("chromium / chromedriver missing in CI: .ci/run should have installed them")
        pytest.skip("chromium and chromedriver not installed (apt-get install chromium chromium-driver)")
    pages = [smoke_book["html"] / f"{p}.html" for p in toc_pages(smoke_book["root"])]
    report = check_pages(pages)
    for page, result in report.items():
        assert not result["broken"], f"{page}: images not loaded: {result['broken']}"
        assert not result["errors"], f"{page}: console errors: {result['errors']}"
    executed = [r for p, r in report.items() if "/executed/" in p]
    assert all(r["images"] >= 4 for r in executed)


MAYO2016_PATIENTS = {
    "train": ["L067", "L096", "L109", "L143", "L192", "L286", "L291", "L310"],
    "test": ["L333", "L506"],
}


def test_notebook_01_converts_a_miniature_mayo2016_layout(tmp_path, monkeypatch):
    """The real mayo2016 manifest and notebook 01 on DICOM files in the challenge layout."""
    rng = np.random.default_rng(0)
    truth = {}
    for pid in MAYO2016_PATIENTS["train"] + MAYO2016_PATIENTS["test"]:
        full = rng.normal(40, 30, size=(2, 32, 32)).round().astype(np.float32)
        full[:, :4] = -1000
        quarter = full + rng.normal(0, 20, size=full.shape).round().astype(np.float32)
        write_ct_series(tmp_path / "data" / pid / "full_1mm", full, patient_id=pid, seed=1)
        write_ct_series(tmp_path / "data" / pid / "quarter_1mm", quarter, patient_id=pid, seed=2)
        truth[pid] = (full, quarter)
    # The shipped manifest with the miniature's slice counts (the data stage checks them).
    manifest = yaml.safe_load((REPO_ROOT / "data_manifests" / "mayo2016.yaml").read_text(encoding="utf-8"))
    manifest["expected_counts"] = {split: 2 * len(p) for split, p in MAYO2016_PATIENTS.items()}
    (tmp_path / "mayo2016.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    profile = tmp_path / "mini_mayo2016.yaml"
    profile.write_text(yaml.safe_dump({
        "description": "miniature Mayo-2016 layout",
        "common": {"seed": 0, "device": "cpu"},
        "notebooks": {"01_data": {"manifest": str(tmp_path / "mayo2016.yaml"), "data_root": "", "image_size": 32,
                                   "noise_image_size": 32, "noise_doses": 2}},
    }))
    monkeypatch.setenv("LDCT_MAYO2016_ROOT", str(tmp_path / "data"))
    runner.run(str(profile), only="01", run_dir=str(tmp_path / "run"), executed_dir=tmp_path / "executed",
               log_output=False)
    for split, patients in MAYO2016_PATIENTS.items():
        cached = open_split(tmp_path / "run", split)
        assert len(cached) == 2 * len(patients)
        assert cached.meta["dataset"] == "mayo2016"
        expected_nd = np.concatenate([truth[p][0] for p in patients])
        expected_ld = np.maximum(np.concatenate([truth[p][1] for p in patients]), -1024.0)  # the reader clamps
        np.testing.assert_allclose(cached.ndct, expected_nd)
        np.testing.assert_allclose(cached.ldct, expected_ld)
