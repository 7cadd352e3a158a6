"""Tests of ldct_nb.data.dicom: HU conversion, ordering, compressed syntaxes, refusal of bad files."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ldct_nb.data.dicom import Series, read_series, read_slice
from ldct_nb.errors import DataError, DataWarning, ParameterError

try:  # works whether or not tests/ is a package
    from tests.dicom_factory import make_ct_dataset, write_ct_series
except ImportError:  # pragma: no cover
    from dicom_factory import make_ct_dataset, write_ct_series


def _testdata(name: str) -> str:
    """Path of a pydicom test file that is present offline; skip the test otherwise."""
    import pydicom.data

    with warnings.catch_warnings():  # get_testdata_files warns when optional downloads fail
        warnings.simplefilter("ignore")
        found = pydicom.data.get_testdata_files(name)
    found = [f for f in found if f.endswith(name)]
    if not found:
        pytest.skip(f"pydicom test file {name} is not available offline")
    return found[0]


def _volume(n=5, h=12, w=10, seed=1, lo=-1024, hi=2000):
    rng = np.random.default_rng(seed)
    vol = rng.integers(lo, hi, size=(n, h, w)).astype(np.float64)
    vol[:, 0, 0] = np.arange(n) * 10.0  # slice index readable from a pixel
    return vol


# --------------------------------------------------------------------------- real files


def test_ct_small_hu_matches_independent_rescale():
    path = _testdata("CT_small.dcm")
    ds = pydicom.dcmread(path)
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    assert ds.Modality == "CT"
    expected = ds.pixel_array.astype(np.float64) * slope + intercept

    hu, ds2 = read_slice(path)
    assert hu.dtype == np.float32 and hu.shape == (128, 128)
    np.testing.assert_allclose(hu, expected, rtol=0, atol=1e-3)
    assert ds2.SOPInstanceUID == ds.SOPInstanceUID

    series = read_series([path])
    assert len(series) == 1
    assert series.hu.shape == (1, 128, 128) and series.hu.dtype == np.float32
    np.testing.assert_allclose(series.hu[0], expected, rtol=0, atol=1e-3)
    assert series.pixel_spacing == pytest.approx((float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1])))
    np.testing.assert_allclose(series.positions[0], [float(v) for v in ds.ImagePositionPatient])
    assert series.positions.dtype == np.float64
    assert series.patient_id == str(ds.PatientID)
    r = repr(series)
    assert r.startswith("Series(1 slice, 128x128, spacing 0.66x0.66 mm") and "HU [" in r
    # a single file path is accepted as a one-slice series too
    assert read_series(path).hu.shape == (1, 128, 128)


@pytest.mark.parametrize(
    "compressed",
    ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"],
)
def test_compressed_transfer_syntax_decodes_like_uncompressed_twin(compressed):
    plain = read_series([_testdata("MR_small.dcm")], expected_modality="MR")
    comp_path = _testdata(compressed)
    assert pydicom.dcmread(comp_path, stop_before_pixels=True).file_meta.TransferSyntaxUID.is_compressed
    comp = read_series([comp_path], expected_modality="MR")
    np.testing.assert_array_equal(comp.hu, plain.hu)
    assert comp.pixel_spacing == plain.pixel_spacing


def test_mr_file_refused_when_ct_expected():
    path = _testdata("MR_small.dcm")
    with pytest.raises(DataError, match=r"'MR'.*expected 'CT'") as exc:
        read_series([path])
    assert path in str(exc.value)
    with pytest.raises(DataError, match=re.escape(path)):
        read_slice(path)
    read_slice(path, expected_modality=None)  # accepted when any modality is allowed


def test_pydicom_truncated_test_file_refused():
    path = _testdata("MR_truncated.dcm")
    with pytest.raises(DataError, match=re.escape(path)):
        read_series([path], expected_modality="MR")


def test_multiframe_refused():
    path = _testdata("SC_rgb_rle_2frame.dcm")
    with pytest.raises(DataError, match=re.escape(path) + ".*multi-frame"):
        read_series([path], expected_modality=None)


def test_missing_decoder_names_transfer_syntax(tmp_path):
    ds = pydicom.dcmread(_testdata("MR_small_RLE.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no pixel plugin decodes it
    path = tmp_path / "mpeg.dcm"
    ds.save_as(path)
    with pytest.raises(DataError, match=re.escape(str(path))) as exc:
        read_slice(path, expected_modality=None)
    assert "1.2.840.10008.1.2.4.100" in str(exc.value) and "pip install" in str(exc.value)


# --------------------------------------------------------------------------- synthetic series


def test_round_trip_shuffled_names_exact(tmp_path):
    vol = _volume()
    paths = write_ct_series(tmp_path, vol, z0=-20.0, dz=1.25, patient_id="L067")
    assert sorted(p.name for p in paths) != [p.name for p in paths]  # names do not follow z
    assert all(p.suffix == ".IMA" for p in paths)
    s = read_series(tmp_path)
    assert isinstance(s, Series)
    assert s.hu.dtype == np.float32 and s.hu.shape == vol.shape
    np.testing.assert_array_equal(s.hu, vol)
    assert s.files == tuple(paths)
    np.testing.assert_allclose(s.positions[:, 2], -20.0 + 1.25 * np.arange(5))
    assert s.pixel_spacing == (0.7, 0.7)
    assert s.slice_thickness == pytest.approx(1.25)
    assert s.patient_id == "L067"
    assert len(s) == 5
    r = repr(s)
    assert r == (
        f"Series(5 slices, 12x10, spacing 0.70x0.70 mm, thickness 1.25 mm, "
        f"HU [{vol.min():.0f}, {vol.max():.0f}], patient L067)"
    )
    # written files are standard CT Image Storage files
    ds = pydicom.dcmread(paths[0])
    assert ds.SOPClassUID == pydicom.uid.CTImageStorage
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    uids = {pydicom.dcmread(p).SOPInstanceUID for p in paths}
    assert len(uids) == 5


def test_round_trip_with_non_unit_slope_quantised(tmp_path):
    vol = _volume(n=3) + 0.3
    write_ct_series(tmp_path, vol, slope=0.5, intercept=-1024.0)
    s = read_series(tmp_path)
    np.testing.assert_allclose(s.hu, vol, atol=0.25 + 1e-4)
    assert np.all(np.abs(s.hu * 2 - np.round(s.hu * 2)) < 1e-4)  # multiples of the slope


def test_unsigned_with_intercept_equals_signed(tmp_path):
    vol = _volume(n=4)
    write_ct_series(tmp_path / "u", vol, signed=False, intercept=-1024.0)
    write_ct_series(tmp_path / "s", vol, signed=True, intercept=0.0)
    du = pydicom.dcmread(next((tmp_path / "u").iterdir()))
    assert du.PixelRepresentation == 0 and du.pixel_array.dtype == np.uint16
    u, s = read_series(tmp_path / "u"), read_series(tmp_path / "s")
    np.testing.assert_array_equal(u.hu, vol)
    np.testing.assert_array_equal(s.hu, vol)


def test_order_by_position_not_instance_number(tmp_path):
    vol = _volume(n=6)
    paths = write_ct_series(tmp_path, vol, instance_numbers=[6, 5, 4, 3, 2, 1], dz=-2.0)
    s = read_series(tmp_path)
    # dz < 0: increasing position along the normal is the reverse of the written order
    np.testing.assert_array_equal(s.hu, vol[::-1])
    assert s.files == tuple(reversed(paths))
    assert np.all(np.diff(s.positions[:, 2]) > 0)


def test_order_shuffled_instance_numbers(tmp_path):
    vol = _volume(n=6)
    write_ct_series(tmp_path, vol, instance_numbers=[3, 1, 6, 2, 5, 4])
    np.testing.assert_array_equal(read_series(tmp_path).hu, vol)


def test_fallback_to_instance_number_without_ipp(tmp_path):
    vol = _volume(n=5)
    inst = [4, 2, 5, 1, 3]
    paths = write_ct_series(tmp_path, vol, positions=[None] * 5, instance_numbers=inst)
    s = read_series(tmp_path)
    order = np.argsort(inst)
    np.testing.assert_array_equal(s.hu, vol[order])
    assert s.files == tuple(paths[i] for i in order)
    assert np.isnan(s.positions).all()


def test_fallback_to_file_name_without_ipp_and_instance_number(tmp_path):
    vol = _volume(n=11)
    write_ct_series(tmp_path, vol, positions=[None] * 11, instance_numbers=[None] * 11, shuffle=False)
    s = read_series(tmp_path)
    np.testing.assert_array_equal(s.hu, vol)  # slice_0001 ... slice_0011 in name order


def test_duplicate_instance_number_without_ipp_refused(tmp_path):
    paths = write_ct_series(tmp_path, _volume(n=3), positions=[None] * 3, instance_numbers=[1, 2, 2])
    with pytest.raises(DataError, match="duplicate InstanceNumber") as exc:
        read_series(tmp_path)
    assert paths[1].name in str(exc.value) and paths[2].name in str(exc.value)


def test_tilted_orientation_orders_by_normal(tmp_path):
    # rotate the slice plane by 30 degrees about x: normal = (0, -sin, cos)
    a = np.deg2rad(30.0)
    iop = (1.0, 0.0, 0.0, 0.0, np.cos(a), np.sin(a))
    normal = np.cross(iop[:3], iop[3:])
    vol = _volume(n=5)
    paths = write_ct_series(tmp_path, vol, orientation=iop, dz=1.0)
    s = read_series(tmp_path)
    np.testing.assert_array_equal(s.hu, vol)
    assert s.files == tuple(paths)
    assert np.all(np.diff(s.positions @ normal) > 0)
    # the IPP z coordinates alone would not even be distinct along a pure y shift; here they are
    # ordered along the normal, which differs from sorting by y (decreasing)
    assert np.all(np.diff(s.positions[:, 1]) < 0)


def test_explicit_file_list_and_hidden_files_skipped(tmp_path):
    vol = _volume(n=4)
    paths = write_ct_series(tmp_path, vol)
    (tmp_path / ".DS_Store").write_text("not dicom")
    (tmp_path / "sub").mkdir()
    np.testing.assert_array_equal(read_series(tmp_path).hu, vol)
    s = read_series([str(p) for p in reversed(paths[:3])])
    np.testing.assert_array_equal(s.hu, vol[:3])


# --------------------------------------------------------------------------- bad input


def test_text_file_named_dcm_refused(tmp_path):
    bad = tmp_path / "notes.dcm"
    bad.write_text("this is not DICOM\n" * 20)
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*not a readable DICOM file"):
        read_series(tmp_path)
    with pytest.raises(DataError, match=re.escape(bad.name)):
        read_slice(bad)


def test_text_file_among_good_slices_refused(tmp_path):
    write_ct_series(tmp_path, _volume(n=3))
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match=re.escape("readme.txt")):
        read_series(tmp_path)


def test_truncated_file_refused(tmp_path):
    paths = write_ct_series(tmp_path, _volume(n=3, h=64, w=64))
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[:-1000])  # cut in the middle of the pixel data
    with pytest.raises(DataError, match=re.escape(paths[1].name) + ".*truncated"):
        read_series(tmp_path)
    with pytest.raises(DataError, match=re.escape(str(paths[1]))):
        read_slice(paths[1])


def test_file_cut_in_header_refused(tmp_path):
    paths = write_ct_series(tmp_path, _volume(n=2))
    paths[0].write_bytes(paths[0].read_bytes()[:300])
    with pytest.raises(DataError, match=re.escape(paths[0].name)):
        read_series(tmp_path)


def test_mr_modality_in_ct_series_refused(tmp_path):
    paths = write_ct_series(tmp_path, _volume(n=3))
    ds = pydicom.dcmread(paths[2])
    ds.Modality = "MR"
    ds.save_as(paths[2])
    with pytest.raises(DataError, match=re.escape(paths[2].name) + r".*'MR', expected 'CT'"):
        read_series(tmp_path)
    assert len(read_series(tmp_path, expected_modality=None)) == 3


def test_missing_pixel_data_refused(tmp_path):
    paths = write_ct_series(tmp_path, _volume(n=3))
    ds = pydicom.dcmread(paths[0])
    del ds.PixelData
    ds.save_as(paths[0])
    with pytest.raises(DataError, match=re.escape(paths[0].name) + ".*PixelData"):
        read_series(tmp_path)


def test_missing_rows_refused(tmp_path):
    paths = write_ct_series(tmp_path, _volume(n=2))
    ds = pydicom.dcmread(paths[0])
    del ds.Rows
    ds.save_as(paths[0])
    with pytest.raises(DataError, match=re.escape(paths[0].name) + ".*Rows"):
        read_series(tmp_path)


def test_mixed_sizes_refused(tmp_path):
    uid = generate_uid()  # one series whose files disagree
    a = write_ct_series(tmp_path, _volume(n=2, h=12, w=10), z0=0.0, shuffle=False, suffix=".a.dcm", series_uid=uid)
    b = write_ct_series(tmp_path, _volume(n=1, h=8, w=10), z0=10.0, shuffle=False, suffix=".b.dcm", series_uid=uid)
    with pytest.raises(DataError, match="different sizes") as exc:
        read_series(tmp_path)
    msg = str(exc.value)
    assert b[0].name in msg and (a[0].name in msg) and "12x10" in msg and "8x10" in msg


def test_inconsistent_spacing_refused(tmp_path):
    uid = generate_uid()
    write_ct_series(tmp_path, _volume(n=2), pixel_spacing=(0.7, 0.7), shuffle=False, suffix=".a", series_uid=uid)
    b = write_ct_series(tmp_path, _volume(n=1), pixel_spacing=(0.8, 0.8), z0=5.0, shuffle=False, suffix=".b",
                        series_uid=uid)
    with pytest.raises(DataError, match="PixelSpacing") as exc:
        read_series(tmp_path)
    assert b[0].name in str(exc.value)


def test_duplicate_positions_refused(tmp_path):
    vol = _volume(n=3)
    paths = write_ct_series(tmp_path, vol, positions=[(0, 0, 0), (0, 0, 1), (0, 0, 1.00001)])
    with pytest.raises(DataError, match="duplicate slice position") as exc:
        read_series(tmp_path)
    assert paths[1].name in str(exc.value) and paths[2].name in str(exc.value)


def test_empty_folder_refused(tmp_path):
    (tmp_path / ".hidden").write_text("x")
    with pytest.raises(DataError, match=re.escape(str(tmp_path))):
        read_series(tmp_path)


def test_empty_list_refused():
    with pytest.raises(DataError, match="empty list"):
        read_series([])


def test_nonexistent_path_refused(tmp_path):
    missing = tmp_path / "no_such_series"
    with pytest.raises(DataError, match=re.escape(str(missing))):
        read_series(missing)
    with pytest.raises(DataError, match=re.escape(str(missing / "x.IMA"))):
        read_series([missing / "x.IMA"])
    with pytest.raises(DataError, match=re.escape(str(missing))):
        read_slice(missing)


def test_bad_argument_type_refused():
    with pytest.raises(ParameterError):
        read_series(42)  # type: ignore[arg-type]


def test_make_ct_dataset_rejects_float_input():
    with pytest.raises(ValueError):
        make_ct_dataset(np.zeros((4, 4)), position=(0, 0, 0))


def test_missing_plugin_dependencies_gives_install_hint(tmp_path, monkeypatch):
    path = _testdata("MR_small_jp2klossless.dcm")

    def fail(self):
        raise RuntimeError(
            "Unable to decompress 'JPEG 2000 Image Compression (Lossless Only)' pixel data "
            "because all plugins are missing dependencies:\n\tpylibjpeg - requires pylibjpeg-openjpeg"
        )

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(fail))
    with pytest.raises(DataError, match=re.escape(path)) as exc:
        read_slice(path, expected_modality=None)
    assert "1.2.840.10008.1.2.4.90" in str(exc.value) and "pylibjpeg-openjpeg" in str(exc.value)


@pytest.mark.parametrize("name", ["MR_small_jp2klossless.dcm", "MR_small_RLE.dcm"])
def test_truncated_compressed_file_refused(tmp_path, name):
    bad = tmp_path / name
    bad.write_bytes(open(_testdata(name), "rb").read()[:-1000])
    with pytest.raises(DataError, match=re.escape(str(bad))) as exc:
        read_slice(bad, expected_modality=None)
    assert "pip install" not in str(exc.value) and "truncated" in str(exc.value)


# --------------------------------------------------------------------------- padding, series, slope, gaps


def _retag(paths, **tags) -> None:
    """Set DICOM attributes on already written files."""
    for path in paths:
        ds = pydicom.dcmread(path)
        for key, value in tags.items():
            if key.startswith("PixelPadding"):  # VR 'US or SS': signed like the pixels
                ds.add_new(key, "SS" if ds.PixelRepresentation == 1 else "US", value)
            else:
                setattr(ds, key, value)
        ds.save_as(path, enforce_file_format=True)


def test_pixel_padding_value_becomes_air_and_low_values_are_clamped(tmp_path):
    # Stored -2000 with intercept -1024 is the padding (HU -3024 if read naively); -1100 HU is not
    # padding but lies below what a scanner reconstructs: clamped to -1024.
    vol = np.zeros((3, 6, 6))
    vol[:, 0, :] = -3024.0  # padding rows (outside the field of view)
    vol[:, 1, :2] = -1100.0
    vol[:, 2, 2] = 40.0
    paths = write_ct_series(tmp_path, vol, shuffle=False)
    _retag(paths, PixelPaddingValue=-2000)
    series = read_series(tmp_path)
    want = vol.copy()
    want[:, 0, :] = -1000.0  # air
    want[:, 1, :2] = -1024.0
    np.testing.assert_array_equal(series.hu, want.astype(np.float32))
    assert series.padding_pixels == 3 * 6 and series.clamped_pixels == 3 * 2
    assert series.report()["padding_pixels"] == 18 and "18 padding px -> air, 6 px clamped" in repr(series)
    hu, _ = read_slice(paths[0])
    assert hu.min() == -1024.0 and (hu[0] == -1000.0).all()
    raw, _ = read_slice(paths[0], min_hu=None)  # clamping can be switched off; padding is still air
    assert raw[1, 0] == -1100.0 and (raw[0] == -1000.0).all()


def test_pixel_padding_range_limit(tmp_path):
    vol = np.zeros((2, 4, 4))
    vol[:, 0, 0], vol[:, 0, 1], vol[:, 0, 2] = -3024.0, -2524.0, -2523.0  # stored -2000, -1500, -1499
    paths = write_ct_series(tmp_path, vol, shuffle=False)
    _retag(paths, PixelPaddingValue=-2000, PixelPaddingRangeLimit=-1500)
    series = read_series(tmp_path)
    assert series.padding_pixels == 2 * 2 and series.clamped_pixels == 2  # -2523 HU is not padding: clamped
    np.testing.assert_array_equal(series.hu[:, 0, :3], [[-1000.0, -1000.0, -1024.0]] * 2)


def test_two_series_in_one_folder_are_refused_with_the_list(tmp_path):
    thin = write_ct_series(tmp_path, _volume(n=3), slice_thickness=1.0, suffix=".thin")
    thick = write_ct_series(tmp_path, _volume(n=2, seed=2), slice_thickness=3.0, dz=3.0, suffix=".thick")
    with pytest.raises(DataError, match="more than one series") as exc:
        read_series(tmp_path)
    msg = str(exc.value)
    for paths, thickness in ((thin, "1"), (thick, "3")):
        uid = pydicom.dcmread(paths[0]).SeriesInstanceUID
        assert f"SeriesInstanceUID {uid}, SliceThickness {thickness} mm" in msg
    assert "3 file(s)" in msg and "2 file(s)" in msg and str(tmp_path) in msg
    # a selection that leaves one series is accepted
    assert len(read_series(tmp_path, slice_thickness_mm=3.0)) == 2
    uid = str(pydicom.dcmread(thin[0]).SeriesInstanceUID)
    chosen = read_series(tmp_path, series_uid=uid)
    assert len(chosen) == 3 and chosen.series_uid == uid and chosen.report()["slice_thickness_mm"] == 1.0
    with pytest.raises(DataError, match="no file of series_uid '1.2.3'"):
        read_series(tmp_path, series_uid="1.2.3")
    with pytest.raises(ParameterError, match="slice_thickness_mm"):
        read_series(tmp_path, slice_thickness_mm=-1)


def test_same_series_uid_with_two_slice_thicknesses_is_refused(tmp_path):
    uid = generate_uid()
    write_ct_series(tmp_path, _volume(n=2), slice_thickness=1.0, suffix=".a", series_uid=uid)
    write_ct_series(tmp_path, _volume(n=2), slice_thickness=5.0, z0=10.0, suffix=".b", series_uid=uid)
    with pytest.raises(DataError, match="SliceThickness 1 mm.*\n.*SliceThickness 5 mm"):
        read_series(tmp_path)


@pytest.mark.parametrize("slope", [0.0, -1.0])
def test_rescale_slope_zero_or_negative_is_refused(tmp_path, slope):
    paths = write_ct_series(tmp_path, _volume(n=2), shuffle=False)
    _retag(paths[1:], RescaleSlope=slope)
    with pytest.raises(DataError, match=re.escape(f"{paths[1]}: RescaleSlope is {slope:g}, expected a positive")):
        read_series(tmp_path)
    with pytest.raises(DataError, match="RescaleSlope"):
        read_slice(paths[1])


def test_missing_slice_is_warned_and_recorded(tmp_path):
    vol = _volume(n=5)
    paths = write_ct_series(tmp_path, vol, positions=[(0, 0, z) for z in (0.0, 1.0, 2.0, 4.0, 5.0)], shuffle=False)
    with pytest.warns(DataWarning, match="missing slice") as caught:
        series = read_series(tmp_path)
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert paths[2].name in msg and paths[3].name in msg and "2.00 mm" in msg and "median slice spacing is 1.00" in msg
    assert series.gaps == ((2, 2.0),) and len(series) == 5
    assert series.report()["gaps"] == [{"after": str(paths[2]), "gap_mm": 2.0}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # regular spacing: no warning
        assert read_series(paths[:3]).gaps == ()
