"""Tests of ldct_nb.data.cache: the synthetic, paired-DICOM and detection builders,
reuse by fingerprint, atomic replacement, and the errors of ``open_split``."""
from __future__ import annotations

import json
import os
import re
import warnings
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
from ldct_nb.errors import DataError, DataWarning, ParameterError

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
    return sorted(p.name for p in data.iterdir() if p.name.startswith(".") and p.name != cache.LOCK_NAME) \
        if data.is_dir() else []


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
        want_ld = np.maximum(np.concatenate([volumes[p][1] for p in patients]), -1024.0)  # the reader clamps
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

    def tracked(files, **kwargs):
        series = real(files, **kwargs)
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
            assert sp.meta["n0"] == manifest.raw["simulation"]["n0"]  # the N0 used (LIDnet's 3000, calibrated)
    train = splits["train"]
    nd, ld = np.asarray(train.ndct), np.asarray(train.ldct)
    # the NDCT is the file's HU image; the LDCT is simulated from it at the manifest's N0
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


# ----------------------------------------------------------------- crash safety: a process killed midway

KILL_DURING_SWAP = """
import os, shutil, signal, sys
from ldct_nb.data import cache
run, point = sys.argv[1], sys.argv[2]
real_replace, real_rmtree = os.replace, shutil.rmtree

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def replace(src, dst):
    src, dst = str(src), str(dst)
    if point == "before-swap" and src.endswith("/data/train"):
        die()  # the new split is complete in its temporary folder; nothing renamed yet
    if point == "between-renames" and os.path.basename(src).startswith(".train.tmp-"):
        die()  # the old split was renamed aside, the new one not yet into place
    return real_replace(src, dst)

def rmtree(path, *args, **kwargs):
    if point == "after-swap" and ".train.old-" in str(path):
        die()  # the new split is in place, the old one not yet removed
    return real_rmtree(path, *args, **kwargs)

cache.os.replace, cache.shutil.rmtree = replace, rmtree
cache.build_synthetic_split(run, "train", n_slices=2, image_size=32, base_seed=50, progress=False)
print("not killed")
"""


