"""Read CT series from DICOM files (Mayo-2016 Siemens ``.IMA`` and ordinary ``.dcm``) into Hounsfield units.

What is read
    One *series* is a folder of single-frame DICOM Part-10 files (every regular,
    non-hidden file directly in the folder, any extension: ``.IMA``, ``.dcm`` or
    none; sub-folders are not entered) or an explicit list of files. Each file
    is opened with :func:`pydicom.dcmread` *without* ``force=True``, so files
    that lack the DICOM preamble/``DICM`` prefix (text files, numpy dumps,
    ...) are refused rather than misread.

Units
    ``Series.hu`` is ``float32`` with shape ``S x H x W`` in Hounsfield units:
    ``hu = stored * RescaleSlope + RescaleIntercept`` (slope 1 and intercept 0
    when the tags are absent). The stored values come from
    ``Dataset.pixel_array``, which honours ``PixelRepresentation``
    (signed/unsigned), ``BitsStored`` and decodes the compressed transfer
    syntaxes for which a plugin is installed (RLE natively; JPEG, JPEG-LS and
    JPEG 2000 with ``pylibjpeg``, ``pylibjpeg-libjpeg`` and
    ``pylibjpeg-openjpeg``). The integers are converted to floating point
    *before* the slope and intercept are applied (computed in float64 per slice,
    then stored as float32), so e.g. ``uint16`` values with intercept -1024
    cannot wrap around. Padding (stored values equal to ``PixelPaddingValue``,
    or between it and ``PixelPaddingRangeLimit``: the area outside the scanned
    field of view) is set to air (-1000 HU), and values below -1024 HU (GE's
    -3024, padding without the tag) are clamped to -1024 HU (``min_hu``), so
    neither reaches a simulation as negative attenuation; ``Series`` records
    how many pixels each step changed. ``pixel_spacing`` is ``(row spacing, column spacing)``
    in mm from ``PixelSpacing``; ``positions`` are ``ImagePositionPatient`` in
    mm (NaN rows where absent); ``slice_thickness`` is ``SliceThickness`` in mm.

Ordering rule
    When every file has ``ImagePositionPatient`` (IPP) and
    ``ImageOrientationPatient`` (IOP), slices are sorted by the projection of
    IPP onto the slice normal ``cross(row direction, column direction)`` of the
    IOP (so tilted acquisitions order correctly, and the order does not depend
    on ``InstanceNumber`` or file names). If any file lacks IPP or IOP, slices
    are sorted by ``InstanceNumber``; if any file lacks that too, by file name
    (natural order: ``IM2`` before ``IM10``).

Series selection
    A folder (or list) holding files of more than one series (different
    ``SeriesInstanceUID`` or ``SliceThickness``) is refused with the list of
    series, unless ``series_uid`` or ``slice_thickness_mm`` selects exactly one
    (the data manifests pass their ``slice_thickness_mm``).

Missing slices
    A gap between neighbouring slices larger than 1.5 times the median slice
    spacing is accepted with a :class:`~ldct_nb.errors.DataWarning` naming
    the two files, and recorded in ``Series.gaps``.

What is refused (:class:`ldct_nb.errors.DataError`, the message names the file)
    * a path that does not exist, an empty folder or an empty list of files;
    * files that are not readable DICOM (no ``DICM`` header, truncated header,
      truncated pixel data: fewer bytes than ``Rows*Columns*BitsAllocated/8``);
    * compressed pixel data that cannot be decoded (missing plugin: the message
      names the transfer syntax and what to install);
    * ``Modality`` different from ``expected_modality`` (unless that is None);
    * ``RescaleSlope`` 0 or negative (every slice would become one value);
    * files of several series (see above);
    * no ``PixelData``, no ``Rows``/``Columns``, multi-frame images
      (``NumberOfFrames > 1``), more than one sample per pixel (colour);
    * within a series: images of different sizes, different ``PixelSpacing``
      (or none), different orientations, different ``PatientID``, duplicate
      slice positions (projected positions within 1e-4 mm of each other) or
      duplicate ``InstanceNumber`` when ordering falls back to it.

Memory: headers are read first (without pixel data) to validate and order the
series, then the pixels are decoded slice by slice into one preallocated
``float32`` array.
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ldct_nb.errors import DataError, DataWarning, ParameterError

__all__ = ["Series", "read_series", "read_slice", "POSITION_TOLERANCE_MM", "AIR_HU", "MIN_HU", "GAP_FACTOR"]

#: HU given to padding pixels (outside the field of view): air.
AIR_HU = -1000.0
#: Values below this (HU) are clamped to it: the lowest value a CT scanner reconstructs.
MIN_HU = -1024.0
#: A slice spacing larger than this times the median spacing means slices are missing.
GAP_FACTOR = 1.5
#: Two series whose slice thicknesses differ by less than this (mm) count as one thickness.
_THICKNESS_TOLERANCE_MM = 0.01

#: Two slices whose positions along the slice normal differ by less than this are duplicates.
POSITION_TOLERANCE_MM = 1e-4
#: Tolerance (mm) for PixelSpacing to count as equal between slices.
_SPACING_TOLERANCE_MM = 1e-4
#: Tolerance for the direction cosines of ImageOrientationPatient to count as equal.
_ORIENTATION_TOLERANCE = 1e-3

_INSTALL_HINT = (
    "install the pydicom pixel-data plugins: `pip install pylibjpeg pylibjpeg-libjpeg "
    "pylibjpeg-openjpeg` (JPEG, JPEG-LS, JPEG 2000); RLE is decoded by pydicom itself; "
    "other syntaxes (e.g. MPEG video) are not supported"
)


@dataclass(frozen=True, eq=False)
class Series:
    """A CT series in Hounsfield units, slices sorted along the slice normal (see module docstring)."""

    hu: np.ndarray  # float32, S x H x W, Hounsfield units
    pixel_spacing: tuple[float, float]  # (row spacing, column spacing) in mm
    positions: np.ndarray  # float64, S x 3, ImagePositionPatient in mm (NaN rows if absent)
    files: tuple[Path, ...]  # in the order of ``hu``
    slice_thickness: float | None  # SliceThickness in mm (None if absent or not the same for all)
    patient_id: str | None
    series_uid: str | None = None  # SeriesInstanceUID (None if absent)
    padding_pixels: int = 0  # pixels that were PixelPaddingValue (range), set to AIR_HU
    clamped_pixels: int = 0  # pixels below min_hu, clamped to it
    gaps: tuple[tuple[int, float], ...] = ()  # (index of the slice before the gap, gap in mm)

    def __len__(self) -> int:
        return int(self.hu.shape[0])

    def report(self) -> dict:
        """What the reader changed or noticed, for a cache's metadata."""
        return {
            "series_uid": self.series_uid, "slice_thickness_mm": self.slice_thickness,
            "padding_pixels": self.padding_pixels, "clamped_pixels": self.clamped_pixels,
            "gaps": [{"after": str(self.files[i]), "gap_mm": round(g, 3)} for i, g in self.gaps],
        }

    def __repr__(self) -> str:
        s, h, w = self.hu.shape
        thickness = "?" if self.slice_thickness is None else f"{float(self.slice_thickness)} mm"
        if self.hu.size:
            hu_range = f"HU [{float(np.nanmin(self.hu)):.0f}, {float(np.nanmax(self.hu)):.0f}]"
        else:
            hu_range = "HU []"
        patient = "?" if self.patient_id is None else self.patient_id
        extras = ""
        if self.padding_pixels or self.clamped_pixels:
            extras += f", {self.padding_pixels} padding px -> air, {self.clamped_pixels} px clamped"
        if self.gaps:
            extras += f", {len(self.gaps)} gap(s)"
        return (
            f"Series({s} slice{'s' if s != 1 else ''}, {h}x{w}, "
            f"spacing {self.pixel_spacing[0]:.2f}x{self.pixel_spacing[1]:.2f} mm, "
            f"thickness {thickness}, {hu_range}, patient {patient}{extras})"
        )


