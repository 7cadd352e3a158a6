"""Write small synthetic CT series as real DICOM Part-10 files (shared test helper).

``write_ct_series`` produces files that ordinary readers accept: CT Image Storage SOP class,
Explicit VR Little Endian, one Study/Series UID per call, unique SOP Instance UIDs, patient
geometry (IPP/IOP/PixelSpacing/SliceThickness) and a modality LUT (RescaleSlope/Intercept).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

AXIAL_IOP = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def hu_to_stored(hu: np.ndarray, *, slope: float, intercept: float, signed: bool) -> np.ndarray:
    """Stored integer values for ``hu`` (rounded to the slope quantum); ValueError if out of range."""
    stored = np.rint((np.asarray(hu, dtype=np.float64) - intercept) / slope)
    dtype = np.int16 if signed else np.uint16
    info = np.iinfo(dtype)
    if stored.size and (stored.min() < info.min or stored.max() > info.max):
        raise ValueError(
            f"HU range [{np.min(hu)}, {np.max(hu)}] with slope {slope} and intercept {intercept} "
            f"does not fit {dtype.__name__}"
        )
    return stored.astype(dtype)


def make_ct_dataset(
    stored: np.ndarray,
    *,
    position: Sequence[float] | None,
    orientation: Sequence[float] | None = AXIAL_IOP,
    pixel_spacing: tuple[float, float] = (0.7, 0.7),
    slice_thickness: float | None = 1.0,
    instance_number: int | None = 1,
    slope: float = 1.0,
    intercept: float = -1024.0,
    patient_id: str = "L000",
    study_uid: str | None = None,
    series_uid: str | None = None,
    modality: str = "CT",
) -> FileDataset:
    """One single-frame CT dataset (with file meta) holding the int16/uint16 image ``stored``."""
    stored = np.asarray(stored)
    if stored.ndim != 2 or stored.dtype not in (np.int16, np.uint16):
        raise ValueError(f"stored must be a 2-D int16 or uint16 array, got {stored.dtype} {stored.shape}")
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = ds.StudyInstanceUID
    ds.Modality = modality
    ds.Manufacturer = "ldct_nb test factory"
    ds.PatientID = patient_id
    ds.PatientName = patient_id
    ds.StudyDate = "20160101"
    ds.SeriesNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    if instance_number is not None:
        ds.InstanceNumber = int(instance_number)
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(pixel_spacing[0]), float(pixel_spacing[1])]
    if slice_thickness is not None:
        ds.SliceThickness = float(slice_thickness)
    ds.RescaleSlope = float(slope)
    ds.RescaleIntercept = float(intercept)
    ds.RescaleType = "HU"
    ds.Rows, ds.Columns = int(stored.shape[0]), int(stored.shape[1])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    ds.PixelData = stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    return ds


def write_ct_series(
    folder: str | Path,
    hu_volume: np.ndarray,
    *,
    pixel_spacing: tuple[float, float] = (0.7, 0.7),
    z0: float = 0.0,
    dz: float = 1.0,
    signed: bool = True,
    slope: float = 1.0,
    intercept: float = -1024.0,
    patient_id: str = "L000",
    suffix: str = ".IMA",
    shuffle: bool = True,
    seed: int = 0,
    orientation: Sequence[float] = AXIAL_IOP,
    instance_numbers: Sequence[int | None] | None = None,
    positions: Sequence[Sequence[float] | None] | None = None,
    slice_thickness: float | None = None,
    modality: str = "CT",
    series_uid: str | None = None,
) -> list[Path]:
    """Write ``hu_volume`` (S x H x W, HU) as S DICOM files in ``folder``; returns paths in slice order.

    Slice ``i`` sits at ``origin + (z0 + i*dz) * normal`` where ``normal = cross(row, col)`` of
    ``orientation`` (so with the default axial IOP, IPP z = z0 + i*dz). With ``shuffle`` the
    file names are random hex strings (so their sorted order is not the slice order); otherwise
    ``slice_0001<suffix>``, ... ``InstanceNumber`` defaults to ``i + 1``. ``instance_numbers`` /
    ``positions`` override per slice (``None`` entries omit the tag). ``signed`` stores int16
    (PixelRepresentation 1), else uint16 (PixelRepresentation 0). ``series_uid`` gives the files
    that SeriesInstanceUID (default: a new one per call, so two calls write two series).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vol = np.asarray(hu_volume, dtype=np.float64)
    if vol.ndim == 2:
        vol = vol[None]
    if vol.ndim != 3:
        raise ValueError(f"hu_volume must be S x H x W, got shape {vol.shape}")
    n, h, w = vol.shape
    stored = hu_to_stored(vol, slope=slope, intercept=intercept, signed=signed)
    iop = np.asarray(orientation, dtype=np.float64)
    normal = np.cross(iop[:3], iop[3:])
    origin = -0.5 * np.array([w * pixel_spacing[1], h * pixel_spacing[0], 0.0])
    rng = np.random.default_rng(seed)
    if shuffle:
        names = []
        while len(names) < n:
            name = f"{rng.integers(0, 2**48):012x}{suffix}"
            if name not in names:
                names.append(name)
    else:
        names = [f"slice_{i + 1:04d}{suffix}" for i in range(n)]
    study_uid, series_uid = generate_uid(), series_uid or generate_uid()
    thickness = abs(dz) if slice_thickness is None else slice_thickness
    paths = []
    for i in range(n):
        pos = origin + (z0 + i * dz) * normal if positions is None else positions[i]
        inst = i + 1 if instance_numbers is None else instance_numbers[i]
        ds = make_ct_dataset(
            stored[i],
            position=pos,
            orientation=orientation,
            pixel_spacing=pixel_spacing,
            slice_thickness=thickness,
            instance_number=inst,
            slope=slope,
            intercept=intercept,
            patient_id=patient_id,
            study_uid=study_uid,
            series_uid=series_uid,
            modality=modality,
        )
        path = folder / names[i]
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
