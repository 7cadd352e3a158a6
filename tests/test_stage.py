"""Tests of ldct_nb.data.stage (settings, dispatch, the data table) and
ldct_nb.data.noise (noise versus dose, noise per tissue)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ldct_nb.data import noise
from ldct_nb.data.cache import list_splits
from ldct_nb.data.manifest import load_manifest
from ldct_nb.data.stage import dataset_table, prepare_data, synthetic_settings
from ldct_nb.errors import DataError, ParameterError

SEEDS = {"train": 1000, "val": 2000, "test": 3000}
TINY = dict(image_size=32, counts={"train": 3, "test": 2}, progress=False)


@pytest.fixture(scope="module")
def synthetic():
    return load_manifest("synthetic")


# ----------------------------------------------------------------- synthetic_settings


def test_settings_default_to_the_manifest(synthetic):
    s = synthetic_settings(synthetic)
    gen, dose = synthetic.raw["generator"], synthetic.raw["dose"]
    assert s["image_size"] == gen["image_size"] and s["counts"] == gen["counts"]
    assert s["phantom_kind"] == gen["kind"] and s["split_seeds"] == gen["split_seeds"]
    assert dose["n0_full"] is None and s["dose"].full_target_hu == dose["noise_target_hu"]  # calibrated
    assert s["n0_full"] == s["dose"].n0_full > 0 and s["dose_fraction"] == dose["dose_fraction"]
    assert s["filter_name"] == dose["filter_name"] and s["lesion_kind"] == gen["lesion_kind"]
    assert s["n_views"] is None and s["seed"] == 0


def test_settings_apply_overrides_and_ignore_none(synthetic):
    counts = {"train": 2, "val": 1}
    manifest_counts = dict(synthetic.raw["generator"]["counts"])
    s = synthetic_settings(synthetic, image_size=48, counts=counts, n0_full=2e4, phantom_kind="chest",
                           dose_fraction=None, seed=7)
    assert s["image_size"] == 48 and s["counts"] == counts and s["n0_full"] == 2e4
    assert s["phantom_kind"] == "chest" and s["seed"] == 7
    assert s["dose_fraction"] == synthetic.raw["dose"]["dose_fraction"]  # None keeps the manifest value
    counts["train"] = 99
    assert s["counts"]["train"] == 2  # the caller's dict is copied
    assert synthetic.raw["generator"]["counts"] == manifest_counts  # the manifest is not modified


def test_settings_refuse_unknown_key(synthetic):
    with pytest.raises(ParameterError, match="'banana'") as err:
        synthetic_settings(synthetic, banana=1)
    assert "image_size" in str(err.value)  # lists the known settings


@pytest.mark.parametrize("override, needle", [
    (dict(image_size=32.5), r"image_size must be an int >= 1, got float 32\.5"),  # formerly int(32.5) = 32 silently
    (dict(image_size="64"), r"image_size must be an int >= 1, got str '64'"),
    (dict(seed=-1), r"seed must be an int >= 0, got -1"),  # formerly accepted
    (dict(seed=1.5), r"seed must be an int >= 0, got float 1\.5"),
    (dict(counts={"train": 1.5}), r"counts\['train'\] must be an int >= 1, got float 1\.5"),
    (dict(counts={"train": 0}), r"counts\['train'\] must be an int >= 1, got 0"),
])
def test_settings_refuse_sizes_counts_and_seeds_that_are_not_ints(synthetic, override, needle):
    with pytest.raises(ParameterError, match=needle):
        synthetic_settings(synthetic, **override)


@pytest.mark.parametrize("bad", [-1, 1.5, "2"])
def test_prepare_refuses_a_bad_max_slices_per_patient(synthetic, tmp_path, bad):
    with pytest.raises(ParameterError, match="max_slices_per_patient must be an int >= 0"):
        prepare_data(synthetic, tmp_path, max_slices_per_patient=bad, **TINY)


def test_settings_refuse_split_without_seed(synthetic):
    with pytest.raises(ParameterError, match=r"\['extra'\]"):
        synthetic_settings(synthetic, counts={"train": 1, "extra": 1})


@pytest.mark.parametrize("overrides,first,second", [
    (dict(counts={"train": 1500, "val": 1}, split_seeds=SEEDS), "train", "val"),
    (dict(split_seeds={"train": 0, "val": 5, "test": 100}, counts={"train": 10, "val": 1, "test": 1}), "train", "val"),
])
def test_settings_refuse_overlapping_seed_ranges(synthetic, overrides, first, second):
    with pytest.raises(ParameterError) as err:
        synthetic_settings(synthetic, **overrides)
    msg = str(err.value)
    assert f"split {first!r}" in msg and f"split {second!r}" in msg and "reuse phantoms" in msg


def test_settings_touching_ranges_are_fine(synthetic):
    s = synthetic_settings(synthetic, counts={"train": 1000, "val": 1000, "test": 1}, split_seeds=SEEDS)
    assert s["counts"]["val"] == 1000


# ----------------------------------------------------------------- prepare_data


def test_prepare_synthetic_and_dataset_table(synthetic, tmp_path):
    splits = prepare_data(synthetic, tmp_path, **TINY)
    assert list(splits) == ["train", "test"] and list_splits(tmp_path) == ["test", "train"]
    assert [len(splits[s]) for s in ("train", "test")] == [3, 2]
    train = splits["train"]
    assert train.ndct.shape == (3, 32, 32)
    gen = synthetic.raw["generator"]
    assert train.meta["base_seed"] == gen["seed"] + gen["split_seeds"]["train"]
    assert splits["test"].meta["base_seed"] == gen["seed"] + gen["split_seeds"]["test"]
    assert train.meta["n0_full"] == synthetic_settings(synthetic, image_size=32)["n0_full"]
    assert train.meta["manifest_sha256"] == synthetic.sha256()
    assert train.meta["dataset"] == "synthetic"

    table = dataset_table(splits)
    assert list(table.index) == ["train", "test"]
    for name, sp in splits.items():
        row = table.loc[name]
        assert row["slices"] == len(sp) and row["size"] == "32x32"
        assert row["lesion boxes"] == sum(len(b) for b in sp.boxes)
        assert row["patients"] == len(sp)  # one phantom per slice
        body = np.asarray(sp.ndct) > -500
        assert row["NDCT mean HU (body)"] == pytest.approx(float(np.asarray(sp.ndct)[body].mean()), abs=0.06)
        assert row["std(LDCT - NDCT) HU (body)"] > 0
    assert table["lesion boxes"].sum() > 0


def test_prepare_synthetic_subset_and_seed(synthetic, tmp_path):
    only = prepare_data(synthetic, tmp_path / "a", splits=["test"], **TINY)
    assert list(only) == ["test"] and list_splits(tmp_path / "a") == ["test"]
    shifted = prepare_data(synthetic, tmp_path / "b", splits=["test"], seed=1, **TINY)["test"]
    assert shifted.meta["base_seed"] == only["test"].meta["base_seed"] + 1
    np.testing.assert_array_equal(shifted.phantom[0], only["test"].phantom[1])  # seed shifts the phantom range
    with pytest.raises(ParameterError, match="'vall'"):
        prepare_data(synthetic, tmp_path / "c", splits=["vall"], **TINY)


def test_prepare_removes_leftover_temporary_folders(synthetic, tmp_path):
    leftover = tmp_path / "data" / ".train.tmp-deadbeef"
    leftover.mkdir(parents=True)
    prepare_data(synthetic, tmp_path, splits=["test"], **TINY)
    assert not leftover.exists()


@pytest.mark.parametrize("override", [dict(image_size=64), dict(n0_full=1e4), dict(counts={"train": 1})])
def test_prepare_real_manifest_refuses_synthetic_overrides(tmp_path, override):
    manifest = load_manifest("mayo2016", data_root=tmp_path)
    with pytest.raises(ParameterError, match=next(iter(override))) as err:
        prepare_data(manifest, tmp_path / "run", progress=False, **override)
    assert "mayo2016" in str(err.value)


def test_prepare_real_manifest_without_data(tmp_path):
    manifest = load_manifest("mayo2016", data_root=tmp_path)
    with pytest.raises(DataError, match="L067"):
        prepare_data(manifest, tmp_path / "run", seed=0, progress=False)  # seed is allowed, the data is missing
    assert list_splits(tmp_path / "run") == []


# ----------------------------------------------------------------- noise measurements


def test_uniform_cylinder_geometry():
    cyl = noise.uniform_cylinder(64, diameter_mm=180.0, fov_mm=360.0, hu=30.0)
    assert cyl.dtype == np.float32 and set(np.unique(cyl)) == {-1000.0, 30.0}
    area_mm2 = (cyl == 30.0).sum() * (360.0 / 64) ** 2
    assert area_mm2 == pytest.approx(np.pi * 90.0**2, rel=0.05)
    mask = noise.disc_mask(64, diameter_mm=100.0)
    assert mask.sum() < (cyl == 30.0).sum() and not (mask & (cyl != 30.0)).any()


@pytest.mark.parametrize("kwargs,name", [
    (dict(size=4), "size"), (dict(size=32.0), "size"), (dict(size=32, diameter_mm=400.0), "diameter_mm"),
    (dict(size=32, diameter_mm=0.0), "diameter_mm"),
])
def test_uniform_cylinder_bad_inputs(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        noise.uniform_cylinder(**kwargs)


def test_noise_vs_dose_follows_inverse_sqrt():
    size = 48
    cyl = noise.uniform_cylinder(size, diameter_mm=250.0)
    region = noise.disc_mask(size, diameter_mm=150.0)
    n0s = [1e4, 4e4, 1.6e5]
    fit = noise.noise_vs_dose(cyl, n0s, region, pixel_size_mm=360.0 / size, circle=True)
    assert fit.std_hu.shape == (3,) and np.all(np.diff(fit.std_hu) < 0)
    ratios = fit.std_hu[:-1] / fit.std_hu[1:]
    np.testing.assert_allclose(ratios, 2.0, rtol=0.2)  # 4x the dose halves the noise
    assert fit.max_relative_error < 0.2
    np.testing.assert_allclose(fit.predicted, fit.k / np.sqrt(n0s))
    assert np.all(np.abs(fit.mean_hu) < 0.3 * fit.std_hu + 15)  # unbiased water
    assert "sqrt(N0)" in repr(fit)
    again = noise.noise_vs_dose(cyl, n0s, region, pixel_size_mm=360.0 / size, circle=True)
    np.testing.assert_array_equal(again.std_hu, fit.std_hu)  # seeded


@pytest.mark.parametrize("n0s,region,name", [
    ([1e4], None, "n0s"), ([1e4, -1.0], None, "n0s"), ([1e4, float("nan")], None, "n0s"),
    ([[1e4, 2e4]], None, "n0s"), ([1e4, 2e4], np.ones((8, 8), bool), "region"),
    ([1e4, 2e4], np.zeros((32, 32), bool), "region"),
])
def test_noise_vs_dose_bad_inputs(n0s, region, name):
    cyl = noise.uniform_cylinder(32)
    region = noise.disc_mask(32, diameter_mm=150.0) if region is None else region
    with pytest.raises(ParameterError, match=name):
        noise.noise_vs_dose(cyl, n0s, region)


def test_noise_by_tissue_recovers_known_stds():
    rng = np.random.default_rng(0)
    labels = np.zeros((2, 64, 64), np.uint8)
    labels[:, 8:56, 4:30] = 1
    labels[:, 8:56, 34:60] = 2
    labels[:, 60:62, 60:62] = 3  # 8 pixels: too few, left out
    stds = np.array([0.0, 5.0, 20.0, 50.0])
    img = rng.normal(size=labels.shape) * stds[labels]
    # edges of the tissues carry large errors (partial volume): erosion must drop them
    fat = labels == 1
    edge = fat & ~np.stack([ndimage.binary_erosion(f) for f in fat])  # the outer ring of pixels
    img[edge] += 300.0
    names = ("air", "fat", "liver", "lesion")
    got = noise.noise_by_tissue(img, labels, names)
    assert set(got) == {"air", "fat", "liver"} and got["air"] == 0.0  # the 8-pixel "lesion" is left out
    np.testing.assert_allclose([got["fat"], got["liver"]], [5.0, 20.0], rtol=0.1)
    raw = noise.noise_by_tissue(img, labels, names, erode_px=0, min_pixels=5)
    assert raw["fat"] > 2 * got["fat"] and raw["lesion"] == pytest.approx(50.0, rel=0.5)
    one = noise.noise_by_tissue(img[0], labels[0], names)  # a single H x W slice
    np.testing.assert_allclose([one["fat"], one["liver"]], [5.0, 20.0], rtol=0.15)


def test_noise_by_tissue_bad_shape():
    with pytest.raises(ParameterError, match="noise .* and labels"):
        noise.noise_by_tissue(np.zeros((8, 8)), np.zeros((8, 9), int), ("air",))