# --------------------------------------------------------------------------- file access


def _dcmread(path: Path, *, stop_before_pixels: bool) -> Dataset:
    """``pydicom.dcmread`` that turns every read failure into a DataError naming ``path``."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as exc:
        raise DataError(
            f"{path}: not a readable DICOM file (expected a DICOM Part-10 file with the "
            f"'DICM' prefix: {exc})"
        ) from exc
    except IsADirectoryError as exc:
        raise DataError(f"{path}: not a readable DICOM file (it is a directory, expected a file)") from exc
    except FileNotFoundError as exc:
        raise DataError(f"{path}: not a readable DICOM file (file does not exist)") from exc
    except PermissionError as exc:
        raise DataError(f"{path}: not a readable DICOM file (permission denied)") from exc
    except Exception as exc:  # EOFError, struct.error, ValueError, OSError, ... from a damaged file
        raise DataError(
            f"{path}: not a readable DICOM file (expected a complete DICOM file, "
            f"reading failed with {type(exc).__name__}: {exc}; the file may be truncated or corrupt)"
        ) from exc
    for w in caught:
        # pydicom only warns when encapsulated (compressed) pixel data ends before its delimiter
        if "End of file reached" in str(w.message):
            raise DataError(
                f"{path}: not a readable DICOM file (expected a complete file, but it is truncated: "
                f"{w.message})"
            )
    for w in caught:  # pass the other warnings on to the caller
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return ds


def _check_modality(ds: Dataset, path: Path, expected_modality: str | None) -> None:
    if expected_modality is None:
        return
    found = ds.get("Modality")
    found = None if found is None else str(found).strip()
    if found != expected_modality:
        raise DataError(
            f"{path}: Modality is {found!r}, expected {expected_modality!r} "
            "(pass expected_modality=None to accept any modality)"
        )


def _check_image_header(ds: Dataset, path: Path) -> tuple[int, int]:
    """Rows/Columns present, single frame, single sample per pixel; returns (rows, columns)."""
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if rows is None or cols is None or int(rows) <= 0 or int(cols) <= 0:
        raise DataError(f"{path}: missing or empty Rows/Columns (found Rows={rows}, Columns={cols}), expected an image")
    frames = ds.get("NumberOfFrames")
    try:
        n_frames = 1 if frames in (None, "") else int(frames)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: NumberOfFrames is {frames!r}, expected an integer") from exc
    if n_frames > 1:
        raise DataError(
            f"{path}: multi-frame image (NumberOfFrames={n_frames}), expected one single-frame "
            "file per slice"
        )
    spp = ds.get("SamplesPerPixel", 1)
    if spp is not None and int(spp) != 1:
        raise DataError(f"{path}: SamplesPerPixel is {spp}, expected 1 (a grayscale CT image)")
    return int(rows), int(cols)


def _float_tag(ds: Dataset, keyword: str, default: float, path: Path) -> float:
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: {keyword} is {value!r}, expected a number") from exc
    if not np.isfinite(out):
        raise DataError(f"{path}: {keyword} is {value!r}, expected a finite number")
    return out


def _check_native_length(ds: Dataset, path: Path, rows: int, cols: int) -> None:
    """For uncompressed transfer syntaxes, refuse PixelData shorter than Rows*Columns*BitsAllocated/8."""
    ts = _transfer_syntax(ds)
    if ts is None or ts.is_compressed:
        return
    bits = ds.get("BitsAllocated")
    if bits is None:
        raise DataError(f"{path}: missing BitsAllocated, expected 8, 16 or 32")
    expected = (rows * cols * int(bits) + 7) // 8
    actual = len(ds.PixelData)
    if actual < expected:
        raise DataError(
            f"{path}: not a readable DICOM file (pixel data has {actual} bytes, expected "
            f"Rows*Columns*BitsAllocated/8 = {rows}*{cols}*{int(bits)}/8 = {expected}; "
            "the file is truncated)"
        )


def _transfer_syntax(ds: Dataset):
    meta = getattr(ds, "file_meta", None)
    return None if meta is None else meta.get("TransferSyntaxUID")


def _decode(ds: Dataset, path: Path) -> np.ndarray:
    ts = _transfer_syntax(ds)
    try:
        return ds.pixel_array
    except Exception as exc:
        # pydicom raises NotImplementedError for syntaxes without any decoder and RuntimeError
        # "... missing dependencies" when the decoder plugins are not installed; a RuntimeError
        # "exceptions were raised by all available plugins" means corrupt (e.g. truncated) data.
        missing_plugin = isinstance(exc, (NotImplementedError, ImportError)) or (
            isinstance(exc, RuntimeError) and "missing dependencies" in str(exc)
        )
        if ts is not None and ts.is_compressed and missing_plugin:
            raise DataError(
                f"{path}: cannot decode pixel data with TransferSyntaxUID {ts} ({ts.name}): {exc}; "
                f"expected a decodable transfer syntax: {_INSTALL_HINT}"
            ) from exc
        raise DataError(
            f"{path}: not a readable DICOM file (decoding pixel data failed with "
            f"{type(exc).__name__}: {exc})"
        ) from exc


def _rescale(ds: Dataset, path: Path) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept), refusing a slope that is not positive."""
    slope = _float_tag(ds, "RescaleSlope", 1.0, path)
    if slope <= 0:
        raise DataError(
            f"{path}: RescaleSlope is {slope:g}, expected a positive number "
            "(HU = stored * RescaleSlope + RescaleIntercept)"
        )
    return slope, _float_tag(ds, "RescaleIntercept", 0.0, path)


