"""Headers that lie about size: refused from the header, before a pixel buffer exists.

Each case is checked with tracemalloc: the refusal must come without allocating anything
near the size the header claims.
"""

from __future__ import annotations

import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEG2000Lossless

from medmm.errors import DicomReadError, UnsupportedSeriesError
from medmm.io import load_series, scan
from medmm.io.headers import SkipReason
from medmm.io.limits import check_codestream_size, codestream_size, inflated_size_within
from medmm.synth.dicom_writer import SeriesTemplate, write_ct_series
from medmm.types import Volume


def _series(folder: Path, n: int = 3, size: int = 16, **kwargs: object) -> list[Path]:
    aff = np.array([[0, 0, 0.7, -5], [0, 0.7, 0, -5], [2.0, 0, 0, -2], [0, 0, 0, 1]], float)
    vol = Volume(np.random.default_rng(0).normal(-700, 50, (n, size, size)).astype(np.float32), aff)
    return write_ct_series(vol, folder, SeriesTemplate(seed=3), **kwargs)  # type: ignore[arg-type]


def _peak_mb(call) -> tuple[object, float]:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        out = call()
        return out, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_a_100000_frame_header_is_refused_without_allocating(tmp_path: Path) -> None:
    (path,) = _series(tmp_path, n=1)
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 100_000
    ds.save_as(path)
    found, peak = _peak_mb(lambda: scan(tmp_path, workers=1))
    assert not found.series  # type: ignore[attr-defined]
    (skip,) = found.skipped  # type: ignore[attr-defined]
    assert skip.reason is SkipReason.TRUNCATED and "100000 frame(s)" in skip.detail and skip.path == path
    assert peak < 20, f"{peak:.0f} MB allocated for a header"


@pytest.mark.parametrize("bits", [None, 0, 999])
def test_frames_are_bounded_even_when_bits_allocated_is_unusable(tmp_path: Path, bits: int | None) -> None:
    # Found by the 100x header fuzz run: NumberOfFrames 747121 with an empty BitsAllocated
    # skipped the size check and built 747k frame records (11 s of CPU).
    (path,) = _series(tmp_path, n=1)
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 747_121
    if bits is None:
        del ds.BitsAllocated
    else:
        ds.BitsAllocated = bits
    ds.save_as(path)
    found, peak = _peak_mb(lambda: scan(tmp_path, workers=1))
    (skip,) = found.skipped  # type: ignore[attr-defined]
    assert skip.reason is SkipReason.TRUNCATED and "747121 frame(s)" in skip.detail
    assert peak < 20, f"{peak:.0f} MB allocated for a header"


def test_absurd_rows_and_columns_are_refused_from_the_header(tmp_path: Path) -> None:
    files = _series(tmp_path)
    ds = pydicom.dcmread(files[1])
    ds.Rows = ds.Columns = 65535
    ds.save_as(files[1])
    found, peak = _peak_mb(lambda: scan(tmp_path, workers=1))
    assert [s.reason for s in found.skipped] == [SkipReason.TRUNCATED]  # type: ignore[attr-defined]
    assert "65535 x 65535" in found.skipped[0].detail  # type: ignore[attr-defined]
    assert peak < 20


def test_voxel_limit_is_checked_before_reading_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _series(tmp_path)
    series = scan(tmp_path).series[0]
    with pytest.raises(UnsupportedSeriesError, match="768 voxels: more than the limit of 700") as err:
        load_series(series, max_voxels=700)
    assert series.series_uid in str(err.value) and "max-voxels" in str(err.value)
    monkeypatch.setenv("MEDMM_MAX_VOXELS", "500")
    with pytest.raises(UnsupportedSeriesError, match="limit of 500"):
        load_series(series)
    assert load_series(series, max_voxels=768).shape == (3, 16, 16)


def _patch_siz(fragment: bytes, rows: int, cols: int) -> bytes:
    """Rewrite a JPEG 2000 codestream's SIZ image size (Xsiz, Ysiz) in place."""
    assert fragment[:4] == b"\xff\x4f\xff\x51"
    return fragment[:8] + cols.to_bytes(4, "big") + rows.to_bytes(4, "big") + fragment[16:]


def test_a_compressed_frame_claiming_a_huge_image_is_not_decoded(tmp_path: Path) -> None:
    pytest.importorskip("openjpeg", reason="pylibjpeg-openjpeg encodes the JPEG 2000 test file")
    files = _series(tmp_path, size=64, transfer_syntax=JPEG2000Lossless)
    ds = pydicom.dcmread(files[0])
    frames = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    assert codestream_size(frames[0]) == (64, 64)
    ds.PixelData = pydicom.encaps.encapsulate([_patch_siz(frames[0], 60000, 60000)])
    ds.save_as(files[0])
    series = scan(tmp_path).series[0]
    with pytest.raises(DicomReadError, match=r"declares 60000 x 60000 pixels.*decompression-bomb") as err:
        _peak_mb(lambda: load_series(series, workers=1))
    assert str(files[0]) in str(err.value)


