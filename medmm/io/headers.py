"""Header-only inspection of one DICOM file.

:func:`inspect_file` reads a file up to (not including) its pixel data and returns an
:class:`InstanceHeader` with everything later stages need: UIDs, per-frame geometry and
rescale, the pixel layout and the byte offset of the pixel data. Anything that makes the
file unusable is returned as a :class:`SkippedFile` with a :class:`SkipReason`; this
module never raises on bad input, because one bad file must not stop a folder scan.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from medmm.io.limits import DEFAULT_MAX_INFLATED_BYTES, CappedReader, inflated_size_within
from medmm.privacy import PHI_KEYWORDS, register_phi

__all__ = [
    "FrameRecord",
    "InstanceHeader",
    "PixelLayout",
    "SkipReason",
    "SkippedFile",
    "inspect_file",
]

logger = logging.getLogger(__name__)

_PIXEL_TAGS = {0x7FE00010: "PixelData", 0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

# SOP classes (by UID prefix) that hold no acquired image, with a readable name.
_NON_IMAGE_SOP_PREFIXES: tuple[tuple[str, str], ...] = (
    ("1.2.840.10008.5.1.4.1.1.88.", "structured report (SR) / key object"),
    ("1.2.840.10008.5.1.4.1.1.66.4", "segmentation (SEG)"),
    ("1.2.840.10008.5.1.4.1.1.66", "raw data / spatial registration"),
    ("1.2.840.10008.5.1.4.1.1.481.", "radiotherapy (RT) object"),
    ("1.2.840.10008.5.1.4.1.1.11.", "presentation state"),
    ("1.2.840.10008.5.1.4.1.1.104.", "encapsulated document"),
    ("1.2.840.10008.5.1.4.1.1.30", "parametric map (derived values, not an acquired image)"),
    ("1.2.840.10008.5.1.4.1.1.9.", "waveform"),
)
_NON_IMAGE_MODALITIES = {
    "SR": "structured report (SR)",
    "SEG": "segmentation (SEG)",
    "RTSTRUCT": "RT structure set",
    "RTPLAN": "RT plan",
    "RTDOSE": "RT dose",
    "PR": "presentation state",
    "KO": "key object selection",
    "REG": "registration",
}


class SkipReason(StrEnum):
    """Why a file found by a scan is not part of any image series."""

    EMPTY = "empty"
    NOT_DICOM = "not_dicom"
    UNREADABLE = "unreadable"
    TRUNCATED = "truncated"
    NO_PIXEL_DATA = "no_pixel_data"
    NON_IMAGE_OBJECT = "non_image_object"
    DICOMDIR = "dicomdir"
    DUPLICATE = "duplicate"
    MISSING_UID = "missing_uid"


@dataclass(frozen=True)
class SkippedFile:
    """A file a scan did not use, and why.

    Attributes:
        path: The file.
        reason: Machine-readable category.
        detail: One human sentence (names the SOP class, the missing tag, the byte counts...).
    """

    path: Path
    reason: SkipReason
    detail: str


@dataclass(frozen=True)
class PixelLayout:
    """How the pixel data of one instance is stored.

    Attributes:
        transfer_syntax_uid: Transfer syntax of the data set.
        rows: Rows per frame.
        columns: Columns per frame.
        samples_per_pixel: 1 for grayscale, 3 for colour.
        bits_allocated: Bits per stored sample.
        bits_stored: Bits actually used.
        pixel_representation: 0 unsigned, 1 two's complement.
        photometric: PhotometricInterpretation.
        number_of_frames: Frames in the instance.
        data_offset: Byte offset of the first pixel byte in the file, when the data are
            native (not encapsulated) and the file is not deflated; else ``None``.
        data_length: Byte length of the native pixel data value, or ``None``.
        pixel_keyword: ``"PixelData"``, ``"FloatPixelData"`` or ``"DoubleFloatPixelData"``.
    """

    transfer_syntax_uid: str
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    number_of_frames: int
    data_offset: int | None
    data_length: int | None
    pixel_keyword: str


@dataclass(frozen=True)
class FrameRecord:
    """Geometry and value mapping of one frame (a single-frame file has one).

    Attributes:
        frame_index: 0-based frame number inside the file.
        position_lps_mm: ImagePositionPatient (centre of the first voxel), or None.
        orientation: ImageOrientationPatient (row cosines then column cosines), or None.
        pixel_spacing_mm: PixelSpacing (between rows, between columns), or None.
        rescale_slope: RescaleSlope (1 when absent).
        rescale_intercept: RescaleIntercept (0 when absent).
        has_modality_lut: A Modality LUT Sequence replaces slope/intercept.
    """

    frame_index: int
    position_lps_mm: tuple[float, float, float] | None
    orientation: tuple[float, float, float, float, float, float] | None
    pixel_spacing_mm: tuple[float, float] | None
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    has_modality_lut: bool = False


@dataclass(frozen=True)
class InstanceHeader:
    """Everything medmm keeps from one DICOM file's header (picklable, no pydicom objects).

    Attributes:
        path: The file.
        sop_instance_uid: SOPInstanceUID.
        sop_class_uid: SOPClassUID.
        series_uid: SeriesInstanceUID.
        study_uid: StudyInstanceUID.
        frame_of_reference_uid: FrameOfReferenceUID.
        modality: Modality.
        instance_number: InstanceNumber, if any.
        series_attributes: Series-level free-text attributes (description, kernel...).
        layout: Pixel storage description.
        frames: Per-frame geometry.
        file_size: Bytes on disk.
    """

    path: Path
    sop_instance_uid: str
    sop_class_uid: str
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    modality: str
    instance_number: int | None
    series_attributes: dict[str, Any]
    layout: PixelLayout
    frames: tuple[FrameRecord, ...]
    file_size: int


def _get(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """Read an attribute, treating unparsable values like missing ones."""
    try:
        value = ds.get(keyword, default)
    except Exception:  # pydicom converts lazily; a corrupt value raises here
        logger.debug("unparsable %s", keyword, exc_info=True)
        return default
    return default if value is None or value == "" else value


def _floats(ds: Dataset | None, keyword: str, count: int) -> tuple[float, ...] | None:
    if ds is None:
        return None
    value = _get(ds, keyword)
    if value is None:
        return None
    try:
        seq = [float(v) for v in (value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value])]
    except (TypeError, ValueError):
        return None
    if len(seq) != count or not all(map(_finite, seq)):
        return None
    return tuple(seq)


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    value = _get(ds, keyword)
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _str(ds: Dataset, keyword: str) -> str:
    value = _get(ds, keyword, "")
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _first_item(ds: Dataset | None, keyword: str) -> Dataset | None:
    if ds is None:
        return None
    seq = _get(ds, keyword)
    try:
        return seq[0] if seq else None
    except (TypeError, IndexError):
        return None


def _functional(
    per_frame: Dataset | None, shared: Dataset | None, seq: str, keyword: str, count: int
) -> tuple[float, ...] | None:
    for group in (per_frame, shared):
        value = _floats(_first_item(group, seq), keyword, count)
        if value is not None:
            return value
    return None


def _frame_records(ds: Dataset, n_frames: int) -> tuple[FrameRecord, ...]:
    """Per-frame geometry for classic single-frame and enhanced multi-frame objects."""
    has_mlut = "ModalityLUTSequence" in ds
    slope = _floats(ds, "RescaleSlope", 1)
    intercept = _floats(ds, "RescaleIntercept", 1)
    top_slope = slope[0] if slope else 1.0
    top_intercept = intercept[0] if intercept else 0.0
    per_frame_seq = _get(ds, "PerFrameFunctionalGroupsSequence")
    shared = _first_item(ds, "SharedFunctionalGroupsSequence")
    if per_frame_seq is None and shared is None:
        ipp = _floats(ds, "ImagePositionPatient", 3)
        iop = _floats(ds, "ImageOrientationPatient", 6)
        ps = _floats(ds, "PixelSpacing", 2)
        if n_frames > 1:
            # Legacy multi-frame without per-frame positions: frames have no known geometry.
            ipp = None
        return tuple(
            FrameRecord(f, ipp, iop, ps, top_slope, top_intercept, has_mlut)  # type: ignore[arg-type]
            for f in range(n_frames)
        )
    records = []
    for f in range(n_frames):
        try:
            item = per_frame_seq[f] if per_frame_seq is not None else None
        except (IndexError, TypeError):
            item = None
        ipp = _functional(item, shared, "PlanePositionSequence", "ImagePositionPatient", 3)
        iop = _functional(item, shared, "PlaneOrientationSequence", "ImageOrientationPatient", 6)
        ps = _functional(item, shared, "PixelMeasuresSequence", "PixelSpacing", 2)
        s = _functional(item, shared, "PixelValueTransformationSequence", "RescaleSlope", 1)
        b = _functional(item, shared, "PixelValueTransformationSequence", "RescaleIntercept", 1)
        records.append(
            FrameRecord(
                f,
                ipp,  # type: ignore[arg-type]
                iop or _floats(ds, "ImageOrientationPatient", 6),  # type: ignore[arg-type]
                ps or _floats(ds, "PixelSpacing", 2),  # type: ignore[arg-type]
                s[0] if s else top_slope,
                b[0] if b else top_intercept,
                has_mlut,
            )
        )
    return tuple(records)


def _age_years(text: str) -> float | None:
    m = re.fullmatch(r"(\d{1,3})([DWMY])", text.strip().upper())
    if not m:
        return None
    n = int(m.group(1))
    return {"D": n / 365.25, "W": n * 7 / 365.25, "M": n / 12.0, "Y": float(n)}[m.group(2)]


def _series_attributes(ds: Dataset) -> dict[str, Any]:
    thickness = _floats(ds, "SliceThickness", 1)
    return {
        "manufacturer": _str(ds, "Manufacturer"),
        "manufacturer_model": _str(ds, "ManufacturerModelName"),
        "convolution_kernel": _str(ds, "ConvolutionKernel"),
        "slice_thickness_mm": thickness[0] if thickness else None,
        "series_description": _str(ds, "SeriesDescription"),
        "series_number": _int(ds, "SeriesNumber"),
        "patient_age_years": _age_years(_str(ds, "PatientAge")),
        "patient_sex": _str(ds, "PatientSex").upper()[:1],
        "accession_number": _str(ds, "AccessionNumber"),
    }


def _locate_pixel_value(
    fp: BinaryIO, ds: Dataset, file_size: int
) -> tuple[str, int | None, int | None, str | None, int]:
    """Find the pixel data element right after the header and check it is complete.

    Returns:
        ``(keyword, value_offset, value_length, problem, fragments)``; offset/length are
        None for encapsulated data, whose fragment count (offset table excluded) is the
        last item; ``problem`` describes a truncation, else None.
    """
    start = fp.tell()
    implicit_flag, little_flag = ds.original_encoding  # (is_implicit_VR, is_little_endian)
    implicit = bool(implicit_flag) if implicit_flag is not None else False
    little = bool(little_flag) if little_flag is not None else True
    endian = "<" if little else ">"
    head = fp.read(8)
    if len(head) < 8:
        return "", None, None, None, 0
    group, elem = struct.unpack(endian + "HH", head[:4])
    tag = (group << 16) | elem
    keyword = _PIXEL_TAGS.get(tag, "")
    if not keyword:
        return "", None, None, None, 0
    if implicit:
        (length,) = struct.unpack(endian + "I", head[4:8])
        value_offset = start + 8
    else:
        vr = head[4:6]
        if vr in (b"OB", b"OW", b"OF", b"OD", b"OL", b"UN", b"OV"):
            extra = fp.read(4)
            if len(extra) < 4:
                return keyword, None, None, "file ends inside the pixel data element header", 0
            (length,) = struct.unpack(endian + "I", extra)
            value_offset = start + 12
        else:
            (length,) = struct.unpack(endian + "H", head[6:8])
            value_offset = start + 8
    if length != 0xFFFFFFFF:
        if value_offset + length > file_size:
            return (
                keyword,
                value_offset,
                length,
                (f"pixel data declares {length} bytes but only {file_size - value_offset} remain"),
                0,
            )
        return keyword, value_offset, length, None, 0
    # Encapsulated: walk the item headers up to the sequence delimiter.
    pos = value_offset
    items = 0
    while True:
        fp.seek(pos)
        item = fp.read(8)
        if len(item) < 8:
            return keyword, None, None, "encapsulated pixel data ends without a sequence delimiter", 0
        g, e, ilen = struct.unpack("<HHI", item)
        if (g, e) == (0xFFFE, 0xE0DD):
            return keyword, None, None, None, max(0, items - 1)
        if (g, e) != (0xFFFE, 0xE000) or ilen == 0xFFFFFFFF:
            return keyword, None, None, f"malformed encapsulated pixel data item at byte {pos}", 0
        pos += 8 + ilen
        items += 1
        if pos > file_size:
            return keyword, None, None, f"encapsulated fragment runs {pos - file_size} bytes past end of file", 0


def _size_refusal(ds: Dataset, n_frames: int, data_length: int | None, fragments: int | None) -> str | None:
    """Why the declared image size cannot be believed (checked before any per-frame record exists)."""
    rows, cols = _int(ds, "Rows", 0) or 0, _int(ds, "Columns", 0) or 0
    if rows <= 0 or cols <= 0:
        return f"image size {rows} x {cols} pixels is not usable (Rows and Columns must be positive)"
    bits = _int(ds, "BitsAllocated", 0) or 0
    samples = _int(ds, "SamplesPerPixel", 1) or 1
    # A missing or absurd BitsAllocated fails later, at decoding; for the bound, assume
    # the least any image needs (1 bit a sample) so NumberOfFrames is still checked.
    bits = bits if 0 < bits <= 64 else 1
    if data_length is not None:
        needed = -(-rows * cols * n_frames * max(samples, 1) * bits // 8)
        if needed > data_length:
            return (
                f"{n_frames} frame(s) of {rows} x {cols} x {bits} bits need {needed:,} bytes of pixel data "
                f"but the file holds {data_length:,}"
            )
    if fragments is not None and fragments and n_frames > fragments:
        return f"NumberOfFrames is {n_frames} but the encapsulated pixel data holds {fragments} fragment(s)"
    return None


def _deflate_bomb(fp: Any, path: Path) -> str | None:
    """Why a Deflate-compressed data set must not be inflated (checked before pydicom inflates it)."""
    from pydicom.filereader import read_file_meta_info

    fp.seek(0)
    head = fp.read(4096)
    fp.seek(0)
    if str(DeflatedExplicitVRLittleEndian).encode() not in head:  # cheap: most files stop here
        return None
    try:
        meta = read_file_meta_info(path)
        if str(meta.get("TransferSyntaxUID", "")) != DeflatedExplicitVRLittleEndian:
            return None
        # Preamble and 'DICM' (132 bytes), the group length element (12), then the group.
        fp.seek(132 + 12 + int(meta.FileMetaInformationGroupLength))
        body = fp.read()
    except Exception:
        return None  # no usable file meta: the header read reports what is wrong
    finally:
        fp.seek(0)
    if inflated_size_within(body, DEFAULT_MAX_INFLATED_BYTES):
        return None
    return (
        f"deflated data set inflates to more than {DEFAULT_MAX_INFLATED_BYTES:,} bytes (decompression-bomb protection)"
    )


def _transfer_syntax_from_encoding(ds: Dataset) -> str:
    implicit, little = ds.original_encoding
    if implicit:
        return str(ImplicitVRLittleEndian)
    return str(ExplicitVRLittleEndian if little is not False else ExplicitVRBigEndian)


def _non_image_kind(sop_class: str, modality: str) -> str | None:
    for prefix, name in _NON_IMAGE_SOP_PREFIXES:
        if sop_class.startswith(prefix):
            return name
    return _NON_IMAGE_MODALITIES.get(modality.upper())


def _read(fp: BinaryIO, path: Path) -> Dataset:
    try:
        return pydicom.dcmread(fp, stop_before_pixels=True)  # type: ignore[arg-type]
    except InvalidDicomError:
        # No 'DICM' preamble. A raw data set (old ACR-NEMA style) starts with a group 0002
        # or 0008 tag; anything else (NIfTI, JSON, text...) is not parsed at all, which also
        # spares the user pydicom's warnings about garbage.
        fp.seek(0)
        head = fp.read(4)
        groups = {struct.unpack("<H", head[:2])[0], struct.unpack(">H", head[:2])[0]} if len(head) == 4 else set()
        if not groups & {0x0002, 0x0008}:
            raise
        fp.seek(0)
        ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
        if "SOPClassUID" not in ds and "SeriesInstanceUID" not in ds:
            raise
        logger.debug("%s has no DICOM preamble; read as raw data set", path)
        return ds


def inspect_file(path: str | os.PathLike[str]) -> InstanceHeader | SkippedFile:
    """Read one file's header and classify it.

    Args:
        path: Any file.

    Returns:
        An :class:`InstanceHeader` for an image instance, else a :class:`SkippedFile`
        telling why it cannot be part of an image series.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        return SkippedFile(p, SkipReason.UNREADABLE, f"cannot stat file: {exc.strerror or exc}")
    if size == 0:
        return SkippedFile(p, SkipReason.EMPTY, "zero-byte file")
    try:
        with p.open("rb") as raw:
            # Corrupt value lengths must not make read() reserve gigabytes: cap every read.
            fp: Any = CappedReader(raw, size)
            bomb = _deflate_bomb(fp, p)
            if bomb is not None:
                return SkippedFile(p, SkipReason.UNREADABLE, bomb)
            try:
                ds = _read(fp, p)
            except InvalidDicomError:
                return SkippedFile(p, SkipReason.NOT_DICOM, "no DICOM preamble and not a DICOM data set")
            except (
                EOFError,
                struct.error,
                OSError,
                ValueError,
                KeyError,
                TypeError,
                AttributeError,
                NotImplementedError,
            ) as exc:
                return SkippedFile(p, SkipReason.UNREADABLE, f"header cannot be parsed: {exc}")
            register_phi(*(_get(ds, k) for k in PHI_KEYWORDS))  # never shown in logs (medmm.privacy)
            sop_class = _str(ds, "SOPClassUID") or str(
                getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "") or ""
            )
            if not sop_class and "PixelData" not in ds and "SeriesInstanceUID" not in ds:
                return SkippedFile(p, SkipReason.UNREADABLE, "DICOM preamble but no SOP Class UID or data elements")
            if sop_class == _DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
                return SkippedFile(p, SkipReason.DICOMDIR, "DICOMDIR index file (its records are scanned instead)")
            modality = _str(ds, "Modality")
            kind = _non_image_kind(sop_class, modality)
            if kind is not None:
                return SkippedFile(p, SkipReason.NON_IMAGE_OBJECT, f"{kind}, SOP class {sop_class or '?'}")
            ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
            if not ts:
                # No file meta: the encoding pydicom detected while parsing is the truth.
                ts = _transfer_syntax_from_encoding(ds)
            if ts == DeflatedExplicitVRLittleEndian:
                # The stream is inflated in memory; byte offsets are meaningless.
                keyword, offset, length, problem, fragments = ("PixelData", None, None, None, 0)
                fp.seek(0)
                full = pydicom.dcmread(fp)
                if "PixelData" not in full and "FloatPixelData" not in full and "DoubleFloatPixelData" not in full:
                    keyword = ""
            else:
                keyword, offset, length, problem, fragments = _locate_pixel_value(fp, ds, size)
    except OSError as exc:
        return SkippedFile(p, SkipReason.UNREADABLE, f"cannot read file: {exc.strerror or exc}")
    except Exception as exc:
        return SkippedFile(p, SkipReason.UNREADABLE, f"header cannot be parsed: {type(exc).__name__}: {exc}")
    if not keyword:
        return SkippedFile(p, SkipReason.NO_PIXEL_DATA, f"no pixel data element (SOP class {sop_class or '?'})")
    if problem is not None:
        return SkippedFile(p, SkipReason.TRUNCATED, problem)
    series_uid = _str(ds, "SeriesInstanceUID")
    sop_uid = _str(ds, "SOPInstanceUID")
    if not series_uid or not sop_uid:
        missing = "SeriesInstanceUID" if not series_uid else "SOPInstanceUID"
        return SkippedFile(p, SkipReason.MISSING_UID, f"image without {missing}; cannot be grouped")
    try:
        n_frames = max(1, _int(ds, "NumberOfFrames", 1) or 1)
        refusal = _size_refusal(ds, n_frames, length, fragments if offset is None and length is None else None)
        if refusal is not None:
            return SkippedFile(p, SkipReason.TRUNCATED, refusal)
        layout = PixelLayout(
            transfer_syntax_uid=ts,
            rows=_int(ds, "Rows", 0) or 0,
            columns=_int(ds, "Columns", 0) or 0,
            samples_per_pixel=_int(ds, "SamplesPerPixel", 1) or 1,
            bits_allocated=_int(ds, "BitsAllocated", 0) or 0,
            bits_stored=_int(ds, "BitsStored", 0) or (_int(ds, "BitsAllocated", 0) or 0),
            pixel_representation=_int(ds, "PixelRepresentation", 0) or 0,
            photometric=_str(ds, "PhotometricInterpretation"),
            number_of_frames=n_frames,
            data_offset=offset,
            data_length=length,
            pixel_keyword=keyword,
        )
        frames = _frame_records(ds, n_frames)
        return InstanceHeader(
            path=p,
            sop_instance_uid=sop_uid,
            sop_class_uid=sop_class,
            series_uid=series_uid,
            study_uid=_str(ds, "StudyInstanceUID"),
            frame_of_reference_uid=_str(ds, "FrameOfReferenceUID"),
            modality=modality,
            instance_number=_int(ds, "InstanceNumber"),
            series_attributes=_series_attributes(ds),
            layout=layout,
            frames=frames,
            file_size=size,
        )
    except Exception as exc:
        return SkippedFile(p, SkipReason.UNREADABLE, f"header attributes cannot be parsed: {type(exc).__name__}: {exc}")