def _padding_mask(ds: Dataset, arr: np.ndarray, path: Path) -> np.ndarray | None:
    """Stored values that are padding: ``PixelPaddingValue``, or the closed range
    between it and ``PixelPaddingRangeLimit`` (DICOM PS3.3 C.7.5.1.1.2)."""
    values = []
    for keyword in ("PixelPaddingValue", "PixelPaddingRangeLimit"):
        value = ds.get(keyword)
        if value is None or value == "":
            values.append(None)
            continue
        if isinstance(value, bytes):  # ambiguous VR (US or SS) left undecoded
            signed = int(ds.get("PixelRepresentation", 0)) == 1
            value = int.from_bytes(value[:2], "little", signed=signed)
        try:
            values.append(int(value))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: {keyword} is {value!r}, expected an integer stored value") from exc
    pad, limit = values
    if pad is None:
        return None
    if limit is None:
        return arr == pad
    return (arr >= min(pad, limit)) & (arr <= max(pad, limit))


def _slice_hu(
    ds: Dataset, path: Path, expected_modality: str | None, min_hu: float | None = MIN_HU
) -> tuple[np.ndarray, int, int]:
    """Validate one full dataset; return its float32 HU image, the number of
    padding pixels set to air and the number of pixels clamped to ``min_hu``."""
    _check_modality(ds, path, expected_modality)
    rows, cols = _check_image_header(ds, path)
    if "PixelData" not in ds:
        raise DataError(f"{path}: no PixelData element, expected an image (the file may be truncated)")
    _check_native_length(ds, path, rows, cols)
    arr = _decode(ds, path)
    if arr.shape != (rows, cols):
        raise DataError(
            f"{path}: decoded pixel array has shape {arr.shape}, expected (Rows, Columns) = ({rows}, {cols})"
        )
    slope, intercept = _rescale(ds, path)
    padding = _padding_mask(ds, arr, path)
    # Convert the integers to float BEFORE scaling: no integer overflow/wrap-around.
    hu = arr.astype(np.float64)
    if slope != 1.0:
        hu *= slope
    if intercept != 0.0:
        hu += intercept
    n_pad = 0
    if padding is not None:
        n_pad = int(padding.sum())
        hu[padding] = AIR_HU
    n_clamped = 0
    if min_hu is not None:
        low = hu < min_hu
        n_clamped = int(low.sum())
        hu[low] = min_hu
    return hu.astype(np.float32), n_pad, n_clamped


