"""The source CT instances an export references, and the names of exported files.

DICOM SR and SEG copy patient/study attributes from, and reference, the CT instances the
analysis read. :func:`read_source_headers` reads their headers (no pixels) in slice order.
File names come only from validated UIDs (:func:`safe_uid_name`), never from free-text tags.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from medmm.errors import ExportError
from medmm.privacy import PHI_KEYWORDS, register_phi
from medmm.types import AnalysisResult

__all__ = ["UID_RE", "read_source_headers", "safe_uid_name"]

UID_RE = re.compile(r"[0-9]+(\.[0-9]+)*")
"""A DICOM UID: dot-separated digit groups (PS3.5 §9.1)."""


def safe_uid_name(uid: str) -> str:
    """A file/folder name from a UID: the UID itself when valid, else a hash of it.

    Args:
        uid: Any string read from a DICOM header.

    Returns:
        ``uid`` when it is a valid UID of at most 64 characters; otherwise
        ``"series-"`` and 16 hex digits of its sha256 (never a path separator, dot-dot or NUL).
    """
    if UID_RE.fullmatch(uid) and len(uid) <= 64:
        return uid
    return "series-" + hashlib.sha256(uid.encode("utf-8", "replace")).hexdigest()[:16]


def read_source_headers(result: AnalysisResult, *, limit: int | None = None) -> list[Dataset]:
    """Headers of the CT instances the result was computed from, in slice order.

    Args:
        result: An analysis result whose ``series.source_files`` still exist.
        limit: Read only the first ``limit`` files (e.g. 1 for patient attributes).

    Returns:
        One dataset per source file (pixel data not read).

    Raises:
        ExportError: No source files are recorded, one is missing or unreadable, or its
            SeriesInstanceUID differs from the result's.
    """
    files = result.series.source_files
    uid = result.series.series_uid
    if not files:
        raise ExportError(
            "the result records no source DICOM files; SR and SEG must reference them",
            series_uid=uid,
            hint="Export DICOM objects from the same process that ran `analyze`, or keep the "
            "source folder where result.json says it is.",
        )
    out = []
    for path in files[:limit]:
        try:
            ds = pydicom.dcmread(Path(path), stop_before_pixels=True)
            register_phi(*(ds.get(k) for k in PHI_KEYWORDS))
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise ExportError(
                f"cannot read source instance: {exc}",
                path=Path(path),
                series_uid=uid,
                hint="The source series moved or changed since the analysis; re-run `medmm analyze`.",
            ) from exc
        if str(ds.get("SeriesInstanceUID", "")) != uid:
            raise ExportError(
                "source file belongs to another series than the result",
                path=Path(path),
                series_uid=uid,
                hint="The source folder changed since the analysis; re-run `medmm analyze`.",
            )
        out.append(ds)
    return out