@pytest.mark.parametrize("point, survivor", [
    ("before-swap", "old"), ("between-renames", "new"), ("after-swap", "new"),
])
def test_a_process_killed_during_the_swap_leaves_the_old_or_the_new_cache(tmp_path, point, survivor):
    # Formerly a kill between the two renames, then clean_partial, deleted both the old and the new cache.
    import subprocess
    import sys

    old = _synthetic(tmp_path, n_slices=2, base_seed=10)
    old_fp, old_ndct = old.meta["fingerprint"], np.array(old.ndct)
    script = tmp_path / "killed.py"
    script.write_text(KILL_DURING_SWAP)
    done = subprocess.run([sys.executable, str(script), str(tmp_path), point], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == -9 and "not killed" not in done.stdout, done.stderr  # really killed midway
    leftovers = _tmp_folders(tmp_path)
    assert leftovers, "the kill left nothing to recover: the hook point was not reached"
    if point == "between-renames":
        assert not (tmp_path / "data" / "train").exists()  # the instant the old code lost both copies
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # "restored from ..."
        clean_partial(tmp_path)  # what prepare_data does first
    assert _tmp_folders(tmp_path) == []
    found = open_split(tmp_path, "train")
    new = _synthetic(tmp_path / "reference", n_slices=2, base_seed=50)  # what the killed process was writing
    if survivor == "old":
        assert found.meta["fingerprint"] == old_fp
        np.testing.assert_array_equal(found.ndct, old_ndct)
    else:
        assert found.meta["fingerprint"] == new.meta["fingerprint"] != old_fp
        np.testing.assert_allclose(found.ndct, new.ndct, atol=0.01)  # float sums may differ across processes


def test_a_reader_repairs_an_interrupted_swap_itself(tmp_path):
    old = _synthetic(tmp_path, n_slices=1)
    data = tmp_path / "data"
    os.replace(data / "train", data / ".train.old-0123abcd")  # as a kill between the renames leaves it
    (data / ".train.tmp-89abcdef").mkdir()  # an incomplete new copy: not a candidate
    with pytest.warns(DataWarning, match=r"restored from \.train\.old-0123abcd"):
        again = open_split(tmp_path, "train")
    np.testing.assert_array_equal(again.ndct, old.ndct)
    assert _tmp_folders(tmp_path) == []


def test_clean_partial_never_deletes_the_folder_another_process_is_writing(tmp_path):
    # Formerly prepare_data removed every .tmp- folder at start, including a cache another run was building.
    import subprocess
    import sys
    import time

    _synthetic(tmp_path, n_slices=1)
    writer = tmp_path / "data" / ".val.tmp-0123abcd"
    code = ("import sys, time, pathlib\nfrom ldct_nb.data import cache\n"
            "with cache.data_lock(sys.argv[1]):\n"
            "    p = pathlib.Path(sys.argv[2]); p.mkdir(); print('writing', flush=True); time.sleep(2)\n"
            "    print('intact' if p.is_dir() else 'deleted', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(writer)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    start = time.monotonic()
    clean_partial(tmp_path)  # waits for the writer's lock, then cleans what the writer left
    assert time.monotonic() - start > 0.5
    assert proc.stdout.readline().strip() == "intact"
    assert proc.wait(timeout=60) == 0


# ----------------------------------------------------------------- fingerprints: inputs, manifest, code


def test_fingerprint_includes_the_data_stage_code_version(tmp_path, monkeypatch):
    first = _synthetic(tmp_path, n_slices=1)
    assert first.meta["code_version"] == cache.data_code_version()
    monkeypatch.setattr(cache, "data_code_version", lambda folder=None: "changed-code")
    second = _synthetic(tmp_path, n_slices=1)
    assert second.meta["fingerprint"] != first.meta["fingerprint"]
    # the version is a checksum of the data-stage sources: editing one changes it
    import shutil as _shutil
    src = Path(cache.__file__).parent
    copy = tmp_path / "src"
    copy.mkdir()
    for name in cache.DATA_STAGE_MODULES:
        _shutil.copy(src / f"{name}.py", copy / f"{name}.py")
    monkeypatch.undo()
    assert cache.data_code_version(copy) == cache.data_code_version()
    (copy / "simulate.py").write_text((copy / "simulate.py").read_text() + "\n# changed\n")
    assert cache.data_code_version(copy) != cache.data_code_version()


def test_a_changed_manifest_rebuilds_the_synthetic_cache(tmp_path):
    doc = (MANIFEST_DIR / "synthetic.yaml").read_text(encoding="utf-8")
    path = tmp_path / "synthetic_copy.yaml"
    path.write_text(doc, encoding="utf-8")
    small = dict(image_size=SIZE, counts={"train": 1}, progress=False)
    first = prepare_data(load_manifest(path), tmp_path / "run", **small)["train"]
    path.write_text(doc + "\n# edited\n", encoding="utf-8")
    second = prepare_data(load_manifest(path), tmp_path / "run", **small)["train"]
    assert second.meta["manifest_sha256"] != first.meta["manifest_sha256"]
    assert second.meta["fingerprint"] != first.meta["fingerprint"]


def test_a_changed_dicom_file_rebuilds_the_paired_cache(mayo, tmp_path):
    # Formerly the fingerprint held only paths: a replaced DICOM file reused the stale cache.
    manifest, root, volumes = mayo
    run = tmp_path / "run"
    before = prepare_data(manifest, run, splits=["test"], progress=False)["test"]
    new = volumes["L003"][0] + 7.0
    for f in root.glob("L003/full_1mm/*.IMA"):
        f.unlink()
    write_ct_series(root / "L003" / "full_1mm", new, z0=-100.0, patient_id="L003")
    after = prepare_data(manifest, run, splits=["test"], progress=False)["test"]
    assert after.meta["fingerprint"] != before.meta["fingerprint"]
    np.testing.assert_array_equal(after.ndct, new.astype(np.float32))


def test_hash_files_sees_a_change_that_keeps_size_and_modification_time(mayo, tmp_path):
    manifest, root, _ = mayo
    files = sorted(root.glob("L003/full_1mm/*.IMA"))
    stat_sig = cache.file_signature(files)
    hash_sig = cache.file_signature(files, hash_files=True)
    st = files[0].stat()
    data = bytearray(files[0].read_bytes())
    data[-1] ^= 0xFF  # one pixel byte
    files[0].write_bytes(bytes(data))
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.file_signature(files) == stat_sig  # size and time alone cannot see it
    assert cache.file_signature(files, hash_files=True) != hash_sig
    with pytest.raises(DataError, match="cannot read the input file"):
        cache.file_signature([root / "absent.IMA"])


# ----------------------------------------------------------------- validation on open, damaged caches


def _meta(sp):
    return json.loads((sp.path / "meta.json").read_text())


def test_open_refuses_arrays_that_disagree_with_meta_or_each_other(tmp_path):
    sp = _synthetic(tmp_path, n_slices=2)
    np.save(sp.path / "ldct.npy", np.zeros((2, SIZE, SIZE - 1), np.float32))  # ldct no longer like ndct
    with pytest.raises(DataError, match=r"ldct\.npy: shape \[2, 32, 31\], meta.json says \[2, 32, 32\]"):
        open_split(tmp_path, "train")
    sp = _synthetic(tmp_path, n_slices=2, force=True)
    np.save(sp.path / "labels.npy", np.zeros((2, SIZE, SIZE), np.float32))
    with pytest.raises(DataError, match=r"labels\.npy: dtype float32, expected uint8"):
        open_split(tmp_path, "train")


def test_open_refuses_boxes_outside_the_image(tmp_path):
    sp = _synthetic(tmp_path, n_slices=1)
    boxes = json.loads((sp.path / "boxes.json").read_text())
    boxes["boxes"][0] = [[10.0, 10.0, SIZE + 5.0, 20.0]]
    boxes["labels"][0] = [1]
    (sp.path / "boxes.json").write_text(json.dumps(boxes))
    with pytest.raises(DataError, match=r"boxes\.json: slice 0: box \[10\.0, 10\.0, 37\.0, 20\.0\] is empty or "
                                        r"leaves the 32x32 image"):
        open_split(tmp_path, "train")
    with pytest.raises(DataError, match="leaves the 4x4 image"):
        with SplitWriter(tmp_path / "w", "train", {"dataset": "t", "hu_window": [-1000, 2000]}) as w:
            w.array("ndct", (1, 4, 4), np.float32)[:] = 0
            w.array("ldct", (1, 4, 4), np.float32)[:] = 0
            w.add_slice(np.array([[0, 0, 5, 2]]))
    assert list_splits(tmp_path / "w") == []


def test_split_writer_refuses_ldct_of_another_shape(tmp_path):
    with pytest.raises(DataError, match=r"ldct is \(1, 4, 5\) but ndct is \(1, 4, 4\)"):
        with SplitWriter(tmp_path, "train", {"dataset": "t", "hu_window": [-1000, 2000]}) as w:
            w.array("ndct", (1, 4, 4), np.float32)[:] = 0
            w.array("ldct", (1, 4, 5), np.float32)[:] = 0
            w.add_slice(np.zeros((0, 4)))
    assert _tmp_folders(tmp_path) == []


@pytest.mark.parametrize("damage", ["truncated ndct.npy", "garbage ldct.npy", "corrupt meta.json", "non-object meta.json"])
def test_a_damaged_cache_is_refused_by_readers_and_rebuilt_by_the_stage(tmp_path, damage):
    sp = _synthetic(tmp_path, n_slices=2)
    good = np.array(sp.ndct)
    name = damage.split()[1]
    target = sp.path / name
    if damage.startswith("truncated"):
        target.write_bytes(target.read_bytes()[:200])
    elif damage.startswith("garbage"):
        target.write_bytes(b"not an npy file at all")
    elif damage.startswith("corrupt"):
        target.write_text("{ broken")
    else:
        target.write_text("[1, 2]")
    del sp
    with pytest.raises(DataError, match=re.escape(str(target)) + ".*rerun notebook 01_data") as err:
        open_split(tmp_path, "train")
    assert "allow_pickle" not in str(err.value)  # numpy's advice to load a garbage file unsafely is not passed on
    if damage.startswith("garbage"):
        assert "no .npy header: not an array file" in str(err.value)
    with pytest.warns(DataWarning, match="rebuilding split 'train'"):
        rebuilt = _synthetic(tmp_path, n_slices=2)
    np.testing.assert_array_equal(rebuilt.ndct, good)


# ----------------------------------------------------------------- real data: counts, series, padding


def test_prepare_refuses_a_split_with_missing_slices_unless_partial_is_allowed(mayo, tmp_path):
    manifest, root, volumes = mayo
    for role in ("full_1mm", "quarter_1mm"):
        sorted(root.glob(f"L001/{role}/*.IMA"))[-1].unlink()
    with pytest.raises(DataError, match=r"split 'train' has 6 slices on disk, expected 7 .*L001 3, L002 3"):
        prepare_data(manifest, tmp_path / "run", progress=False)
    assert list_splits(tmp_path / "run") == []
    with pytest.warns(DataWarning, match="accepted as partial data"):
        splits = prepare_data(manifest, tmp_path / "run", allow_partial=True, progress=False)
    assert len(splits["train"]) == 6


def test_two_series_in_a_patient_folder_are_refused_or_selected_by_slice_thickness(mayo, tmp_path):
    manifest, root, volumes = mayo
    extra = volumes["L003"][0][:1]
    for role in ("full_1mm", "quarter_1mm"):  # a 3 mm series in the same folders
        write_ct_series(root / "L003" / role, extra, z0=500.0, dz=3.0, patient_id="L003", suffix=".3mm.IMA",
                        slice_thickness=3.0)
    loose = load_manifest(_write_manifest(tmp_path, "mayo2016", name="mini_mayo", image_size=SIZE,
                                          splits={"test": ["L003"]}, expected_counts={}, slice_thickness_mm=None),
                          data_root=root)
    with pytest.raises(DataError, match=r"(?s)more than one series.*SliceThickness 1 mm: 3 file\(s\).*SliceThickness "
                                        r"3 mm: 1 file\(s\)"):
        prepare_data(loose, tmp_path / "run", progress=False)
    select = load_manifest(_write_manifest(tmp_path, "mayo2016", name="mini_mayo", image_size=SIZE,
                                           splits={"test": ["L003"]}, expected_counts={}), data_root=root)
    sp = prepare_data(select, tmp_path / "run", progress=False)["test"]  # slice_thickness_mm: 1.0 selects
    np.testing.assert_array_equal(sp.ndct, volumes["L003"][0].astype(np.float32))
    assert sp.meta["series"]["L003"]["ndct"]["slice_thickness_mm"] == 1.0
    strict = load_manifest(_write_manifest(tmp_path, "mayo2016", name="mini_mayo", image_size=SIZE,
                                           splits={"test": ["L003"]}, expected_counts={"test": 3}), data_root=root)
    with pytest.raises(DataError, match=r"has 4 slices on disk, expected 3.*matches more files"):
        prepare_data(strict, tmp_path / "run", progress=False)  # the counts catch the extra series first


def test_paired_cache_records_padding_and_missing_slices(mayo, tmp_path):
    manifest, root, volumes = mayo
    import pydicom

    for f in root.glob("L003/full_1mm/*.IMA"):
        ds = pydicom.dcmread(f)
        ds.add_new("PixelPaddingValue", "SS", int(ds.pixel_array.min()))
        ds.save_as(f, enforce_file_format=True)
    sp = prepare_data(manifest, tmp_path / "run", splits=["test"], progress=False)["test"]
    report = sp.meta["series"]["L003"]
    assert report["ndct"]["padding_pixels"] >= 3 and report["ldct"]["padding_pixels"] == 0
    assert report["ndct"]["gaps"] == [] and float(np.min(sp.ndct)) >= -1024.0


# ----------------------------------------------------------------- detection: manifest settings, labels, seeds


def test_detection_honours_n_views_noise_and_labels_of_the_manifest(pe_ct, tmp_path):
    manifest, root, boxes = pe_ct
    doc = yaml.safe_load(manifest.path.read_text())
    doc["simulation"].update(n_views=12, electronic_noise_std=5.0)
    lines = (root / "annotations.csv").read_text().splitlines()
    lines[2] = lines[2].replace(",1,train,", ",2,train,")  # the second box of slice 1 is class 2
    (root / "annotations.csv").write_text("\n".join(lines) + "\n")
    path = tmp_path / "views.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    m = load_manifest(path, data_root=root)
    train = prepare_data(m, tmp_path / "run", splits=["train"], seed=3, progress=False)["train"]
    assert train.meta["n_views"] == 12 and train.meta["electronic_noise_std"] == 5.0
    info = train.meta["slices"][0]
    want = simulate.simulate_ldct(np.array(train.ndct[0]), float(doc["simulation"]["n0"]), seed=info["noise_seed"],
                                  pixel_size_mm=0.7, n_views=12, electronic_noise_std=5.0,
                                  filter_name=doc["simulation"]["filter_name"])
    np.testing.assert_array_equal(train.ldct[0], want)  # the manifest's views and electronic noise were used
    assert [lab.tolist() for lab in train.box_labels] == [[1, 2], []]


def test_detection_splits_never_share_noise(pe_ct, tmp_path):
    # Formerly slice k of every split used the seed seed * 1000003 + k: train and test noise were identical.
    manifest, root, _ = pe_ct
    train_file = root / "P1/a/slice_0001.dcm"
    test_file = root / "P2/a/slice_0001.dcm"
    test_file.write_bytes(train_file.read_bytes())  # the same image in both splits
    splits = prepare_data(manifest, tmp_path / "run", progress=False)
    np.testing.assert_array_equal(splits["train"].ndct[0], splits["test"].ndct[0])
    sim = manifest.raw["simulation"]  # noise = LDCT - its noise-free reconstruction (not the smoothing of the filter)
    clean = simulate.reconstruct_noise_free(np.asarray(splits["train"].ndct[0]), pixel_size_mm=0.7,
                                            filter_name=sim["filter_name"])
    noise_train = np.asarray(splits["train"].ldct[0]) - clean
    noise_test = np.asarray(splits["test"].ldct[0]) - clean
    assert abs(np.corrcoef(noise_train.ravel(), noise_test.ravel())[0, 1]) < 0.5
    assert splits["train"].meta["slices"][0]["noise_seed"] != splits["test"].meta["slices"][0]["noise_seed"]


def test_detection_refuses_missing_pixel_spacing(pe_ct, tmp_path):
    manifest, root, _ = pe_ct
    import pydicom

    f = root / "P2/a/slice_0001.dcm"
    ds = pydicom.dcmread(f)
    del ds.PixelSpacing
    ds.save_as(f, enforce_file_format=True)
    with pytest.raises(DataError, match=re.escape(f"{f}: no PixelSpacing")):
        prepare_data(manifest, tmp_path / "run", splits=["test"], progress=False)


def test_detection_refuses_a_box_outside_the_image_file(pe_ct, tmp_path):
    manifest, root, _ = pe_ct
    f = root / "P2/a/slice_0001.dcm"
    f.unlink()
    write_ct_series(f.parent, np.full((1, 16, 16), 40.0), suffix=".dcm", shuffle=False, patient_id="P2")
    with pytest.raises(DataError, match=r"annotations\.csv: line \d+: the box \(12, 16, 20, 22\) leaves the 16x16 "
                                        r"image .*slice_0001\.dcm"):
        prepare_data(manifest, tmp_path / "run", splits=["test"], progress=False)
    assert list_splits(tmp_path / "run") == []


def test_detection_padding_reaches_the_simulation_as_air(pe_ct, tmp_path, monkeypatch):
    manifest, root, _ = pe_ct
    import pydicom

    f = root / "P2/a/slice_0001.dcm"
    ds = pydicom.dcmread(f)
    pixels = ds.pixel_array.copy()
    pixels[:3, :] = -2000  # stored padding: HU -3024 when read naively
    ds.PixelData = pixels.astype("<i2").tobytes()
    ds.add_new("PixelPaddingValue", "SS", -2000)
    ds.save_as(f, enforce_file_format=True)
    seen = []
    real = simulate.simulate_ldct

    def spy(hu, *args, **kwargs):
        seen.append(float(np.min(hu)))
        return real(hu, *args, **kwargs)

    monkeypatch.setattr(simulate, "simulate_ldct", spy)
    sp = prepare_data(manifest, tmp_path / "run", splits=["test"], progress=False)["test"]
    assert seen and min(seen) >= -1024.0  # never the padding's -3024 HU
    assert (np.asarray(sp.ndct[0])[:3] == -1000.0).all()
    assert sp.meta["slices"][0]["padding_pixels"] == 3 * SIZE


def test_synthetic_bad_image_size_is_refused_before_any_array_is_made(tmp_path):
    for bad in (-1, 0, 32.5, "32"):  # formerly -1 reached numpy ("negative dimensions are not allowed")
        with pytest.raises(ParameterError, match="image_size must be an int >= 1"):
            _synthetic(tmp_path, image_size=bad)
    assert _tmp_folders(tmp_path) == []


def test_opening_a_split_another_process_is_writing_names_the_writer(tmp_path):
    import subprocess
    import sys

    code = ("import sys, time\nfrom ldct_nb.data import cache\n"
            "with cache.data_lock(sys.argv[1]):\n    print('writing', flush=True); time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        with pytest.raises(DataError, match=rf"no cached split 'train' .*process {proc.pid} is writing the cache now"):
            open_split(tmp_path, "train")
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(DataError) as err:  # the writer is gone: no stale "is writing" claim
        open_split(tmp_path, "train")
    assert "is writing" not in str(err.value)