def read_slice(
    path: str | os.PathLike, *, expected_modality: str | None = "CT", min_hu: float | None = MIN_HU
) -> tuple[np.ndarray, Dataset]:
    """Read one single-frame DICOM file: ``(float32 H x W image in HU, pydicom Dataset)``.

    ``hu = float(stored) * RescaleSlope + RescaleIntercept`` (defaults 1 and 0),
    padding set to air and values below ``min_hu`` clamped to it (None keeps
    them); :func:`read_series` of the one file also reports how many pixels.
    Raises :class:`DataError` (naming the file) for non-DICOM, truncated, undecodable,
    multi-frame or colour files, missing pixel data, and a Modality other than
    ``expected_modality`` (``None`` accepts any).
    """
    p = _as_path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file, expected a DICOM file")
    ds = _dcmread(p, stop_before_pixels=False)
    return _slice_hu(ds, p, expected_modality, min_hu)[0], ds


# --------------------------------------------------------------------------- series


def _as_path(p: object) -> Path:
    if not isinstance(p, (str, os.PathLike)):
        raise ParameterError(f"expected a path (str or pathlib.Path), got {type(p).__name__}: {p!r}")
    return Path(p).expanduser().absolute()


def _natural_key(path: Path) -> list:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", path.name)]


def _list_files(path: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[list[Path], str]:
    """Files of the series and a description of where they came from (for messages)."""
    if isinstance(path, (str, os.PathLike)):
        folder = _as_path(path)
        if not folder.exists():
            raise DataError(f"{folder}: no such file or folder, expected a folder of DICOM files")
        if folder.is_file():
            return [folder], str(folder)
        if not folder.is_dir():
            raise DataError(f"{folder}: not a regular file or folder, expected a folder of DICOM files")
        files = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()]
        if not files:
            raise DataError(f"{folder}: folder contains no (non-hidden) files, expected DICOM slices")
        return sorted(files, key=_natural_key), str(folder)
    if not isinstance(path, Sequence):
        raise ParameterError(
            f"path must be a folder, a file or a sequence of files, got {type(path).__name__}: {path!r}"
        )
    files = [_as_path(p) for p in path]
    if not files:
        raise DataError("empty list of files given to read_series, expected at least one DICOM file")
    for p in files:
        if not p.exists():
            raise DataError(f"{p}: no such file, expected a DICOM file")
        if not p.is_file():
            raise DataError(f"{p}: not a regular file, expected a DICOM file")
    return files, f"list of {len(files)} files starting with {files[0]}"


