"""Decode the stored pixel values of one instance.

Uncompressed little-endian grayscale data (the bulk of CT archives) is read straight
from disk at the byte offset found by the header scan, with no second parse of the
header: this is what makes :func:`medmm.io.load_series` faster than a full DICOM
re-read. Everything else (JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE, deflate, big endian,
float pixel data) goes through pydicom's decoders, which use pylibjpeg's plugins.
Unused high bits are masked or sign-extended exactly as pydicom does, so both paths give
identical values.
"""

from __future__ import annotations

import logging

import numpy as np
import pydicom
from pydicom.encaps import generate_fragments
from pydicom.pixels import apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medmm.errors import DicomReadError, UnsupportedSeriesError
from medmm.io.headers import InstanceHeader
from medmm.io.limits import CappedReader, check_codestream_size

__all__ = ["decode_stored_values", "stored_to_modality"]

logger = logging.getLogger(__name__)

_GRAYSCALE = {"MONOCHROME1", "MONOCHROME2", ""}
_NATIVE_LE = {str(ImplicitVRLittleEndian), str(ExplicitVRLittleEndian)}
_DTYPES = {
    (8, 0): np.uint8,
    (8, 1): np.int8,
    (16, 0): np.uint16,
    (16, 1): np.int16,
    (32, 0): np.uint32,
    (32, 1): np.int32,
}


def _fix_unused_bits(arr: np.ndarray, bits_allocated: int, bits_stored: int, signed: bool) -> np.ndarray:
    shift = bits_allocated - bits_stored
    if shift <= 0 or arr.dtype.kind not in "iu":
        return arr
    if signed:
        arr <<= shift
        arr >>= shift  # arithmetic shift on a signed dtype: sign extension
    else:
        arr &= np.array((1 << bits_stored) - 1, dtype=arr.dtype)
    return arr


def _can_read_directly(header: InstanceHeader) -> bool:
    lay = header.layout
    if (
        lay.transfer_syntax_uid not in _NATIVE_LE
        or lay.pixel_keyword != "PixelData"
        or lay.samples_per_pixel != 1
        or lay.data_offset is None
        or lay.data_length is None
        or (lay.bits_allocated, lay.pixel_representation) not in _DTYPES
    ):
        return False
    expected = lay.rows * lay.columns * lay.number_of_frames * lay.bits_allocated // 8
    return expected > 0 and lay.data_length >= expected


def decode_stored_values(header: InstanceHeader) -> np.ndarray:
    """Return the stored (pre-rescale) values of every frame of an instance.

    Args:
        header: From :func:`medmm.io.headers.inspect_file`.

    Returns:
        Stored values.

    Shapes:
        Output: ``(frames, rows, columns)``.

    Raises:
        UnsupportedSeriesError: Colour data.
        DicomReadError: The data cannot be decoded or has the wrong size.
    """
    lay = header.layout
    if lay.samples_per_pixel != 1:
        raise UnsupportedSeriesError(
            f"colour image ({lay.samples_per_pixel} samples per pixel, {lay.photometric}); "
            "medmm reads grayscale CT/MR only",
            path=header.path,
            series_uid=header.series_uid,
        )
    if lay.photometric not in _GRAYSCALE:
        raise UnsupportedSeriesError(
            f"photometric interpretation {lay.photometric!r} is not grayscale; medmm reads grayscale CT/MR only",
            path=header.path,
            series_uid=header.series_uid,
        )
    if _can_read_directly(header):
        dtype = np.dtype(_DTYPES[(lay.bits_allocated, lay.pixel_representation)]).newbyteorder("<")
        count = lay.rows * lay.columns * lay.number_of_frames
        try:
            arr = np.fromfile(header.path, dtype=dtype, count=count, offset=lay.data_offset or 0)
        except OSError as exc:
            raise DicomReadError(
                f"cannot read pixel data: {exc}", path=header.path, series_uid=header.series_uid
            ) from exc
        if arr.size != count:
            raise DicomReadError(
                f"pixel data has {arr.size} values, expected {count}", path=header.path, series_uid=header.series_uid
            )
        arr = arr.astype(dtype.newbyteorder("="), copy=False).reshape(lay.number_of_frames, lay.rows, lay.columns)
        return _fix_unused_bits(arr, lay.bits_allocated, lay.bits_stored, lay.pixel_representation == 1)
    return _decode_with_pydicom(header)


def _check_compressed_frames(ds: pydicom.Dataset, header: InstanceHeader) -> None:
    """Compare each compressed frame's own size with Rows x Columns before any decoder runs."""
    lay = header.layout
    if not getattr(ds.file_meta, "TransferSyntaxUID", None) or not ds.file_meta.TransferSyntaxUID.is_compressed:
        return
    value = ds.get("PixelData")
    if not isinstance(value, bytes | bytearray):
        return
    try:
        fragments = list(generate_fragments(value))
    except Exception as exc:  # pydicom raises ValueError/struct.error on broken item tags
        raise DicomReadError(
            f"encapsulated pixel data is malformed ({exc})", path=header.path, series_uid=header.series_uid
        ) from exc
    for fragment in fragments:
        check_codestream_size(fragment, lay.rows, lay.columns, path=header.path, series_uid=header.series_uid)


def _decode_with_pydicom(header: InstanceHeader) -> np.ndarray:
    try:
        with header.path.open("rb") as raw:
            ds = pydicom.dcmread(CappedReader(raw, header.path.stat().st_size), force=True)  # type: ignore[arg-type]
    except Exception as exc:
        raise DicomReadError(
            f"file cannot be read again for decoding ({type(exc).__name__}: {exc})",
            path=header.path,
            series_uid=header.series_uid,
        ) from exc
    _check_compressed_frames(ds, header)
    try:
        arr = ds.pixel_array
    except Exception as exc:
        raise DicomReadError(
            f"pixel data cannot be decoded ({type(exc).__name__}: {exc}); transfer syntax "
            f"{header.layout.transfer_syntax_uid}",
            path=header.path,
            series_uid=header.series_uid,
        ) from exc
    lay = header.layout
    expected = (lay.rows, lay.columns) if lay.number_of_frames == 1 else (lay.number_of_frames, lay.rows, lay.columns)
    if arr.shape != expected:
        raise DicomReadError(
            f"decoded pixel array has shape {arr.shape}, expected {expected}",
            path=header.path,
            series_uid=header.series_uid,
        )
    return arr.reshape(lay.number_of_frames, lay.rows, lay.columns)


def stored_to_modality(header: InstanceHeader, frame_index: int, stored: np.ndarray, out: np.ndarray) -> None:
    """Apply the modality transform (rescale or Modality LUT) of one frame into ``out``.

    Args:
        header: The instance the frame belongs to.
        frame_index: Frame number inside the instance.
        stored: Stored values of that frame.
        out: Destination (float32), written in place.

    Shapes:
        - stored: ``(rows, columns)``
        - out: ``(rows, columns)``
    """
    rec = header.frames[frame_index]
    if rec.has_modality_lut:
        ds = pydicom.dcmread(header.path, stop_before_pixels=True, force=True)
        out[...] = apply_modality_lut(stored, ds)
        return
    if rec.rescale_slope == 1.0 and stored.dtype.itemsize <= 2 and float(rec.rescale_intercept).is_integer():
        # Exact in float32: 16-bit integers plus an integer intercept stay below 2**24.
        out[...] = stored
        out += np.float32(rec.rescale_intercept)
    else:
        # Double precision for the product, like pydicom and ITK, then store as float32.
        out[...] = stored.astype(np.float64) * rec.rescale_slope + rec.rescale_intercept
