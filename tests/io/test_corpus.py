"""Every image in pydicom's bundled test files and ../shared/data/pydicom-data either loads
with the values pydicom itself decodes, or fails with a medmm error naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.pixels import apply_modality_lut

from medmm.errors import MedmmError, UnsupportedSeriesError
from medmm.io import SkipReason, load_series, scan
from tests.conftest import SHARED_DATA

PYDICOM_BUNDLED = Path(pydicom.data.__file__).parent / "test_files"
SHARED_CORPUS = SHARED_DATA / "pydicom-data"


def _files(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name not in ("LICENSE", "SOURCE", "README.md"))


def _expected_frames(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """pydicom's own decoding + modality transform, and the per-frame positions."""
    ds = pydicom.dcmread(path, force=True)
    arr = ds.pixel_array
    n = int(ds.get("NumberOfFrames", 1) or 1)
    frames = arr.reshape(n, *arr.shape[-2:]).astype(np.float64)
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
        out, pos = [], []
        for f in range(n):
            item = ds.PerFrameFunctionalGroupsSequence[f]

            def find(seq: str, kw: str, item=item, shared=shared):
                for g in (item, shared):
                    if g is not None and seq in g and kw in g[seq][0]:
                        return g[seq][0][kw].value
                return None

            slope = float(find("PixelValueTransformationSequence", "RescaleSlope") or 1)
            inter = float(find("PixelValueTransformationSequence", "RescaleIntercept") or 0)
            out.append(frames[f] * slope + inter)
            pos.append([float(v) for v in find("PlanePositionSequence", "ImagePositionPatient")])
        return np.stack(out), np.asarray(pos)
    values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64).reshape(frames.shape)
    return values, np.asarray([[float(v) for v in ds.ImagePositionPatient]])


def _check(path: Path) -> str:
    res = scan(path)
    assert len(res.series) + len(res.skipped) == 1, "a file must be used or skipped, never dropped"
    if res.skipped:
        assert isinstance(res.skipped[0].reason, SkipReason)
        assert res.skipped[0].detail
    try:
        vol = load_series(path)
    except MedmmError as exc:
        assert path.name in str(exc), f"error does not name the file: {exc}"
        return f"refused:{type(exc).__name__}:{res.skipped[0].reason if res.skipped else 'load'}"
    expected, positions = _expected_frames(path)
    normal = np.cross(vol.direction[:, 2], vol.direction[:, 1])
    order = np.argsort(positions @ normal, kind="stable")
    np.testing.assert_allclose(vol.array, expected[order].astype(np.float32), rtol=1e-6, atol=1e-3)
    return "loaded"


@pytest.mark.parametrize("path", _files(PYDICOM_BUNDLED), ids=lambda p: p.name)
def test_pydicom_bundled_file(path: Path) -> None:
    _check(path)


@pytest.mark.realdata
@pytest.mark.parametrize("path", _files(SHARED_CORPUS) or [SHARED_CORPUS], ids=lambda p: p.name)
def test_shared_pydicom_data_file(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"shared real data not present: {path} (see ../shared/data/README.md)")
    _check(path)


def test_corpus_has_loaded_compressed_and_multiframe_images() -> None:
    """Guard against a reader that 'passes' by refusing everything."""
    outcomes = {p.name: _check(p) for p in _files(PYDICOM_BUNDLED) + _files(SHARED_CORPUS)}
    loaded = {name for name, o in outcomes.items() if o == "loaded"}
    assert {
        "CT_small.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_RLE.dcm",
        "MR_small_bigendian.dcm",
    } <= loaded
    if SHARED_CORPUS.exists():
        assert {"eCT_Supplemental.dcm", "693_J2KR.dcm", "MR2_J2KI.dcm"} <= loaded


def _grayscale_headers() -> list:
    from medmm.io import inspect_file
    from medmm.io.headers import InstanceHeader

    heads = [inspect_file(p) for p in _files(PYDICOM_BUNDLED) + _files(SHARED_CORPUS)]
    return [h for h in heads if isinstance(h, InstanceHeader) and h.layout.samples_per_pixel == 1]


@pytest.mark.parametrize("header", _grayscale_headers(), ids=lambda h: h.path.name)
def test_stored_values_decode_like_pydicom_for_every_transfer_syntax(header) -> None:
    """Decoding alone, geometry aside: covers files refused later for lack of a position."""
    from medmm.io.pixels import decode_stored_values

    try:
        ours = decode_stored_values(header)
    except MedmmError as exc:
        assert header.path.name in str(exc)
        if isinstance(exc, UnsupportedSeriesError):
            assert header.layout.photometric not in ("MONOCHROME1", "MONOCHROME2")
            return
        with pytest.raises(Exception):  # noqa: B017, PT011 - pydicom must fail on it too
            pydicom.dcmread(header.path, force=True).pixel_array  # noqa: B018
        return
    ds = pydicom.dcmread(header.path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:  # no file meta: tell pydicom what it parsed
        ds.file_meta.TransferSyntaxUID = header.layout.transfer_syntax_uid
    np.testing.assert_array_equal(ours, ds.pixel_array.reshape(ours.shape))