def _vector(ds: Dataset, keyword: str, n: int, path: Path) -> np.ndarray | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        vec = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: {keyword} is {value!r}, expected {n} numbers") from exc
    if vec.shape != (n,) or not np.all(np.isfinite(vec)):
        raise DataError(f"{path}: {keyword} is {value!r}, expected {n} finite numbers")
    return vec


def _instance_number(ds: Dataset, path: Path) -> int | None:
    value = ds.get("InstanceNumber")
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: InstanceNumber is {value!r}, expected an integer") from exc


def _order(
    files: list[Path],
    positions: np.ndarray,
    orientations: list[np.ndarray | None],
    instance_numbers: list[int | None],
) -> list[int]:
    """Indices of ``files`` in slice order (see module docstring), refusing duplicates."""
    n = len(files)
    if not np.isnan(positions).any() and all(o is not None for o in orientations):
        ref = orientations[0]
        for i in range(1, n):
            if not np.allclose(orientations[i], ref, atol=_ORIENTATION_TOLERANCE, rtol=0.0):
                raise DataError(
                    f"{files[i]}: ImageOrientationPatient {orientations[i].tolist()} differs from "
                    f"{ref.tolist()} in {files[0]}, expected one orientation per series"
                )
        normal = np.cross(ref[:3], ref[3:])
        norm = np.linalg.norm(normal)
        if norm < 1e-6:
            raise DataError(
                f"{files[0]}: ImageOrientationPatient {ref.tolist()} has parallel row and column "
                "directions, expected two orthogonal unit vectors"
            )
        dist = positions @ (normal / norm)
        order = sorted(range(n), key=lambda i: (dist[i], _natural_key(files[i])))
        for a, b in zip(order, order[1:]):
            if abs(dist[b] - dist[a]) < POSITION_TOLERANCE_MM:
                raise DataError(
                    f"duplicate slice position: {files[a]} and {files[b]} are both at "
                    f"{dist[a]:.4f} mm along the slice normal (ImagePositionPatient "
                    f"{positions[a].tolist()} and {positions[b].tolist()}), expected one slice per position"
                )
        return order
    if all(k is not None for k in instance_numbers):
        order = sorted(range(n), key=lambda i: instance_numbers[i])
        for a, b in zip(order, order[1:]):
            if instance_numbers[a] == instance_numbers[b]:
                raise DataError(
                    f"duplicate InstanceNumber {instance_numbers[a]}: {files[a]} and {files[b]} "
                    "(ImagePositionPatient/ImageOrientationPatient absent, so slices are ordered by "
                    "InstanceNumber), expected one slice per InstanceNumber"
                )
        return order
    return sorted(range(n), key=lambda i: _natural_key(files[i]))


