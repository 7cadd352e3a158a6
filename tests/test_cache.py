"""Tests of ldct_nb.data.cache: the synthetic, paired-DICOM and detection builders,
reuse by fingerprint, atomic replacement, and the errors of ``open_split``."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from ldct_nb.data import cache, phantom, simulate
from ldct_nb.data.cache import (
    SplitWriter,
    build_paired_dicom_split,
    build_synthetic_split,
    clean_partial,
    fingerprint,
    list_splits,
    open_split,
)
from ldct_nb.data.manifest import MANIFEST_DIR, load_manifest
from ldct_nb.data.stage import prepare_data
from ldct_nb.errors import DataError, ParameterError

try:  # works whether or not tests/ is a package
    from tests.dicom_factory import write_ct_series
except ImportError:  # pragma: no cover
    from dicom_factory import write_ct_series

SIZE = 32
TINY = dict(image_size=SIZE, progress=False)


def _synthetic(run_dir, split="train", n_slices=3, base_seed=10, **kw):
    return build_synthetic_split(run_dir, split, n_slices=n_slices, base_seed=base_seed, **{**TINY, **kw})


def _tmp_folders(run_dir: Path) -> list[str]:
    data = run_dir / "data"
    return sorted(p.name for p in data.iterdir() if p.name.startswith(".")) if data.is_dir() else []


# ----------------------------------------------------------------- synthetic builder


def test_synthetic_split_arrays_match_phantoms_and_simulation(tmp_path):
    sp = _synthetic(tmp_path, n_slices=3, base_seed=10)
    assert len(sp) == 3 and sp.split == "train"
    for name, dtype in (("ndct", np.float32), ("ldct", np.float32), ("phantom", np.float32), ("labels", np.uint8)):
        arr = getattr(sp, name)
        assert arr.shape == (3, SIZE, SIZE) and arr.dtype == dtype, name
        assert isinstance(arr, np.memmap), name
    assert sp.meta["complete"] is True and sp.meta["n_slices"] == 3
    assert sp.meta["pixel_size_mm"] == pytest.approx(360.0 / SIZE)
    assert [s["seed"] for s in sp.meta["slices"]] == [10, 11, 12]
    assert sp.tissues == phantom.TISSUES
    for i in range(3):
        ph = phantom.make_phantom(SIZE, 10 + i, "abdomen", fov_mm=360.0)
        np.testing.assert_array_equal(sp.phantom[i], ph.hu)
        np.testing.assert_array_equal(sp.labels[i], ph.labels)
        np.testing.assert_array_equal(sp.boxes[i], ph.boxes)
        # slice i is simulated with its own seed (base_seed + i), whatever its batch
        nd, ld = simulate.simulate_pair(
            ph.hu[None], n0_full=1e5, dose_fraction=0.25, seed=[10 + i], pixel_size_mm=360.0 / SIZE, circle=True
        )
        np.testing.assert_array_equal(sp.ndct[i], nd[0])
        np.testing.assert_array_equal(sp.ldct[i], ld[0])
    # quantum noise (against the noise-free reconstruction) is about 2x larger at quarter dose
    clean = simulate.reconstruct_noise_free(np.array(sp.phantom), pixel_size_mm=360.0 / SIZE, circle=True)
    body = sp.labels[:] > 0
    ratio = np.std((sp.ldct - clean)[body]) / np.std((sp.ndct - clean)[body])
    assert 1.6 < ratio < 2.5
    with pytest.raises(ValueError):  # read-only memory map
        sp.ndct[0, 0, 0] = 1.0
    assert list_splits(tmp_path) == ["train"]
    assert "3 slices 32x32" in repr(sp)


def test_same_parameters_reuse_the_cache(tmp_path, monkeypatch):
    first = _synthetic(tmp_path)
    inode = os.stat(first.path / "ndct.npy").st_ino

    def refuse(*args, **kwargs):
        raise AssertionError("make_phantom called although the cache matches")

    monkeypatch.setattr(phantom, "make_phantom", refuse)
    again = _synthetic(tmp_path)
    assert os.stat(again.path / "ndct.npy").st_ino == inode
    assert again.meta["fingerprint"] == first.meta["fingerprint"]
    with pytest.raises(AssertionError, match="make_phantom called"):
        _synthetic(tmp_path, force=True)  # force rebuilds


@pytest.mark.parametrize("change", [dict(n0_full=2e4), dict(base_seed=20), dict(n_slices=2), dict(kind="chest")])
def test_changed_parameter_rebuilds(tmp_path, change):
    first = _synthetic(tmp_path)
    old_fp, old_ldct = first.meta["fingerprint"], np.array(first.ldct)
    second = _synthetic(tmp_path, **change)
    assert second.meta["fingerprint"] != old_fp
    assert len(second) == change.get("n_slices", 3)
    same = np.array_equal(np.array(second.ldct[: len(second)]), old_ldct[: len(second)])
    assert same == ("n_slices" in change)  # fewer slices: the first ones are the same phantoms
    assert _tmp_folders(tmp_path) == []


def test_slices_do_not_depend_on_batch_size(tmp_path):
    a = _synthetic(tmp_path / "a", n_slices=4, batch_size=1)
    b = _synthetic(tmp_path / "b", n_slices=4, batch_size=3)
    for name in ("ndct", "ldct", "phantom", "labels"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.meta["fingerprint"] == b.meta["fingerprint"]  # batch_size is not part of the content


def test_different_splits_use_different_phantoms(tmp_path):
    train = _synthetic(tmp_path, "train", n_slices=3, base_seed=1000)
    test = _synthetic(tmp_path, "test", n_slices=3, base_seed=3000)
    for i in range(3):
        for j in range(3):
            assert not np.array_equal(train.phantom[i], test.phantom[j])
    assert not np.array_equal(train.phantom[0], train.phantom[1])
    assert list_splits(tmp_path) == ["test", "train"]


def test_synthetic_bad_n_slices(tmp_path):
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ParameterError, match="n_slices"):
            _synthetic(tmp_path, n_slices=bad)


# ----------------------------------------------------------------- open_split errors


def test_open_missing_split_names_folder(tmp_path):
    _synthetic(tmp_path, "train", n_slices=1)
    with pytest.raises(DataError) as err:
        open_split(tmp_path, "val")
    msg = str(err.value)
    assert str(tmp_path / "data" / "val") in msg and "'val'" in msg and "train" in msg


def test_open_corrupt_meta(tmp_path):
    sp = _synthetic(tmp_path, n_slices=1)
    (sp.path / "meta.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(DataError, match="meta.json") as err:
        open_split(tmp_path, "train")
    assert str(sp.path) in str(err.value)


@pytest.mark.parametrize("name", ["ldct.npy", "ndct.npy", "boxes.json"])
def test_open_missing_array(tmp_path, name):
    sp = _synthetic(tmp_path, n_slices=1)
    (sp.path / name).unlink()
    with pytest.raises(DataError, match=name.replace(".", r"\.")) as err:
        open_split(tmp_path, "train")
    assert str(sp.path) in str(err.value)


def test_open_incomplete_or_inconsistent(tmp_path):
    sp = _synthetic(tmp_path, n_slices=2)
    meta_path = sp.path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "complete": False}))
    with pytest.raises(DataError, match="incomplete") as err:
        open_split(tmp_path, "train")
    assert str(sp.path) in str(err.value)
    assert cache.cached_fingerprint(tmp_path, "train") is None  # an incomplete cache is never reused
    meta_path.write_text(json.dumps({**meta, "n_slices": 5}))
    with pytest.raises(DataError, match="5"):
        open_split(tmp_path, "train")


# ----------------------------------------------------------------- interruption, atomicity


class _FailOnCall:
    """Wrap ``fn``; raise ``exc`` on call number ``n`` (1-based)."""

    def __init__(self, fn, n, exc=RuntimeError("simulated crash")):
        self.fn, self.n, self.exc, self.calls = fn, n, exc, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.n:
            raise self.exc
        return self.fn(*args, **kwargs)


def test_interrupted_first_build_leaves_nothing(tmp_path, monkeypatch):
    boom = _FailOnCall(simulate.simulate_pair, 2, KeyboardInterrupt())
    monkeypatch.setattr(simulate, "simulate_pair", boom)
    with pytest.raises(KeyboardInterrupt):
        _synthetic(tmp_path, n_slices=4, batch_size=2)
    assert boom.calls == 2  # it really died in the second batch
    assert not (tmp_path / "data" / "train").exists()
    assert _tmp_folders(tmp_path) == [] and list_splits(tmp_path) == []
    with pytest.raises(DataError, match="no cached split"):
        open_split(tmp_path, "train")


def test_interrupted_rebuild_keeps_previous_cache(tmp_path, monkeypatch):
    old = _synthetic(tmp_path, n_slices=4, base_seed=10)
    old_ndct, old_fp = np.array(old.ndct), old.meta["fingerprint"]
    monkeypatch.setattr(phantom, "make_phantom", _FailOnCall(phantom.make_phantom, 3))
    with pytest.raises(RuntimeError, match="simulated crash"):
        _synthetic(tmp_path, n_slices=4, base_seed=50, batch_size=2)
    assert _tmp_folders(tmp_path) == []
    kept = open_split(tmp_path, "train")
    assert kept.meta["fingerprint"] == old_fp
    np.testing.assert_array_equal(kept.ndct, old_ndct)


def test_failed_rename_restores_previous_cache(tmp_path, monkeypatch):
    old = _synthetic(tmp_path, n_slices=2, base_seed=10)
    old_ndct = np.array(old.ndct)
    real_replace = os.replace

    def replace(src, dst):  # the rename of the new folder into place fails
        if Path(src).name.startswith(".train.tmp-"):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        _synthetic(tmp_path, n_slices=2, base_seed=50)
    monkeypatch.setattr(os, "replace", real_replace)
    assert clean_partial(tmp_path) == []  # nothing half-done was left behind
    np.testing.assert_array_equal(open_split(tmp_path, "train").ndct, old_ndct)


def test_clean_partial_removes_leftovers_only(tmp_path):
    _synthetic(tmp_path, n_slices=1)
    data = tmp_path / "data"
    leftovers = [data / ".train.tmp-0123abcd", data / ".test.old-89abcdef"]
    for p in leftovers:
        p.mkdir()
        (p / "ndct.npy").write_bytes(b"partial")
    (data / ".hidden-user-file").write_text("keep me")
    removed = clean_partial(tmp_path)
    assert sorted(removed) == sorted(leftovers)
    assert not any(p.exists() for p in leftovers)
    assert (data / ".hidden-user-file").exists()
    assert len(open_split(tmp_path, "train")) == 1
    assert clean_partial(tmp_path / "elsewhere") == []


def test_split_writer_refuses_inconsistent_slice_count(tmp_path):
    with pytest.raises(DataError, match="ndct has 3 slices but 2"):
        with SplitWriter(tmp_path, "train", {"dataset": "t", "hu_window": [-1000, 2000]}) as w:
            w.array("ndct", (3, 4, 4), np.float32)[:] = 0
            w.array("ldct", (3, 4, 4), np.float32)[:] = 0
            w.add_slice(np.zeros((0, 4)))
            w.add_slice(np.zeros((0, 4)))
    assert not (tmp_path / "data" / "train").exists() and _tmp_folders(tmp_path) == []


def test_split_writer_bad_array_name(tmp_path):
    with pytest.raises(ParameterError, match="'mask'"):
        with SplitWriter(tmp_path, "train", {}) as w:
            w.array("mask", (1, 4, 4), np.float32)
    assert _tmp_folders(tmp_path) == []


def test_fingerprint_and_even_subset():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    for n in range(1, 25):
        assert cache._even_subset(n, 0) == list(range(n))
        assert cache._even_subset(n, n + 3) == list(range(n))
        for keep in range(1, n):
            idx = cache._even_subset(n, keep)
            assert len(idx) == keep and idx == sorted(set(idx)) and idx[0] == 0
            if keep > 1:
                assert idx[-1] == n - 1
                gaps = np.diff(idx)
                assert gaps.max() - gaps.min() <= 1  # evenly spread


# ----------------------------------------------------------------- paired DICOM (Mayo-2016 layout)

MAYO_PATIENTS = {"train": {"L001": 4, "L002": 3}, "test": {"L003": 3}}


def _volumes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ndct = rng.integers(-1000, 1500, size=(n, SIZE, SIZE)).astype(np.float64)
    ndct[:, 0, 0] = 100 * seed + np.arange(n)  # patient and slice readable from one pixel
    ldct = ndct + np.rint(rng.normal(0, 25, size=ndct.shape))
    return ndct, ldct


def _write_manifest(tmp_path: Path, base: str, **changes) -> Path:
    doc = yaml.safe_load((MANIFEST_DIR / f"{base}.yaml").read_text(encoding="utf-8"))
    doc.update(changes)
    path = tmp_path / f"mini_{base}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def mayo(tmp_path):
    """A miniature Mayo-2016 copy: (manifest, root, {patient: (ndct, ldct)}), z0 differs per patient."""
    root = tmp_path / "mayo"
    volumes = {}
    for k, (patient, n) in enumerate(((p, n) for s in MAYO_PATIENTS.values() for p, n in s.items())):
        ndct, ldct = _volumes(n, seed=k + 1)
        z0 = -50.0 * k
        write_ct_series(root / patient / "full_1mm", ndct, z0=z0, patient_id=patient, seed=k)
        write_ct_series(root / patient / "quarter_1mm", ldct, z0=z0, patient_id=patient, seed=k + 10)
        volumes[patient] = (ndct, ldct)
    path = _write_manifest(
        tmp_path, "mayo2016", name="mini_mayo", image_size=SIZE,
        splits={s: list(p) for s, p in MAYO_PATIENTS.items()},
        expected_counts={s: sum(p.values()) for s, p in MAYO_PATIENTS.items()},
    )
    return load_manifest(path, data_root=root), root, volumes


def test_paired_dicom_cache_holds_the_written_slices_in_z_order(mayo, tmp_path):
    manifest, root, volumes = mayo
    run = tmp_path / "run"
    splits = prepare_data(manifest, run, progress=False)
    assert set(splits) == {"train", "test"}
    for name, patients in MAYO_PATIENTS.items():
        sp = splits[name]
        assert len(sp) == sum(patients.values())
        assert sp.meta["patients"] == list(patients)
        assert sp.phantom is None and sp.labels is None and all(len(b) == 0 for b in sp.boxes)
        want_nd = np.concatenate([volumes[p][0] for p in patients])
        want_ld = np.concatenate([volumes[p][1] for p in patients])
        np.testing.assert_array_equal(sp.ndct, want_nd.astype(np.float32))  # slope 1: exact
        np.testing.assert_array_equal(sp.ldct, want_ld.astype(np.float32))
        for info in sp.meta["slices"]:
            assert Path(info["ndct_file"]).parent == root / info["patient"] / "full_1mm"
            assert Path(info["ldct_file"]).parent == root / info["patient"] / "quarter_1mm"
            assert info["pixel_size_mm"] == [0.7, 0.7]
    inode = os.stat(splits["train"].path / "ndct.npy").st_ino
    again = prepare_data(manifest, run, progress=False)  # unchanged: reused
    assert os.stat(again["train"].path / "ndct.npy").st_ino == inode


def test_paired_dicom_slope_quantisation(tmp_path):
    rng = np.random.default_rng(3)
    ndct = rng.uniform(-1000, 1000, size=(3, SIZE, SIZE))
    root = tmp_path / "mayo"
    for role in ("full_1mm", "quarter_1mm"):
        write_ct_series(root / "L001" / role, ndct, patient_id="L001", slope=0.5, intercept=-1024.0)
    path = _write_manifest(tmp_path, "mayo2016", image_size=SIZE, splits={"train": ["L001"]},
                           expected_counts={"train": 3})
    sp = prepare_data(load_manifest(path, data_root=root), tmp_path / "run", progress=False)["train"]
    np.testing.assert_allclose(sp.ndct, ndct, atol=0.25 + 1e-4, rtol=0)  # half the slope quantum
    np.testing.assert_array_equal(sp.ndct, sp.ldct)


def test_max_slices_per_patient_keeps_evenly_spread_slices(mayo, tmp_path):
    manifest, _, volumes = mayo
    sp = prepare_data(manifest, tmp_path / "run", splits=["train"], max_slices_per_patient=2, progress=False)
    train = sp["train"]
    assert list(sp) == ["train"] and len(train) == 4
    want = np.concatenate([volumes["L001"][0][[0, 3]], volumes["L002"][0][[0, 2]]])
    np.testing.assert_array_equal(train.ndct, want.astype(np.float32))
    assert train.meta["max_slices_per_patient"] == 2
    full = prepare_data(manifest, tmp_path / "run", splits=["train"], progress=False)["train"]
    assert len(full) == 7  # a different setting rebuilds


def test_mismatched_slice_counts_name_the_patient(mayo, tmp_path):
    manifest, root, _ = mayo
    sorted(root.glob("L002/quarter_1mm/*.IMA"))[0].unlink()
    with pytest.raises(DataError, match="L002"):
        prepare_data(manifest, tmp_path / "run", progress=False)
    with pytest.raises(DataError, match="patient L002: 3 full-dose slices .* but 2 low-dose"):
        build_paired_dicom_split(tmp_path / "run", manifest, "train", progress=False)
    assert list_splits(tmp_path / "run") == []


def test_mismatched_positions_name_the_patient(mayo, tmp_path):
    manifest, root, volumes = mayo
    for f in root.glob("L003/quarter_1mm/*.IMA"):
        f.unlink()
    write_ct_series(root / "L003" / "quarter_1mm", volumes["L003"][1], z0=-100.0 + 2.0, patient_id="L003")
    with pytest.raises(DataError, match=r"patient L003: full- and low-dose slice positions differ by up to 2\.00 mm"):
        prepare_data(manifest, tmp_path / "run", splits=["test"], progress=False)


def test_mismatched_image_size_names_the_patient(mayo, tmp_path):
    manifest, root, volumes = mayo
    for f in root.glob("L003/quarter_1mm/*.IMA"):
        f.unlink()
    write_ct_series(root / "L003" / "quarter_1mm", volumes["L003"][1][:, :16, :], z0=-100.0, patient_id="L003")
    with pytest.raises(DataError, match="patient L003: full-dose images are"):
        prepare_data(manifest, tmp_path / "run", splits=["test"], progress=False)


def test_patients_of_different_image_sizes_are_refused_and_nothing_is_cached(mayo, tmp_path):
    manifest, root, volumes = mayo
    for role, k in (("full_1mm", 0), ("quarter_1mm", 1)):
        for f in root.glob(f"L002/{role}/*.IMA"):
            f.unlink()
        write_ct_series(root / "L002" / role, volumes["L002"][k][:, :16, :16], z0=-50.0, patient_id="L002")
    with pytest.raises(DataError, match=r"patient L002 has \(16, 16\) images but patient L001"):
        prepare_data(manifest, tmp_path / "run", splits=["train"], progress=False)
    assert list_splits(tmp_path / "run") == [] and _tmp_folders(tmp_path / "run") == []


def test_paired_dicom_reads_one_patient_at_a_time(mayo, tmp_path, monkeypatch):
    # A real split (thousands of 512 x 512 slices) must not be held in memory at once:
    # each patient's series is written to the memory-mapped cache before the next is read.
    manifest, _, _ = mayo
    from ldct_nb.data import dicom

    import weakref

    live, peak, real = [0], [0], dicom.read_series

    def tracked(files):
        series = real(files)
        live[0] += 1
        peak[0] = max(peak[0], live[0])
        weakref.finalize(series, lambda: live.__setitem__(0, live[0] - 1))
        return series

    monkeypatch.setattr(dicom, "read_series", tracked)
    sp = prepare_data(manifest, tmp_path / "run", splits=["train"], progress=False)["train"]
    assert len(sp) == 7
    assert peak[0] <= 2  # the full- and low-dose series of one patient


# ----------------------------------------------------------------- detection sets (PE-CT layout)


def _disc_image(rng, lesion: tuple[int, int, int, int] | None) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    img = np.full((SIZE, SIZE), -1000.0)
    img[np.hypot(yy - 15.5, xx - 15.5) < 13] = 40.0
    if lesion is not None:
        x1, y1, x2, y2 = lesion
        img[y1:y2, x1:x2] = 300.0
    return np.rint(img + rng.normal(0, 2, img.shape) * (img > -1000))


@pytest.fixture
def pe_ct(tmp_path):
    """A miniature detection set: two train slices of patient P1, one test slice of P2."""
    root = tmp_path / "pe"
    rng = np.random.default_rng(0)
    boxes = {"P1/a/slice_0001.dcm": [(8, 9, 14, 15), (18, 10, 22, 13)], "P1/a/slice_0002.dcm": [],
             "P2/a/slice_0001.dcm": [(12, 16, 20, 22)]}
    images = {}
    for image, bxs in boxes.items():
        images.setdefault(image.rsplit("/", 1)[0], []).append(_disc_image(rng, bxs[0] if bxs else None))
    for folder, slices in images.items():
        write_ct_series(root / folder, np.stack(slices), suffix=".dcm", shuffle=False, patient_id=folder[:2])
    lines = ["image,x1,y1,x2,y2,label,split,patient"]
    for image, bxs in boxes.items():
        split, patient = ("train", "P1") if image.startswith("P1") else ("test", "P2")
        lines += [f"{image},{x1},{y1},{x2},{y2},1,{split},{patient}" for x1, y1, x2, y2 in bxs]
        if not bxs:
            lines.append(f"{image},,,,,,{split},{patient}")  # an image without lesion
    (root / "annotations.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = _write_manifest(tmp_path, "pe_ct", name="mini_pe", image_size=SIZE,
                           expected_counts={"train": 2, "test": 1})
    return load_manifest(path, data_root=root), root, boxes


def test_detection_cache_boxes_and_simulated_ldct(pe_ct, tmp_path):
    manifest, root, boxes = pe_ct
    splits = prepare_data(manifest, tmp_path / "run", progress=False)
    assert {k: len(v) for k, v in splits.items()} == {"train": 2, "test": 1}
    for sp in splits.values():
        assert [s["id"] for s in sp.meta["slices"]] == sorted(s["id"] for s in sp.meta["slices"])
        for k, info in enumerate(sp.meta["slices"]):
            want = np.asarray(boxes[info["id"]], np.float32).reshape(-1, 4)
            np.testing.assert_array_equal(sp.boxes[k], want)  # the slice without lesion has no box
            assert info["patient"] == info["id"][:2]
            assert sp.meta["n0"] == 3000.0
    train = splits["train"]
    nd, ld = np.asarray(train.ndct), np.asarray(train.ldct)
    # the NDCT is the file's HU image; the LDCT is simulated from it at N0 = 3000
    yy, xx = np.mgrid[:SIZE, :SIZE]
    inner = (np.hypot(yy - 15.5, xx - 15.5) < 9) & (nd[1] < 100)
    assert abs(float(nd[1][inner].mean()) - 40) < 2 and float(nd[1][inner].std()) < 4
    assert float(ld[1][inner].std()) > 3 * float(nd[1][inner].std())
    assert abs(float(ld[1][inner].mean()) - 40) < 40
    np.testing.assert_array_equal(train.ndct[0][9:15, 8:14] > 200, True)  # box 1 on the bright lesion


def test_detection_seed_changes_only_the_noise(pe_ct, tmp_path):
    manifest = pe_ct[0]
    a = prepare_data(manifest, tmp_path / "a", splits=["test"], progress=False)["test"]
    b = prepare_data(manifest, tmp_path / "b", splits=["test"], progress=False)["test"]
    c = prepare_data(manifest, tmp_path / "c", splits=["test"], seed=1, progress=False)["test"]
    np.testing.assert_array_equal(a.ldct, b.ldct)
    np.testing.assert_array_equal(a.ndct, c.ndct)
    assert not np.array_equal(a.ldct, c.ldct)
