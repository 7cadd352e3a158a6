"""Tests of ldct_nb.data.manifest: shipped manifests, schema errors, roots, files."""
from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest
import yaml

from ldct_nb.data.manifest import (
    MANIFEST_DIR,
    Manifest,
    PatientFiles,
    available_manifests,
    load_manifest,
)
from ldct_nb.errors import DataError, DataWarning, ManifestError, ParameterError

SHIPPED = ["l_ct_a", "l_ct_g", "mayo2016", "mayo2020", "pe_ct", "synthetic", "synthetic_l_ct_a",
           "synthetic_l_ct_g", "synthetic_pe_ct"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("LDCT_MAYO2016_ROOT", "LDCT_MAYO2020_ROOT", "LDCT_PE_CT_ROOT",
                 "LDCT_L_CT_A_ROOT", "LDCT_L_CT_G_ROOT", "LDCT_TEST_ROOT"):
        monkeypatch.delenv(name, raising=False)


def _paired(**over) -> dict:
    doc = {
        "schema_version": 1,
        "name": "mini",
        "title": "Miniature Mayo-2016",
        "kind": "paired_dicom",
        "paper": "ascon",
        "source": {"url": "https://example.org", "terms": "test", "citation": "test"},
        "root_env": "LDCT_TEST_ROOT",
        "hu_window": [-1000, 2000],
        "display_window": [-160, 240],
        "slice_thickness_mm": 1.0,
        "image_size": 512,
        "layout": {"ndct": "{patient}/full_1mm/*.IMA", "ldct": "{patient}/quarter_1mm/*.IMA"},
        "splits": {"train": ["L067"], "test": ["L333"]},
        "expected_counts": {"train": 2, "test": 1},
        "checksums": {},
    }
    doc.update(over)
    return doc


def _detection(**over) -> dict:
    doc = _paired(kind="detection", paper="lidnet", splits={"train": [], "test": []},
                  annotations={"file": "annotations.csv", "format": "csv"},
                  simulation={"n0": 1000, "n0_unit": "photons per bin per view"})
    del doc["layout"]
    doc.update(over)
    return doc


def _write(tmp_path: Path, doc: dict, name: str = "mini.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _touch(root: Path, *rels: str) -> None:
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


# ----------------------------------------------------------------- shipped manifests


def test_available_manifests_lists_all_shipped():
    assert available_manifests() == SHIPPED
    assert MANIFEST_DIR.name == "data_manifests"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_manifest_loads(name):
    m = load_manifest(name)
    assert isinstance(m, Manifest)
    assert m.name == name
    assert m.path == (MANIFEST_DIR / f"{name}.yaml").resolve()
    assert m.raw["schema_version"] == 1
    assert m.hu_window == (-1000.0, 2000.0)
    assert m.display_window[0] < m.display_window[1]
    assert m.root is None
    assert len(m.sha256()) == 64
    assert name in repr(m)
    # every shipped manifest documents itself in comments
    assert (MANIFEST_DIR / f"{name}.yaml").read_text().lstrip().startswith("#")


def test_manifest_by_path_equals_by_name():
    by_path = load_manifest(MANIFEST_DIR / "mayo2016.yaml")
    assert by_path.splits == load_manifest("mayo2016").splits
    assert load_manifest(str(MANIFEST_DIR / "mayo2016.yaml")).name == "mayo2016"


def test_mayo2016_split_is_the_papers():
    m = load_manifest("mayo2016")
    assert m.kind == "paired_dicom" and m.paper == "ascon"
    assert m.splits == {
        "train": ("L067", "L096", "L109", "L143", "L192", "L286", "L291", "L310"),
        "test": ("L333", "L506"),
    }
    assert m.expected_counts == {"train": 4800, "test": 1136}
    assert m.image_size == 512
    assert m.raw["slice_thickness_mm"] == 1.0
    assert m.paper_settings["ascon"] == {
        "n_pos_local": 32, "n_pos_global": 512, "n_neg": 24, "train_input": "512x512 slices"}
    assert m.root_env == "LDCT_MAYO2016_ROOT"
    assert m.display_window == (-160.0, 240.0)


def test_mayo2020_split_is_the_papers():
    m = load_manifest("mayo2020")
    train = "L107 L114 L116 L125 L131 L134 L145 L150 L160 L170 L175 L178 L186 L187 L193 L203"
    assert m.splits == {"train": tuple(train.split()), "test": ("L110", "L123", "L148", "L179")}
    assert m.expected_counts == {"train": 9600, "test": 580}
    assert m.raw["train_patch_size"] == 256
    ascon = m.paper_settings["ascon"]
    assert (ascon["n_pos_local"], ascon["n_pos_global"], ascon["n_neg"]) == (16, 256, 24)


@pytest.mark.parametrize("name, train, test, n0", [
    ("pe_ct", 2000, 304, 3000), ("l_ct_a", 2500, 500, 1000), ("l_ct_g", 2500, 500, 1000)])
def test_detection_manifests_match_table_1(name, train, test, n0):
    m = load_manifest(name)
    assert m.kind == "detection" and m.paper == "lidnet"
    assert m.expected_counts == {"train": train, "test": test}
    assert m.raw["dataset"]["total"] == train + test
    assert m.raw["simulation"]["n0_paper"] == n0  # the paper's N0; "n0" is the calibrated one used (issue 10)
    assert "mu_water" in m.raw["simulation"]["n0_unit"]
    assert m.image_size == 512
    assert m.raw["annotations"] == {"file": "annotations.csv", "format": "csv"}


def test_synthetic_manifest_seeds_distinct():
    m = load_manifest("synthetic")
    assert m.kind == "synthetic" and m.root is None
    assert m.expected_counts == {"train": 64, "val": 8, "test": 16}
    assert {s: len(ids) for s, ids in m.splits.items()} == m.expected_counts
    seeds = {s: m.phantom_seeds(s) for s in m.splits}
    flat = [x for s in seeds.values() for x in s]
    assert len(flat) == len(set(flat)) == 88
    assert m.image_size == 256
    # the dose is given by its effect (issue 10): N0 is calibrated to the noise target
    assert m.raw["dose"]["n0_full"] is None and m.raw["dose"]["noise_target_hu"] == 12.0
    assert m.raw["dose"]["filter_name"] == "cosine" and m.raw["dose"]["n_views"] is None
    assert m.missing() == []
    m.check_available()  # nothing to read: no-op
    with pytest.raises(ParameterError, match="generated"):
        m.patients("train")
    with pytest.raises(ParameterError, match="synthetic"):
        load_manifest("synthetic", data_root="/tmp")


def test_unknown_name_lists_available():
    with pytest.raises(ManifestError) as err:
        load_manifest("nope")
    assert "mayo2016" in str(err.value) and "synthetic" in str(err.value)
    with pytest.raises(ManifestError, match="not found"):
        load_manifest("/does/not/exist.yaml")


# ----------------------------------------------------------------- schema errors


def test_patient_in_two_splits_is_leakage(tmp_path):
    path = _write(tmp_path, _paired(splits={"train": ["L067", "L096"], "test": ["L096"]}))
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    msg = str(err.value)
    assert "L096" in msg and "train" in msg and "test" in msg and "mini.yaml" in msg
    assert "leakage" in msg


def test_duplicate_patient_within_split(tmp_path):
    path = _write(tmp_path, _paired(splits={"train": ["L067", "L067"], "test": ["L333"]}))
    with pytest.raises(ManifestError, match="L067.*twice"):
        load_manifest(path)


def test_unknown_key_is_named(tmp_path):
    path = _write(tmp_path, _paired(hu_windows=[-1000, 2000]))
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert "'hu_windows'" in str(err.value) and "did you mean 'hu_window'" in str(err.value)
    assert "mini.yaml" in str(err.value)
    path = _write(tmp_path, _paired(layout={"ndct": "{patient}/a/*", "ldct": "{patient}/b/*",
                                            "extra": "x"}))
    with pytest.raises(ManifestError, match="layout.extra"):
        load_manifest(path)


@pytest.mark.parametrize("over, field", [
    ({"splits": {"train": ["L067"], "test": "L333"}}, "splits.test"),
    ({"splits": {"train": ["L067", 67], "test": ["L333"]}}, "splits.train"),
    ({"splits": {"train": [], "test": ["L333"]}}, "splits.train"),
    ({"image_size": "512"}, "image_size"),
    ({"image_size": True}, "image_size"),
    ({"expected_counts": {"train": 0, "test": 1}}, "expected_counts.train"),
    ({"expected_counts": {"val": 3}}, "expected_counts.val"),
    ({"schema_version": 2}, "schema_version"),
    ({"kind": "paired"}, "kind"),
    ({"paper": "redcnn"}, "paper"),
    ({"root_env": 5}, "root_env"),
    ({"source": {"url": "u", "terms": "t"}}, "source.citation"),
    ({"layout": {"ndct": "full/*.IMA", "ldct": "{patient}/q/*.IMA"}}, "layout.ndct"),
    ({"layout": {"ndct": "/abs/{patient}/*.IMA", "ldct": "{patient}/q/*.IMA"}}, "layout.ndct"),
    ({"checksums": {"a.IMA": "abc"}}, "checksums.a.IMA"),
    ({"train_patch_size": 1024}, "train_patch_size"),
])
def test_wrong_types_name_the_field(tmp_path, over, field):
    path = _write(tmp_path, _paired(**over))
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert f"'{field}'" in str(err.value)
    assert "mini.yaml" in str(err.value)


def test_missing_required_field(tmp_path):
    doc = _paired()
    del doc["splits"]
    with pytest.raises(ManifestError, match="'splits' is missing"):
        load_manifest(_write(tmp_path, doc))


@pytest.mark.parametrize("window", [[2000, -1000], [0, 0], [-1000], "wide", [-1000, "x"],
                                    [-1000, float("inf")]])
def test_bad_window(tmp_path, window):
    with pytest.raises(ManifestError, match="hu_window"):
        load_manifest(_write(tmp_path, _paired(hu_window=window)))


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("schema_version: 1\nname: x\nsplits: {train: [L067, \n  test: ]]\n")
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert "broken.yaml" in str(err.value) and "line" in str(err.value)


def test_duplicate_yaml_key(tmp_path):
    path = tmp_path / "dup.yaml"
    text = yaml.safe_dump(_paired(), sort_keys=False)
    path.write_text(text + "splits: {train: [L067], test: [L506]}\n")
    with pytest.raises(ManifestError, match="dup.yaml.*duplicate key 'splits'"):
        load_manifest(path)


def test_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ManifestError, match="list.yaml.*mapping"):
        load_manifest(path)


def test_synthetic_overlapping_seed_ranges(tmp_path):
    doc = yaml.safe_load((MANIFEST_DIR / "synthetic.yaml").read_text())
    doc["generator"]["split_seeds"] = {"train": 0, "val": 10, "test": 3000}
    with pytest.raises(ManifestError, match="split_seeds.*share phantoms"):
        load_manifest(_write(tmp_path, doc))
    doc["generator"]["split_seeds"] = {"train": 0, "val": 1000}
    with pytest.raises(ManifestError, match="split 'test'"):
        load_manifest(_write(tmp_path, doc))


# ----------------------------------------------------------------- roots


def test_root_from_env_and_argument(tmp_path, monkeypatch):
    path = _write(tmp_path, _paired())
    assert load_manifest(path).root is None
    env_root = tmp_path / "env_root"
    env_root.mkdir()
    monkeypatch.setenv("LDCT_TEST_ROOT", str(env_root))
    assert load_manifest(path).root == env_root.resolve()
    arg_root = tmp_path / "arg_root"
    arg_root.mkdir()
    m = load_manifest(path, data_root=arg_root)
    assert m.root == arg_root.resolve()
    assert m.require_root() == arg_root.resolve()
    assert str(arg_root.resolve()) in repr(m)


def test_require_root_names_env_var(tmp_path):
    m = load_manifest(_write(tmp_path, _paired()))
    assert "root: not set" in repr(m)
    with pytest.raises(DataError) as err:
        m.require_root()
    msg = str(err.value)
    assert "LDCT_TEST_ROOT" in msg and "data_root" in msg and "mini.yaml" in msg
    with pytest.raises(DataError, match="LDCT_TEST_ROOT"):
        m.patients("train")
    assert m.missing() == ["data root not set (pass data_root= or set $LDCT_TEST_ROOT)"]
    m2 = load_manifest(_write(tmp_path, _paired()), data_root=tmp_path / "absent")
    with pytest.raises(DataError, match="not a directory"):
        m2.require_root()


# ----------------------------------------------------------------- files


def test_miniature_mayo_layout(tmp_path):
    root = tmp_path / "data"
    _touch(root, "L067/full_1mm/b.IMA", "L067/full_1mm/a.IMA",
           "L067/quarter_1mm/b.IMA", "L067/quarter_1mm/a.IMA", "L067/full_1mm/notes.txt",
           "L333/full_1mm/a.IMA", "L333/quarter_1mm/a.IMA")
    m = load_manifest(_write(tmp_path, _paired()), data_root=root)
    train = m.patients("train")
    assert train == [PatientFiles(
        "L067", "train",
        (root.resolve() / "L067/full_1mm/a.IMA", root.resolve() / "L067/full_1mm/b.IMA"),
        (root.resolve() / "L067/quarter_1mm/a.IMA", root.resolve() / "L067/quarter_1mm/b.IMA"))]
    assert [p.patient for p in m.patients("test")] == ["L333"]
    assert m.missing() == []
    m.check_available()
    with pytest.raises(ParameterError, match="unknown split 'val'.*train, test"):
        m.patients("val")


def test_missing_patient_folder_and_empty_glob(tmp_path):
    root = tmp_path / "data"
    _touch(root, "L067/full_1mm/a.IMA", "L067/quarter_1mm/readme.txt")
    doc = _paired(splits={"train": ["L067", "L096"], "test": ["L333"]})
    m = load_manifest(_write(tmp_path, doc), data_root=root)
    items = m.missing()
    text = "\n".join(items)
    assert any("L096" in i and "does not exist" in i for i in items)
    assert any("L333" in i and "does not exist" in i for i in items)
    assert any("no file matches" in i and "quarter_1mm/*.IMA" in i for i in items)
    assert "full_1mm/*.IMA" not in text  # L067's NDCT glob matches a file
    with pytest.raises(DataError) as err:
        m.check_available()
    assert "L096" in str(err.value) and "mini.yaml" in str(err.value)
    # patients() still works: missing files are simply absent
    l067 = m.patients("train")[0]
    assert len(l067.ndct) == 1 and l067.ldct == ()


def test_missing_root_folder(tmp_path):
    m = load_manifest(_write(tmp_path, _paired()), data_root=tmp_path / "nowhere")
    assert len(m.missing()) == 1 and "does not exist" in m.missing()[0]
    with pytest.raises(DataError, match="nowhere"):
        m.check_available()


def test_checksums(tmp_path):
    root = tmp_path / "data"
    _touch(root, "L067/full_1mm/a.IMA")
    (root / "L067/full_1mm/a.IMA").write_bytes(b"slice data")
    good = hashlib.sha256(b"slice data").hexdigest()
    m = load_manifest(_write(tmp_path, _paired(checksums={"L067/full_1mm/a.IMA": good})),
                      data_root=root)
    m.verify_checksums()
    bad = hashlib.sha256(b"other").hexdigest()
    m = load_manifest(_write(tmp_path, _paired(checksums={"L067/full_1mm/a.IMA": bad})),
                      data_root=root)
    with pytest.raises(DataError, match="a.IMA"):
        m.verify_checksums()
    m = load_manifest(_write(tmp_path, _paired(checksums={"L067/full_1mm/zz.IMA": good})),
                      data_root=root)
    with pytest.raises(DataError, match="zz.IMA.*does not exist"):
        m.verify_checksums()
    assert any("zz.IMA" in i for i in m.missing())
    load_manifest(_write(tmp_path, _paired()), data_root=root).verify_checksums()  # none: no-op


def test_manifest_sha256_is_file_hash(tmp_path):
    path = _write(tmp_path, _paired())
    assert load_manifest(path).sha256() == hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------- detection annotations

CSV_HEADER = "image,x1,y1,x2,y2,label,split,patient\n"


def _detection_root(tmp_path: Path, rows: str) -> Path:
    root = tmp_path / "det"
    _touch(root, "P1/s1.dcm", "P1/s2.dcm", "P2/s1.dcm")
    (root / "annotations.csv").write_text(CSV_HEADER + textwrap.dedent(rows))
    return root


def test_detection_annotations_parse(tmp_path):
    root = _detection_root(tmp_path, """\
        P1/s2.dcm,10,20,30.5,40,1,train,P1
        P1/s1.dcm,100,120,130,160,1,train,P1
        P1/s1.dcm,5,5,9,9,1,train,P1
        P2/s1.dcm,,,,,,test,P2
        """)
    m = load_manifest(_write(tmp_path, _detection()), data_root=root)
    rows = m.annotations()
    assert len(rows) == 4
    assert rows[0]["box"] == (10.0, 20.0, 30.5, 40.0) and rows[0]["label"] == 1
    assert rows[0]["x2"] == 30.5 and rows[0]["line"] == 2
    assert rows[0]["path"] == root.resolve() / "P1/s2.dcm"
    assert rows[3]["box"] is None and rows[3]["label"] == 0
    train = m.patients("train")
    assert [p.patient for p in train] == ["P1"]
    assert train[0].ndct == (root.resolve() / "P1/s1.dcm", root.resolve() / "P1/s2.dcm")
    assert train[0].ldct == ()
    assert [p.patient for p in m.patients("test")] == ["P2"]
    assert m.missing() == []


@pytest.mark.parametrize("row, needle", [
    ("P1/s1.dcm,30,20,30,40,1,train,P1", "x2 > x1"),
    ("P1/s1.dcm,10,50,30,40,1,train,P1", "y2 > y1"),
    ("P1/s1.dcm,10,20,600,40,1,train,P1", "leaves"),
    ("P1/s1.dcm,a,20,30,40,1,train,P1", "numbers"),
    ("P1/s1.dcm,10,20,30,40,lesion,train,P1", "label"),
    ("P1/s1.dcm,10,20,30,40,1,valid,P1", "split"),
    ("P1/s1.dcm,10,20,30,40,1,train", "fewer fields"),
    ("/abs/s1.dcm,10,20,30,40,1,train,P1", "image"),
    ("P1/s1.dcm,10,20,30,40,1,test,P1", "leakage"),
])
def test_detection_bad_row_names_line(tmp_path, row, needle):
    root = _detection_root(tmp_path, "P1/s2.dcm,1,2,3,4,1,train,P1\n" + row + "\n")
    m = load_manifest(_write(tmp_path, _detection()), data_root=root)
    with pytest.raises(DataError) as err:
        m.annotations()
    msg = str(err.value)
    assert "annotations.csv" in msg and "line 3" in msg and needle in msg


def test_detection_missing_column(tmp_path):
    root = tmp_path / "det"
    root.mkdir()
    (root / "annotations.csv").write_text("image,x1,y1,x2,y2,split,patient\nP1/s1.dcm,1,2,3,4,train,P1\n")
    m = load_manifest(_write(tmp_path, _detection()), data_root=root)
    with pytest.raises(DataError, match="annotations.csv: line 1.*label"):
        m.annotations()


def test_detection_csv_must_agree_with_manifest_split(tmp_path):
    root = _detection_root(tmp_path, "P1/s1.dcm,1,2,3,4,1,train,P1\n")
    doc = _detection(splits={"train": ["P2"], "test": ["P1"]})
    m = load_manifest(_write(tmp_path, doc), data_root=root)
    with pytest.raises(DataError, match="line 2.*P1.*'test'"):
        m.annotations()


def test_detection_missing_images_and_file(tmp_path):
    root = _detection_root(tmp_path, "P9/s1.dcm,1,2,3,4,1,train,P9\n")
    m = load_manifest(_write(tmp_path, _detection()), data_root=root)
    assert any("P9/s1.dcm" in i for i in m.missing())
    with pytest.raises(DataError, match="P9"):
        m.check_available()
    (root / "annotations.csv").unlink()
    with pytest.raises(DataError, match="annotations.csv.*does not exist"):
        m.annotations()
    assert any("annotation file" in i for i in m.missing())


def test_annotations_only_for_detection(tmp_path):
    m = load_manifest(_write(tmp_path, _paired()), data_root=tmp_path)
    with pytest.raises(ParameterError, match="detection"):
        m.annotations()


# ----------------------------------------------------------------- archive layouts, counts, overlapping globs


def _shipped_copy(tmp_path: Path, name: str, **changes) -> Path:
    """The shipped manifest ``name`` with top-level fields replaced (small splits for the tests)."""
    doc = yaml.safe_load((MANIFEST_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    doc.update(changes)
    return _write(tmp_path, doc, f"{name}_copy.yaml")


def test_mayo2016_finds_the_aapm_archive_layout_and_the_flat_one(tmp_path):
    # Formerly "{patient}/full_1mm/*.IMA" found nothing in FD_1mm/L067/full_1mm/ (the archive's layout).
    archive, flat = tmp_path / "archive", tmp_path / "flat"
    _touch(archive, "FD_1mm/L067/full_1mm/a.IMA", "FD_1mm/L067/full_1mm/b.IMA", "QD_1mm/L067/quarter_1mm/a.IMA",
           "QD_1mm/L067/quarter_1mm/b.IMA", "FD_3mm/L067/full_3mm/a.IMA", "QD_3mm/L067/quarter_3mm/a.ima",
           "FD_1mm/L333/full_1mm/a.IMA", "QD_1mm/L333/quarter_1mm/a.IMA")
    _touch(flat, "L067/full_1mm/a.IMA", "L067/full_1mm/b.ima", "L067/quarter_1mm/a.IMA", "L067/quarter_1mm/b.IMA",
           "L333/full_1mm/a.IMA", "L333/quarter_1mm/a.IMA")
    path = _shipped_copy(tmp_path, "mayo2016", splits={"train": ["L067"], "test": ["L333"]},
                         expected_counts={"train": 2, "test": 1})
    for root in (archive, flat):
        m = load_manifest(path, data_root=root)
        l067 = m.patients("train")[0]
        assert len(l067.ndct) == 2 and len(l067.ldct) == 2, root
        assert all("full_1mm" in str(f) for f in l067.ndct) and all("quarter_1mm" in str(f) for f in l067.ldct)
        assert m.missing() == [] and m.check_counts() == {"train": {"L067": 2}, "test": {"L333": 1}}
    three = load_manifest(path, data_root=archive, variant="3mm")
    assert three.variant == "3mm" and three.raw["slice_thickness_mm"] == 3.0 and "variant=3mm" in repr(three)
    l067 = three.patients("train")[0]
    assert [f.name for f in l067.ndct] == ["a.IMA"] and [f.name for f in l067.ldct] == ["a.ima"]
    assert "full_3mm" in str(l067.ndct[0])
    assert three.expected_slices == {}  # ASCON reports no 3 mm counts: nothing to check
    with pytest.raises(ParameterError, match="no variant '5mm'; variants: 3mm"):
        load_manifest(path, data_root=archive, variant="5mm")


def test_a_bad_variant_is_refused_even_when_not_chosen(tmp_path):
    doc = _paired(variants={"thick": {"layout": {"ndct": "{patient}/f/*", "ldct": "{patient}/f/*"}}})
    with pytest.raises(ManifestError, match=r"mini\.yaml \(variant 'thick'\): field 'layout' has the same glob"):
        load_manifest(_write(tmp_path, doc))
    with pytest.raises(ManifestError, match=r"unknown field 'variants\.thick\.splits'"):
        load_manifest(_write(tmp_path, _paired(variants={"thick": {"splits": {}}})))


def test_mayo2020_folder_names_match_whatever_their_case(tmp_path):
    # Formerly matched case-sensitively: a TCIA download with "FULL DOSE IMAGES" folders was "missing".
    root = tmp_path / "tcia"
    _touch(root, "L107/08-25-2018-NA-12345/1.000000-FULL DOSE IMAGES-123/1-1.dcm",
           "L107/08-25-2018-NA-12345/1.000000-FULL DOSE IMAGES-123/1-2.DCM",
           "L107/08-25-2018-NA-12345/2.000000-low dose images-456/1-1.dcm",
           "L107/08-25-2018-NA-12345/2.000000-low dose images-456/1-2.dcm",
           "L110/x/1.000000-Full Dose Images-1/1-1.dcm", "L110/x/2.000000-Low Dose Images-2/1-1.dcm")
    path = _shipped_copy(tmp_path, "mayo2020", splits={"train": ["L107"], "test": ["L110"]},
                         expected_counts={"train": 8, "test": 1}, expected_slices={"test": 1})
    m = load_manifest(path, data_root=root)
    l107 = m.patients("train")[0]
    assert len(l107.ndct) == 2 and len(l107.ldct) == 2
    assert all("FULL DOSE" in str(f) for f in l107.ndct) and all("low dose" in str(f) for f in l107.ldct)
    assert m.missing() == []
    assert m.check_counts()["train"] == {"L107": 2}  # train counts patches: its slices are not checked


def test_expected_counts_are_compared_with_the_files(tmp_path):
    # Formerly never compared: a partial download was converted silently.
    root = tmp_path / "data"
    _touch(root, "L067/full_1mm/a.IMA", "L067/quarter_1mm/a.IMA", "L096/full_1mm/a.IMA", "L096/full_1mm/b.IMA",
           "L096/quarter_1mm/a.IMA", "L096/quarter_1mm/b.IMA", "L333/full_1mm/a.IMA", "L333/quarter_1mm/a.IMA")
    doc = _paired(splits={"train": ["L067", "L096"], "test": ["L333"]}, expected_counts={"train": 5, "test": 1})
    m = load_manifest(_write(tmp_path, doc), data_root=root)
    with pytest.raises(DataError, match=r"mini\.yaml: split 'train' has 3 slices on disk, expected 5 "
                                        r"\(expected_counts\.train\); found per patient: L067 1, L096 2; "
                                        r"pass allow_partial=True"):
        m.check_counts()
    with pytest.warns(DataWarning, match="accepted as partial data"):
        assert m.check_counts(allow_partial=True)["train"] == {"L067": 1, "L096": 2}
    more = load_manifest(_write(tmp_path, {**doc, "expected_counts": {"train": 2, "test": 1}}), data_root=root)
    with pytest.raises(DataError, match="has 3 slices on disk, expected 2.*matches more files"):
        more.check_counts(allow_partial=True)  # more than expected is never "partial"
    sliced = load_manifest(_write(tmp_path, {**doc, "expected_slices": {"train": 3}}), data_root=root)
    assert sliced.check_counts() and sliced.expected_slices == {"train": 3}


def test_detection_counts_are_the_annotated_images(tmp_path):
    root = _detection_root(tmp_path, "a.dcm,1,1,5,5,1,train,P1\nb.dcm,,,,,,train,P1\nc.dcm,1,1,5,5,1,test,P2\n")
    m = load_manifest(_write(tmp_path, _detection(expected_counts={"train": 2, "test": 2})), data_root=root)
    with pytest.raises(DataError, match="split 'test' has 1 slices on disk, expected 2.*P2 1"):
        m.check_counts()


def test_globs_that_give_both_roles_the_same_files_are_refused(tmp_path):
    with pytest.raises(ManifestError, match="field 'layout' has the same glob for ndct and ldct"):
        load_manifest(_write(tmp_path, _paired(layout={"ndct": "{patient}/*.IMA", "ldct": "{patient}/*.IMA"})))
    root = tmp_path / "data"
    _touch(root, "L067/full_1mm/a.IMA", "L067/quarter_1mm/a.IMA", "L333/full_1mm/a.IMA", "L333/quarter_1mm/a.IMA")
    doc = _paired(layout={"ndct": "{patient}/**/*.IMA", "ldct": "{patient}/quarter_1mm/*.IMA"})
    m = load_manifest(_write(tmp_path, doc), data_root=root)
    with pytest.raises(DataError, match=r"patient L067 \(train\) the globs layout\.ndct .* match the same 1 file"):
        m.patients("train")