def _series_key(ds: Dataset, path: Path) -> tuple[str | None, float | None]:
    uid = ds.get("SeriesInstanceUID")
    st = ds.get("SliceThickness")
    thickness = None if st in (None, "") else _float_tag(ds, "SliceThickness", 0.0, path)
    return (None if uid in (None, "") else str(uid)), thickness


def _describe_series(groups: dict, origin: str) -> str:
    lines = []
    for (uid, thickness), members in groups.items():
        t = "no SliceThickness" if thickness is None else f"SliceThickness {thickness:g} mm"
        lines.append(f"  - SeriesInstanceUID {uid or '(none)'}, {t}: {len(members)} file(s), e.g. {members[0][0]}")
    return f"{origin} holds {len(groups)} series:\n" + "\n".join(lines)


def _select_series(
    headers: list[tuple[Path, Dataset]], origin: str, series_uid: str | None, slice_thickness_mm: float | None
) -> list[tuple[Path, Dataset]]:
    """The files of one series; DataError listing the series when several remain."""
    groups: dict[tuple[str | None, float | None], list[tuple[Path, Dataset]]] = {}
    for f, ds in headers:
        groups.setdefault(_series_key(ds, f), []).append((f, ds))
    if series_uid is not None:
        chosen = {k: v for k, v in groups.items() if k[0] == series_uid}
        if not chosen:
            raise DataError(f"no file of series_uid {series_uid!r}: " + _describe_series(groups, origin))
        groups = chosen
    if len(groups) > 1 and slice_thickness_mm is not None:
        chosen = {k: v for k, v in groups.items()
                  if k[1] is not None and abs(k[1] - slice_thickness_mm) < _THICKNESS_TOLERANCE_MM}
        if chosen:
            groups = chosen
    if len(groups) > 1:
        raise DataError(
            "files of more than one series in one read: " + _describe_series(groups, origin)
            + "\nexpected one series: select one with series_uid=... or slice_thickness_mm=... (data manifests: "
            "'slice_thickness_mm', or a 'layout' glob that matches one series folder)"
        )
    return next(iter(groups.values()))


def _gaps(files: list[Path], positions: np.ndarray, normal: np.ndarray | None) -> tuple[tuple[int, float], ...]:
    """Gaps larger than GAP_FACTOR times the median spacing (positions sorted), with a warning."""
    if normal is None or len(files) < 3:
        return ()
    spacing = np.diff(positions @ normal)
    median = float(np.median(spacing))
    found = tuple((i, float(g)) for i, g in enumerate(spacing) if g > GAP_FACTOR * median)
    for i, g in found:
        warnings.warn(
            f"missing slice(s): {g:.2f} mm between {files[i]} and {files[i + 1]}, where the median slice "
            f"spacing is {median:.2f} mm (more than {GAP_FACTOR} times); the series is read with the gap",
            DataWarning, stacklevel=3,
        )
    return found


