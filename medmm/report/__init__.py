"""Structured exports of an analysis result.

JSON (+ JSON Schema), DICOM SR TID 1500, DICOM SEG, FHIR R4, a self-contained HTML report
and NIfTI label maps.

Every exporter shows what the result holds and nothing more: a stage that did not run is
absent from every format. One call writes them all:

Example:
    >>> from medmm.report import export_result, series_folder         # doctest: +SKIP
    >>> rep = export_result(result, series_folder(out, result), volume=volume)   # doctest: +SKIP
    >>> sorted(f.value for f in rep.written)                          # doctest: +SKIP
    ['fhir', 'html', 'json', 'nifti', 'seg', 'sr']

Modules (one object kind each): :mod:`~medmm.report.json_result`, :mod:`~medmm.report.sr`,
:mod:`~medmm.report.seg`, :mod:`~medmm.report.fhir`, :mod:`~medmm.report.html`
(+ :mod:`~medmm.report.key_images`), :mod:`~medmm.report.nifti_maps`; shared:
:mod:`~medmm.report.codes`, :mod:`~medmm.report.identity`, :mod:`~medmm.report.sources`;
reading back: :mod:`~medmm.report.read_back`.
"""

from medmm.report.export import ALL_FORMATS, ExportFormat, ExportReport, export_result, parse_formats, series_folder
from medmm.report.json_result import load_result, validate_result, write_result_json
from medmm.report.sources import safe_uid_name

__all__ = [
    "ALL_FORMATS",
    "ExportFormat",
    "ExportReport",
    "export_result",
    "load_result",
    "parse_formats",
    "safe_uid_name",
    "series_folder",
    "validate_result",
    "write_result_json",
]
