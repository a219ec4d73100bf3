"""Reading and writing medical images and reference annotations.

Public surface:

* DICOM: :func:`scan` (discovery, headers only) and :func:`load_series` (one series ->
  :class:`~medmm.types.Volume`), with :class:`DicomSeries`, :class:`ScanResult`,
  :class:`SkippedFile`, :class:`SkipReason`, :class:`GeometryPolicy`.
* NIfTI: :func:`read_nifti`, :func:`write_nifti`.
* Reference annotations: :func:`read_luna16_csv`, :func:`read_lidc_xml`,
  :func:`lidc_consensus`.
"""

from medmm.io.discovery import DicomSeries, ScanResult, scan
from medmm.io.headers import InstanceHeader, SkippedFile, SkipReason, inspect_file
from medmm.io.lidc import LidcNodule, ReaderMark, lidc_consensus, read_lidc_xml
from medmm.io.luna16 import read_luna16_csv
from medmm.io.nifti import read_nifti, write_nifti
from medmm.io.series_loader import load_series
from medmm.io.slice_geometry import GeometryPolicy

__all__ = [
    "DicomSeries",
    "GeometryPolicy",
    "InstanceHeader",
    "LidcNodule",
    "ReaderMark",
    "ScanResult",
    "SkipReason",
    "SkippedFile",
    "inspect_file",
    "lidc_consensus",
    "load_series",
    "read_lidc_xml",
    "read_luna16_csv",
    "read_nifti",
    "scan",
    "write_nifti",
]