def read_series(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    expected_modality: str | None = "CT",
    series_uid: str | None = None,
    slice_thickness_mm: float | None = None,
    min_hu: float | None = MIN_HU,
) -> Series:
    """Read a folder (non-recursive, hidden files skipped) or list of single-frame DICOM files as one series.

    Returns a :class:`Series` with ``hu`` (float32, S x H x W, Hounsfield units), sorted along the
    slice normal (fallbacks: InstanceNumber, then file name). A single file path gives a one-slice
    series. ``expected_modality=None`` accepts any Modality. Files of several series are refused
    unless ``series_uid`` or ``slice_thickness_mm`` selects one; padding becomes air and values
    below ``min_hu`` are clamped (None keeps them). See the module docstring for everything that
    is refused with :class:`DataError`.
    """
    if slice_thickness_mm is not None and (
        isinstance(slice_thickness_mm, bool) or not isinstance(slice_thickness_mm, (int, float))
        or not slice_thickness_mm > 0
    ):
        raise ParameterError(f"slice_thickness_mm must be a positive number of mm or None, got {slice_thickness_mm!r}")
    files, origin = _list_files(path)

    # Pass 1: headers only (validation + ordering), no pixel data in memory.
    headers = []
    for f in files:
        ds = _dcmread(f, stop_before_pixels=True)
        _check_modality(ds, f, expected_modality)
        headers.append((f, ds))
    headers = _select_series(headers, origin, series_uid, slice_thickness_mm)
    files = [f for f, _ in headers]
    n = len(files)
    positions = np.full((n, 3), np.nan, dtype=np.float64)
    orientations: list[np.ndarray | None] = []
    instance_numbers: list[int | None] = []
    thicknesses: list[float | None] = []
    size = spacing = patient = None
    first = files[0]
    for i, (f, ds) in enumerate(headers):
        shape = _check_image_header(ds, f)
        _rescale(ds, f)
        if size is None:
            size = shape
        elif shape != size:
            raise DataError(
                f"images of different sizes in one series ({origin}): {first} is "
                f"{size[0]}x{size[1]} (Rows x Columns) but {f} is {shape[0]}x{shape[1]}, "
                "expected all slices to have the same size"
            )
        sp = _vector(ds, "PixelSpacing", 2, f)
        if sp is None:
            raise DataError(f"{f}: no PixelSpacing, expected (row spacing, column spacing) in mm")
        if np.any(sp <= 0):
            raise DataError(f"{f}: PixelSpacing is {sp.tolist()}, expected positive spacings in mm")
        if spacing is None:
            spacing = sp
        elif not np.allclose(sp, spacing, atol=_SPACING_TOLERANCE_MM, rtol=0.0):
            raise DataError(
                f"inconsistent PixelSpacing in one series ({origin}): {first} has {spacing.tolist()} mm "
                f"but {f} has {sp.tolist()} mm, expected the same spacing for all slices"
            )
        pid = ds.get("PatientID")
        pid = None if pid in (None, "") else str(pid)
        if i == 0:
            patient = pid
        elif pid != patient:
            raise DataError(
                f"different patients in one series ({origin}): {first} has PatientID {patient!r} but "
                f"{f} has {pid!r}, expected one patient per series"
            )
        ipp = _vector(ds, "ImagePositionPatient", 3, f)
        if ipp is not None:
            positions[i] = ipp
        orientations.append(_vector(ds, "ImageOrientationPatient", 6, f))
        instance_numbers.append(_instance_number(ds, f))
        thicknesses.append(_series_key(ds, f)[1])
    uid = _series_key(headers[0][1], first)[0]
    del headers

    order = _order(files, positions, orientations, instance_numbers)
    normal = None
    if not np.isnan(positions).any() and all(o is not None for o in orientations):
        normal = np.cross(orientations[0][:3], orientations[0][3:])
        normal = normal / np.linalg.norm(normal)

    # Pass 2: pixels, slice by slice, into a preallocated array in sorted order.
    assert size is not None and spacing is not None
    hu = np.empty((n, size[0], size[1]), dtype=np.float32)
    n_pad = n_clamped = 0
    for k, i in enumerate(order):
        f = files[i]
        ds = _dcmread(f, stop_before_pixels=False)
        img, pad, clamped = _slice_hu(ds, f, expected_modality, min_hu)
        if img.shape != size:  # the file changed between the two passes
            raise DataError(f"{f}: image is {img.shape[0]}x{img.shape[1]}, expected {size[0]}x{size[1]}")
        hu[k] = img
        n_pad += pad
        n_clamped += clamped
        del ds, img

    sorted_files = [files[i] for i in order]
    thickness = thicknesses[0] if thicknesses and all(t == thicknesses[0] for t in thicknesses) else None
    return Series(
        hu=hu,
        pixel_spacing=(float(spacing[0]), float(spacing[1])),
        positions=positions[order],
        files=tuple(sorted_files),
        slice_thickness=thickness,
        patient_id=patient,
        series_uid=uid,
        padding_pixels=n_pad,
        clamped_pixels=n_clamped,
        gaps=_gaps(sorted_files, positions[order], normal),
    )
