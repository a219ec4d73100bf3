"""Write CT Image Storage files from a :class:`~medmm.types.Volume` or single slices.

Each z-slice of a volume becomes one single-frame CT image whose ImagePositionPatient is
``affine @ (k, 0, 0, 1)`` and whose ImageOrientationPatient comes from the in-plane
axes, so a volume with a sheared affine is written as a gantry-tilted series. HU values
are stored as signed 16-bit with RescaleIntercept 0 / RescaleSlope 1 after rounding.

UIDs are ``2.25.<integer>`` UUID-derived UIDs (PS3.5 B.2), made deterministic from a seed
so that generated data sets are reproducible byte for byte.

Example:
    >>> import numpy as np, tempfile
    >>> from medmm.types import Volume
    >>> vol = Volume.from_spacing(np.full((3, 8, 8), -1000, np.float32), (2.5, 0.7, 0.7))
    >>> files = write_ct_series(vol, tempfile.mkdtemp(), seed=1)
    >>> len(files)
    3
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
)

from medmm.errors import ExportError
from medmm.io.atomic import atomic_path
from medmm.types import Volume

__all__ = ["SeriesTemplate", "deterministic_uid", "write_ct_series", "write_ct_slice"]

_IMPLEMENTATION_VERSION = "MEDMM_0_1"


def deterministic_uid(*parts: object) -> str:
    """A ``2.25.`` UID derived from ``parts`` (same parts, same UID).

    PS3.5 B.2 allows ``2.25.`` followed by the decimal value of a 128-bit UUID; here the
    128 bits are the first 16 bytes of a SHA-256 of the parts, so the UID is reproducible.
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


@dataclass(frozen=True)
class SeriesTemplate:
    """Series- and study-level attributes shared by every slice written.

    Attributes:
        seed: Makes the UIDs reproducible.
        patient_id: PatientID (synthetic; never real data).
        patient_name: PatientName.
        patient_sex: ``"M"``, ``"F"`` or ``"O"``.
        patient_age: PatientAge as DICOM AS, e.g. ``"061Y"``.
        series_description: SeriesDescription.
        series_number: SeriesNumber.
        kernel: ConvolutionKernel.
        kvp: KVP.
        manufacturer: Manufacturer.
        study_date: StudyDate (YYYYMMDD).
        series_uid: Override the derived SeriesInstanceUID.
        study_uid: Override the derived StudyInstanceUID.
        extra: More attributes by keyword, set on every slice.
    """

    seed: int = 0
    patient_id: str = "MEDMM-SYNTH-0000"
    patient_name: str = "Synthetic^Phantom"
    patient_sex: str = "O"
    patient_age: str = "060Y"
    series_description: str = "medmm synthetic chest CT"
    series_number: int = 1
    kernel: str = "STANDARD"
    kvp: float = 120.0
    manufacturer: str = "medmm"
    study_date: str = "20260101"
    series_uid: str | None = None
    study_uid: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def resolved_study_uid(self) -> str:
        """StudyInstanceUID (derived from the seed unless given)."""
        return self.study_uid or deterministic_uid("study", self.seed, self.patient_id)

    @property
    def resolved_series_uid(self) -> str:
        """SeriesInstanceUID (derived from the seed unless given)."""
        return self.series_uid or deterministic_uid("series", self.seed, self.patient_id, self.series_number)

    @property
    def frame_of_reference_uid(self) -> str:
        """FrameOfReferenceUID shared by the study."""
        return deterministic_uid("for", self.seed, self.patient_id)


def _fmt(values: Sequence[float]) -> list[str]:
    """Decimal strings within the 16-character DS limit."""
    out = []
    for v in values:
        s = f"{float(v):.6f}".rstrip("0").rstrip(".")
        if s in ("-0", ""):
            s = "0"
        out.append(s[:16])
    return out


