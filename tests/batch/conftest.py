"""A test archive: copies of the sample series under new UIDs, plus broken inputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import UID, ExplicitVRLittleEndian

from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "sample_dicom"
CASES = ("case_metastases", "case_spiculated", "case_normal")


def _uid(*parts: object) -> UID:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:16]
    return UID(f"2.25.{int.from_bytes(digest, 'big')}")


def copy_series(case: str, dest: Path, tag: str, *, drop: int | None = None, shrink: int = 0) -> str:
    """Write a copy of a sample series under new Study/Series/SOP UIDs; returns the series UID.

    Args:
        case: Sample case folder name.
        dest: Output folder.
        tag: Makes the UIDs unique.
        drop: Leave out the file at this index (a missing slice).
        shrink: Halve the matrix of the last ``shrink`` slices (mixed sizes).
    """
    dest.mkdir(parents=True, exist_ok=True)
    series_uid = _uid("series", tag)
    files = sorted((SAMPLE / case / "dicom").glob("*.dcm"))
    for n, path in enumerate(files):
        if n == drop:
            continue
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = _uid("study", tag)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid("sop", tag, n)
        ds.FrameOfReferenceUID = _uid("for", tag)
        ds.AccessionNumber = f"ACC{abs(hash(tag)) % 10**8:08d}"
        if shrink and n >= len(files) - shrink:
            small = np.ascontiguousarray(ds.pixel_array[::2, ::2])
            ds.Rows, ds.Columns = small.shape
            ds.PixelSpacing = [2 * float(v) for v in ds.PixelSpacing]
            ds.PixelData = small.tobytes()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # the sample may be compressed
        ds.save_as(dest / path.name, enforce_file_format=True)
    return str(series_uid)
