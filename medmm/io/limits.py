"""Resource bounds for reading untrusted DICOM: checked from headers, before anything big exists.

A hospital archive holds files whose headers lie. Three guards keep a lie from turning
into a huge allocation:

- :class:`CappedReader` wraps a file so that no read asks for more bytes than the file
  still holds (a corrupt value length of 4 GB would otherwise make ``read()`` reserve
  4 GB before finding the file is short).
- :func:`check_voxels` refuses a series whose headers add up to more voxels than a
  configurable limit, before the pixel buffer is allocated.
- :func:`check_codestream_size` compares the image size written inside a compressed
  frame (JPEG SOF, JPEG-LS SOF55, JPEG 2000 SIZ) with Rows x Columns before the decoder
  runs, and :func:`inflated_size_within` bounds a Deflate-compressed data set: the two
  decompression-bomb cases.

Example:
    >>> check_voxels(512 * 512 * 300, 10**9, what="series 1.2.3")   # fine: returns None
    >>> try:
    ...     check_voxels(100_000 * 512 * 512, 10**9, what="series 1.2.3")
    ... except UnsupportedSeriesError as exc:
    ...     print(exc.message)
    26,214,400,000 voxels: more than the limit of 1,000,000,000
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

from medmm.errors import DicomReadError, UnsupportedSeriesError

__all__ = [
    "DEFAULT_MAX_INFLATED_BYTES",
    "DEFAULT_MAX_VOXELS",
    "CappedReader",
    "check_codestream_size",
    "check_voxels",
    "codestream_size",
    "default_max_voxels",
    "inflated_size_within",
]

DEFAULT_MAX_VOXELS = 1_000_000_000
"""Default voxel limit of one series (4 GB as float32): ~3,800 slices of 512 x 512."""

DEFAULT_MAX_INFLATED_BYTES = 256 * 2**20
"""Largest Deflate-compressed data set (Deflated Explicit VR Little Endian) inflated."""

_MAX_VOXELS_ENV = "MEDMM_MAX_VOXELS"


def default_max_voxels() -> int:
    """The voxel limit: ``$MEDMM_MAX_VOXELS`` when set to a positive integer, else the default."""
    raw = os.environ.get(_MAX_VOXELS_ENV, "")
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_MAX_VOXELS
    return value if value > 0 else DEFAULT_MAX_VOXELS


class CappedReader:
    """A binary file whose ``read(n)`` never asks for more than the bytes left in it.

    Args:
        fp: An open binary file (seekable).
        size: Its size in bytes.
    """

    def __init__(self, fp: BinaryIO, size: int) -> None:
        self._fp = fp
        self._size = size
        self.name = getattr(fp, "name", None)

    def read(self, n: int | None = -1) -> bytes:
        """Read up to ``n`` bytes, never reserving more than what remains in the file."""
        if n is None or n < 0:
            return self._fp.read()
        return self._fp.read(max(0, min(n, self._size - self._fp.tell())))

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the file position (as ``io``)."""
        return self._fp.seek(offset, whence)

    def tell(self) -> int:
        """The file position."""
        return self._fp.tell()

    def close(self) -> None:
        """Close the wrapped file."""
        self._fp.close()


def check_voxels(n_voxels: int, max_voxels: int | None, *, what: str, path: str | Path | None = None) -> None:
    """Refuse ``n_voxels`` above ``max_voxels`` (``None``: no limit).

    Raises:
        UnsupportedSeriesError: Naming ``what`` (usually ``series <uid>``) and the limit.
    """
    if max_voxels is None or n_voxels <= max_voxels:
        return
    raise UnsupportedSeriesError(
        f"{n_voxels:,} voxels: more than the limit of {max_voxels:,}",
        series_uid=what.removeprefix("series ") if what.startswith("series ") else None,
        path=path,
        hint=(
            "Raise the limit (--max-voxels, load_series(max_voxels=...) or $MEDMM_MAX_VOXELS) if the "
            "machine has the memory for it: 4 bytes per voxel, several copies during analysis."
        ),
    )


def codestream_size(fragment: bytes) -> tuple[int, int] | None:
    """``(rows, columns)`` declared by the codestream a compressed frame starts with.

    Reads the JPEG (ITU-T T.81) or JPEG-LS (ITU-T T.87) start-of-frame segment, or the
    JPEG 2000 (ITU-T T.800) SIZ segment. ``None`` when the fragment does not start with a
    codestream this function knows (e.g. RLE, whose size comes from the DICOM header).
    """
    if fragment[:4] == b"\xff\x4f\xff\x51" and len(fragment) >= 24:  # J2K: SOC, then SIZ first
        xsiz, ysiz, xo, yo = struct.unpack(">IIII", fragment[8:24])
        return max(0, ysiz - yo), max(0, xsiz - xo)
    if fragment[:2] != b"\xff\xd8":  # JPEG / JPEG-LS start of image
        return None
    pos = 2
    while pos + 4 <= len(fragment):
        if fragment[pos] != 0xFF:
            return None
        marker = fragment[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack(">H", fragment[pos + 2 : pos + 4])
        is_sof = 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)
        if (is_sof or marker == 0xF7) and pos + 9 <= len(fragment):  # SOFn / SOF55 (JPEG-LS)
            rows, cols = struct.unpack(">HH", fragment[pos + 5 : pos + 9])
            return rows, cols
        if marker in (0xDA, 0xD9):  # start of scan / end of image before any frame header
            return None
        pos += 2 + length
    return None


def check_codestream_size(
    fragment: bytes, rows: int, columns: int, *, path: str | Path, series_uid: str | None = None
) -> None:
    """Refuse a compressed frame that declares another size than Rows x Columns.

    A decoder allocates what the codestream declares, not what the DICOM header says: a
    few-kilobyte frame claiming 65,535 x 65,535 pixels is a decompression bomb.

    Raises:
        DicomReadError: The sizes differ.
    """
    declared = codestream_size(fragment)
    if declared is None:
        return
    # JPEG lets a frame declare 0 lines (defined later by a DNL marker); only a larger
    # or wider image than the header allows is refused.
    if declared[1] != columns or declared[0] > rows:
        raise DicomReadError(
            f"a compressed frame declares {declared[0]} x {declared[1]} pixels but Rows x Columns is "
            f"{rows} x {columns}; not decoded (decompression-bomb protection)",
            path=path,
            series_uid=series_uid,
            hint="The file is corrupt or hostile; re-export it from the PACS.",
        )


def inflated_size_within(compressed: bytes, limit_bytes: int) -> bool:
    """Whether raw-Deflate ``compressed`` inflates to at most ``limit_bytes`` (checked in bounded steps)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    data = compressed
    try:
        while data:
            chunk = inflater.decompress(data, 1 << 20)
            total += len(chunk)
            if total > limit_bytes:
                return False
            data = inflater.unconsumed_tail
            if not chunk and not data:
                break
    except zlib.error:
        return True  # not a bomb; the reader reports the corrupt stream itself
    return total <= limit_bytes