def test_codestream_size_reads_jpeg_and_jpeg_ls_frame_headers() -> None:
    # Minimal SOI + SOF0 (8-bit, 300 lines, 200 columns) and SOI + SOF55 (JPEG-LS).
    sof = bytes([0xFF, 0xC0, 0x00, 0x0B, 8, 0x01, 0x2C, 0x00, 0xC8, 1, 1, 0x11, 0])
    assert codestream_size(b"\xff\xd8" + sof) == (300, 200)
    assert codestream_size(b"\xff\xd8\xff\xe0\x00\x04ab" + sof.replace(b"\xff\xc0", b"\xff\xf7")) == (300, 200)
    assert codestream_size(b"\x00\x01rle") is None
    check_codestream_size(b"\xff\xd8" + sof, 300, 200, path="x.dcm")
    with pytest.raises(DicomReadError, match=r"x\.dcm"):
        check_codestream_size(b"\xff\xd8" + sof, 16, 16, path="x.dcm")


def test_deflate_bomb_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("medmm.io.headers.DEFAULT_MAX_INFLATED_BYTES", 2 * 2**20)
    (path,) = _series(tmp_path, n=1)
    ds = pydicom.dcmread(path)
    ds.add_new(0x00091010, "OB", bytes(8 * 2**20))  # 8 MB of zeros: deflates to ~8 kB
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(path)
    assert path.stat().st_size < 200_000
    found, peak = _peak_mb(lambda: scan(tmp_path, workers=1))
    (skip,) = found.skipped  # type: ignore[attr-defined]
    assert "decompression-bomb" in skip.detail
    assert peak < 8, f"{peak:.1f} MB allocated"
    assert inflated_size_within(zlib.compress(b"x" * 1000)[2:-4], 1000)
    assert not inflated_size_within(zlib.compress(b"x" * 1001)[2:-4], 1000)


def _nested_sequence_bytes(depth: int) -> bytes:
    """ReferencedImageSequence nested ``depth`` deep, undefined lengths (explicit VR little endian)."""
    opening = b"\x08\x00\x40\x11SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    closing = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    return opening * depth + closing * depth


@pytest.mark.parametrize("depth", [50, 20_000])
def test_deeply_nested_sequences_do_not_crash_the_scan(tmp_path: Path, depth: int) -> None:
    files = _series(tmp_path)
    data = files[2].read_bytes()
    at = data.index(b"\xe0\x7f\x10\x00OW")  # the pixel data element
    files[2].write_bytes(data[:at] + _nested_sequence_bytes(depth) + data[at:])
    found, peak = _peak_mb(lambda: scan(tmp_path, workers=1))
    (series,) = found.series  # type: ignore[attr-defined]
    if depth == 50:  # legal nesting: read as usual
        assert len(series.instances) == 3 and not found.skipped  # type: ignore[attr-defined]
    else:  # deeper than the parser's recursion allows: that file is skipped with its reason
        assert len(series.instances) == 2
        (skip,) = found.skipped  # type: ignore[attr-defined]
        assert skip.path == files[2] and skip.reason is SkipReason.UNREADABLE
    assert peak < 64
    assert load_series(series).shape[1:] == (16, 16)


@pytest.mark.parametrize("thickness", [3.2e-267, float("inf"), 0.0])
def test_single_slice_with_unusable_slice_thickness_loads_with_1_mm(tmp_path: Path, thickness: float) -> None:
    # Found by the 100x header fuzz run: SliceThickness 3.2e-267 on a one-slice series gave a
    # singular affine and a raw ValueError from Volume.
    (path,) = _series(tmp_path, n=1)
    ds = pydicom.dcmread(path)
    ds["SliceThickness"] = pydicom.DataElement(0x00180050, "FD", thickness)
    ds.save_as(path)
    vol = load_series(tmp_path)
    assert vol.spacing_mm[0] == pytest.approx(1.0)
    assert any("SliceThickness" in w for w in vol.info.warnings)


def test_pixel_spacing_too_small_for_a_grid_is_a_geometry_error(tmp_path: Path) -> None:
    from medmm.errors import SeriesGeometryError

    paths = _series(tmp_path, n=3)
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.PixelSpacing = [1e-200, 0.7]
        ds.save_as(p)
    with pytest.raises(SeriesGeometryError, match="PixelSpacing"):
        load_series(tmp_path)