def write_ct_slice(
    path: str | os.PathLike[str],
    pixels_hu: npt.ArrayLike,
    position_lps_mm: Sequence[float],
    orientation: Sequence[float],
    pixel_spacing_mm: Sequence[float],
    template: SeriesTemplate,
    *,
    instance_number: int,
    slice_thickness_mm: float,
    sop_instance_uid: str | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Path:
    """Write one CT Image Storage file.

    Args:
        path: Output file.
        pixels_hu: One slice in HU.
        position_lps_mm: ImagePositionPatient (centre of the first pixel).
        orientation: ImageOrientationPatient (row cosines, column cosines).
        pixel_spacing_mm: PixelSpacing ``(between rows, between columns)``.
        template: Shared series attributes.
        instance_number: InstanceNumber.
        slice_thickness_mm: SliceThickness.
        sop_instance_uid: Override the derived SOPInstanceUID.
        transfer_syntax: Native explicit little endian by default; RLE Lossless,
            JPEG-LS Lossless and JPEG 2000 Lossless are encoded by pydicom's encoders.

    Shapes:
        pixels_hu: ``(rows, columns)``

    Raises:
        ExportError: The file cannot be written or encoded.
    """
    hu = np.asarray(pixels_hu, dtype=np.float64)
    if hu.ndim != 2:
        raise ExportError(f"a slice must be 2D, got shape {hu.shape}", path=path)
    stored = np.clip(np.rint(hu), -32768, 32767).astype(np.int16)
    series_uid = template.resolved_series_uid
    sop_uid = sop_instance_uid or deterministic_uid("sop", series_uid, instance_number)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = template.study_date
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = "120000"
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = template.manufacturer
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = template.series_description
    ds.PatientName = template.patient_name
    ds.PatientID = template.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = template.patient_sex
    ds.PatientAge = template.patient_age
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = _fmt([slice_thickness_mm])[0]
    ds.KVP = _fmt([template.kvp])[0]
    ds.ConvolutionKernel = template.kernel
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = template.resolved_study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = template.series_number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = _fmt(position_lps_mm)
    ds.ImageOrientationPatient = _fmt(orientation)
    ds.FrameOfReferenceUID = template.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(stored.shape[0]), int(stored.shape[1])
    ds.PixelSpacing = _fmt(pixel_spacing_mm)
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.WindowCenter = "-600"
    ds.WindowWidth = "1500"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    for keyword, value in template.extra.items():
        setattr(ds, keyword, value)
    ds.PixelData = stored.tobytes()
    try:
        if UID(transfer_syntax) != ExplicitVRLittleEndian:
            ds.compress(UID(transfer_syntax), stored, generate_instance_uid=False)
    except Exception as exc:
        raise ExportError(
            f"cannot encode with transfer syntax {transfer_syntax}: {exc}",
            path=path,
            hint="Install pylibjpeg-openjpeg (JPEG 2000) or pyjpegls (JPEG-LS), or write uncompressed.",
        ) from exc
    p = Path(path)
    try:
        with atomic_path(p) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
    except OSError as exc:
        raise ExportError(f"cannot write DICOM: {exc.strerror or exc}", path=p) from exc
    return p


def write_ct_series(
    volume: Volume,
    out_dir: str | os.PathLike[str],
    template: SeriesTemplate | None = None,
    *,
    seed: int | None = None,
    file_pattern: str = "CT{index:04d}.dcm",
    slice_thickness_mm: float | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> list[Path]:
    """Write every z-slice of a volume as a CT image; returns the files in slice order.

    Args:
        volume: HU volume. Its affine's in-plane axes give ImageOrientationPatient; slice
            ``k`` is placed at ``affine @ (k, 0, 0, 1)`` (a sheared affine = gantry tilt).
        out_dir: Created if missing.
        template: Series attributes (default: ``SeriesTemplate(seed=seed or 0)``).
        seed: Shortcut to set the template seed when no template is given.
        file_pattern: ``str.format`` pattern with ``index`` (1-based).
        slice_thickness_mm: SliceThickness (default: the spacing along the slice normal).
        transfer_syntax: See :func:`write_ct_slice`.
    """
    tpl = template or SeriesTemplate(seed=seed or 0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    a = volume.affine
    row_dir = a[:3, 2] / np.linalg.norm(a[:3, 2])
    col_dir = a[:3, 1] / np.linalg.norm(a[:3, 1])
    spacing = (float(np.linalg.norm(a[:3, 1])), float(np.linalg.norm(a[:3, 2])))
    normal = np.cross(row_dir, col_dir)
    thickness = slice_thickness_mm if slice_thickness_mm is not None else abs(float(a[:3, 0] @ normal))
    orientation = [*row_dir.tolist(), *col_dir.tolist()]
    files = []
    for k in range(volume.shape[0]):
        ipp = volume.index_to_world([k, 0, 0])
        files.append(
            write_ct_slice(
                out / file_pattern.format(index=k + 1),
                volume.array[k],
                ipp.tolist(),
                orientation,
                spacing,
                tpl,
                instance_number=k + 1,
                slice_thickness_mm=thickness,
                transfer_syntax=transfer_syntax,
            )
        )
    return files
