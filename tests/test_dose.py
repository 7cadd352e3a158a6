"""Doses given by their effect (ldct_nb.data.dose) and the shipped manifests' noise levels."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from ldct_nb.data import noise
from ldct_nb.data.dose import resolve_dose
from ldct_nb.data.manifest import MANIFEST_DIR, load_manifest
from ldct_nb.data.stage import synthetic_settings
from ldct_nb.errors import ManifestError, ParameterError

ANALOGUES = {"synthetic_pe_ct": 3000, "synthetic_l_ct_a": 1000, "synthetic_l_ct_g": 1000}


def test_targets_give_their_noise_at_two_sizes() -> None:
    """The same targets at 48 and 96 px give different N0 (noise grows with resolution at
    fixed N0) but the same noise, checked with fresh seeds."""
    n0s = {}
    for size in (48, 96):
        d = resolve_dose(image_size=size, fov_mm=360.0, noise_target_hu=15.0, ldct_noise_target_hu=45.0,
                         filter_name="cosine")
        n0s[size] = d.n0_full
        assert d.dose_fraction == pytest.approx((15.0 / 45.0) ** 2, rel=0.1)  # sigma ~ 1 / sqrt(N0)
        hu, region = noise.water_reference(size)
        sim = dict(pixel_size_mm=360.0 / size, circle=True, filter_name="cosine")
        for n0, target in ((d.n0_full, 15.0), (d.n0_low, 45.0)):
            fit = noise.noise_vs_dose(hu, [n0] * 20, region, seed=900 + size, **sim)  # one pair varies by ~7 %
            assert float(np.sqrt(np.mean(fit.std_hu**2))) == pytest.approx(target, rel=0.05)
    assert n0s[96] > 1.5 * n0s[48]


def test_given_n0_passes_through() -> None:
    d = resolve_dose(image_size=64, fov_mm=360.0, n0_full=2e5, dose_fraction=0.25)
    assert (d.n0_full, d.dose_fraction, d.n0_low) == (2e5, 0.25, 5e4) and d.full_noise_hu is None
    assert "2e+05" in repr(d)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n0_full=1e5, noise_target_hu=10.0, dose_fraction=0.25), "exactly one of n0_full"),
        (dict(dose_fraction=0.25), "exactly one of n0_full"),
        (dict(n0_full=1e5), "exactly one of dose_fraction"),
        (dict(noise_target_hu=30.0, ldct_noise_target_hu=10.0), "must not be below"),
        (dict(n0_full=1e5, dose_fraction=0.5, noise_cylinder_mm=400.0), "noise_cylinder_mm"),
        # True was taken as 1 photon and "abc" failed inside float()
        (dict(n0_full=True, dose_fraction=0.25), "n0_full must be a finite number > 0, got True"),
        (dict(n0_full="abc", dose_fraction=0.25), "n0_full must be a finite number > 0, got 'abc'"),
        (dict(n0_full=1e5, dose_fraction=-0.25), "dose_fraction must be a finite number > 0"),
        (dict(n0_full=1e5, dose_fraction=4), r"dose_fraction must be in \(0, 1\]"),
        (dict(noise_target_hu=float("nan"), dose_fraction=0.25), "noise_target_hu must be a finite number"),
    ],
)
def test_resolve_dose_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        resolve_dose(image_size=48, fov_mm=360.0, **kwargs)


@pytest.mark.parametrize("name, n0_paper", sorted(ANALOGUES.items()))
def test_analogue_manifests_state_the_paper_dose_and_its_noise(name: str, n0_paper: int) -> None:
    """Each LIDnet analogue names the paper's N0 and the noise [14] gives at it, and its
    LDCT is calibrated to that noise (here at 48 px)."""
    m = load_manifest(name)
    dose = m.raw["dose"]
    assert dose["n0_paper"] == m.raw["paper_settings"]["lidnet"]["n0"] == n0_paper
    assert dose["ldct_noise_target_hu"] == pytest.approx(noise.reference_14_noise_hu(n0_paper), abs=0.06)
    assert "[14]" in dose["noise_source"]
    s = synthetic_settings(m, image_size=48)
    assert s["dose"].low_noise_hu == pytest.approx(dose["ldct_noise_target_hu"], rel=0.03)
    assert s["dose"].full_noise_hu == pytest.approx(dose["noise_target_hu"], rel=0.03)


@pytest.mark.parametrize("name, n0_paper", [("pe_ct", 3000), ("l_ct_a", 1000), ("l_ct_g", 1000)])
def test_detection_manifests_state_paper_and_used_n0(name: str, n0_paper: int) -> None:
    sim = load_manifest(name).raw["simulation"]
    assert sim["n0_paper"] == n0_paper and sim["n0"] > n0_paper
    assert sim["noise_target_hu"] == pytest.approx(noise.reference_14_noise_hu(n0_paper), abs=0.06)


def test_pe_ct_n0_gives_its_noise_at_512() -> None:
    """The shipped PE-CT N0 (calibrated offline for 512 x 512, 0.7 mm, 512 views, cosine,
    as build_detection_split simulates) gives its stated noise within 5 %."""
    sim = load_manifest("pe_ct").raw["simulation"]
    hu, region = noise.water_reference(512, diameter_mm=sim["noise_cylinder_mm"], fov_mm=512 * 0.7)
    a, b = noise.simulate_ldct(np.stack([hu, hu]), float(sim["n0"]), seed=[5, 6], pixel_size_mm=0.7,
                               filter_name=sim["filter_name"])
    assert float(np.std((a - b)[region]) / math.sqrt(2)) == pytest.approx(sim["noise_target_hu"], rel=0.05)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(n0_full=1e5), "dose.n0_full"),  # both N0 and a target
        (dict(noise_target_hu=None), "dose.n0_full"),  # neither
        (dict(filter_name="butterworth"), "dose.filter_name"),
        (dict(filter_cutoff=2.0), "dose.filter_cutoff"),
        (dict(noise_target_hu=-3.0), "noise_target_hu"),
    ],
)
def test_manifest_dose_fields_validated(tmp_path, change: dict, message: str) -> None:
    doc = yaml.safe_load((MANIFEST_DIR / "synthetic.yaml").read_text(encoding="utf-8"))
    doc["dose"].update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ManifestError, match=message):
        load_manifest(path)


def test_manifest_lesion_kind_validated(tmp_path) -> None:
    doc = yaml.safe_load((MANIFEST_DIR / "synthetic.yaml").read_text(encoding="utf-8"))
    doc["generator"]["lesion_kind"] = "embolism"  # a chest lesion in the abdomen
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ManifestError, match="generator.lesion_kind.*metastasis"):
        load_manifest(path)


def test_dose_table_rows() -> None:
    """Synthetic rows are calibrated at the given size; detection rows state their N0 and the
    noise the paper's N0 would give literally (sigma ~ 1 / sqrt(N0): 66.5 sqrt(19100 / 3000))."""
    from ldct_nb.data.dose import dose_table

    rows = {r["data set"]: r for r in dose_table([load_manifest("synthetic_pe_ct"), load_manifest("pe_ct")],
                                                  image_size=48)}
    syn, real = rows["synthetic_pe_ct"], rows["pe_ct"]
    assert syn["paper N0"] == 3000 and syn["LDCT noise (HU)"] == pytest.approx(66.5, rel=0.03)
    assert syn["LDCT N0 used"] == pytest.approx(synthetic_settings(load_manifest("synthetic_pe_ct"), image_size=48)[
        "dose"].n0_low)
    assert syn["paper N0 applied literally: noise (HU)"] > 0
    sim = load_manifest("pe_ct").raw["simulation"]
    assert real["LDCT N0 used"] == sim["n0"]
    assert real["paper N0 applied literally: noise (HU)"] == pytest.approx(66.5 * math.sqrt(sim["n0"] / 3000))
