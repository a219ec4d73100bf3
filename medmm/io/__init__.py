"""Reading and writing medical images and reference annotations.

Public surface:

* :func:`scan` / :func:`load_series` -- DICOM discovery and loading (:class:`DicomSeries`,
  :class:`ScanResult`, :class:`SkippedFile`, :class:`SkipReason`, :class:`GeometryPolicy`).
"""

from medmm.io.discovery import DicomSeries, ScanResult, scan
from medmm.io.headers import InstanceHeader, SkippedFile, SkipReason, inspect_file
from medmm.io.series_loader import load_series
from medmm.io.slice_geometry import GeometryPolicy

__all__ = [
    "DicomSeries",
    "GeometryPolicy",
    "InstanceHeader",
    "ScanResult",
    "SkipReason",
    "SkippedFile",
    "inspect_file",
    "load_series",
    "scan",
]
