"""Write every export of one analysis result into one folder.

:func:`export_result` writes the formats asked for (default: all) with fixed file names --
never names taken from DICOM tags -- each atomically, and goes on past a format that
fails, reporting it in :class:`ExportReport`:

=========  ============================================================
``json``   ``result.json`` (validated against the JSON Schema)
``seg``    ``seg.dcm`` -- DICOM SEG, one segment per nodule (lobes optional)
``sr``     ``sr.dcm`` -- DICOM Comprehensive 3D SR, TID 1500
``fhir``   ``fhir.json`` -- FHIR R4 Bundle
``html``   ``report.html`` -- self-contained, with key images
``nifti``  ``ct.nii.gz``, ``lungs.nii.gz``, ``lobes.nii.gz``, ``nodules.nii.gz``, ``labels.txt``
=========  ============================================================

:func:`series_folder` names a series' folder from its validated UID.

Example:
    >>> result = analyze(volume)                                       # doctest: +SKIP
    >>> report = export_result(result, series_folder(Path("out"), result), volume=volume)  # doctest: +SKIP
    >>> report.written[ExportFormat.SR]                                # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from medmm.errors import ExportError, MedmmError
from medmm.io.atomic import atomic_path
from medmm.report.sources import UID_RE, read_source_headers, safe_uid_name
from medmm.types import AnalysisResult, Volume

if TYPE_CHECKING:
    from medmm.report.deidentify import Deidentifier

__all__ = [
    "ALL_FORMATS",
    "ExportFormat",
    "ExportReport",
    "check_reference_uids",
    "export_result",
    "parse_formats",
    "series_folder",
]

logger = logging.getLogger(__name__)


class ExportFormat(StrEnum):
    """Export formats (file names in the module docstring)."""

    JSON = "json"
    SEG = "seg"
    SR = "sr"
    FHIR = "fhir"
    HTML = "html"
    NIFTI = "nifti"


ALL_FORMATS: tuple[ExportFormat, ...] = tuple(ExportFormat)


def parse_formats(text: str | Iterable[str]) -> tuple[ExportFormat, ...]:
    """``"sr,seg"`` / ``["sr", "seg"]`` / ``"all"`` -> formats, in canonical order.

    Raises:
        ValueError: An unknown name (the message lists the valid ones).
    """
    names = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if "all" in names:
        return ALL_FORMATS
    valid = {f.value for f in ExportFormat}
    bad = [n for n in names if n not in valid]
    if bad:
        raise ValueError(f"unknown export format(s) {', '.join(bad)}; choose from {', '.join(sorted(valid))} or all")
    return tuple(f for f in ExportFormat if f.value in names)


@dataclass
class ExportReport:
    """What :func:`export_result` wrote and what failed.

    Attributes:
        folder: The output folder.
        written: Files per format.
        failed: Error message per format that could not be written.
        skipped: Reason per format left out on purpose (e.g. no nodules for SEG).
    """

    folder: Path
    written: dict[ExportFormat, list[Path]] = field(default_factory=dict)
    failed: dict[ExportFormat, str] = field(default_factory=dict)
    skipped: dict[ExportFormat, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No format failed."""
        return not self.failed


def series_folder(out_root: Path, result: AnalysisResult) -> Path:
    """``out_root / <SeriesInstanceUID>`` (or a hash when the UID is not a valid UID).

    Raises:
        ExportError: The folder would fall outside ``out_root`` (cannot happen for a valid
            name; checked anyway).
    """
    folder = out_root / safe_uid_name(result.series.series_uid)
    root = out_root.resolve()
    if folder.resolve().parent != root:
        raise ExportError("output folder escapes the output root", path=folder, series_uid=result.series.series_uid)
    return folder


def check_reference_uids(result: AnalysisResult) -> None:
    """Refuse to reference a source whose UIDs are not valid DICOM UIDs (SR, SEG and FHIR do).

    Raises:
        ExportError: Naming the attribute and its (truncated) value.
    """
    s = result.series
    for name, value in (
        ("SeriesInstanceUID", s.series_uid),
        ("StudyInstanceUID", s.study_uid),
        ("FrameOfReferenceUID", s.frame_of_reference_uid),
    ):
        if not (UID_RE.fullmatch(value) and len(value) <= 64):
            raise ExportError(
                f"source {name} {value[:40]!r} is not a valid DICOM UID; DICOM SR/SEG and FHIR must reference it",
                series_uid=s.series_uid[:64],
                hint="Fix the source headers (e.g. with dcmodify); result.json, HTML and NIfTI were still written.",
            )


def _save_dicom(dataset: object, path: Path) -> None:
    with atomic_path(path) as tmp:
        dataset.save_as(tmp, enforce_file_format=True)  # type: ignore[attr-defined]


def export_result(
    result: AnalysisResult,
    folder: Path,
    *,
    volume: Volume | None = None,
    formats: Iterable[ExportFormat | str] = ALL_FORMATS,
    seg_lobes: bool = False,
    deidentifier: Deidentifier | None = None,
    issued: str | None = None,
) -> ExportReport:
    """Write the chosen formats of one result into ``folder`` (created if needed).

    Args:
        result: The analysis result (with ``maps`` for SEG, NIfTI labels and outlines).
        folder: Output folder for this series (see :func:`series_folder`).
        volume: The analyzed CT (needed for SEG, NIfTI and the HTML images).
        formats: Formats to write (default: all).
        seg_lobes: Add the five lobes to the SEG.
        deidentifier: Write every format de-identified (PS3.15 Annex E; see
            :mod:`medmm.report.deidentify`); the source headers are read, then de-identified.
        issued: FHIR ``DiagnosticReport.issued`` timestamp (ISO 8601), if wanted.

    Returns:
        What was written, skipped and failed. A failing format does not stop the others.
    """
    chosen = [ExportFormat(f) for f in formats]
    folder.mkdir(parents=True, exist_ok=True)
    report = ExportReport(folder)
    source = result
    if deidentifier is not None:
        result = deidentifier.result(result)
    uid = result.series.series_uid
    headers = None
    seg = None

    def read_headers(limit: int | None = None) -> list:
        found = read_source_headers(source, limit=limit)
        return [deidentifier.dataset(h) for h in found] if deidentifier is not None else found

    def need_headers() -> list:
        nonlocal headers
        check_reference_uids(result)
        if headers is None:
            headers = read_headers()
        return headers

    def save_dicom(dataset: object, path: Path) -> None:
        if deidentifier is not None:
            deidentifier.mark(dataset)  # type: ignore[arg-type]
        _save_dicom(dataset, path)

    for fmt in ExportFormat:
        if fmt not in chosen:
            continue
        try:
            if fmt is ExportFormat.JSON:
                from medmm.report.json_result import write_result_json

                report.written[fmt] = [write_result_json(result, folder / "result.json")]
            elif fmt is ExportFormat.SEG:
                if volume is None or result.maps is None:
                    raise ExportError("DICOM SEG needs the analyzed volume and its label maps", series_uid=uid)
                from medmm.report.seg import build_seg

                seg = build_seg(result, volume.affine, need_headers(), include_lobes=seg_lobes)
                if seg is None:
                    report.skipped[fmt] = "no nodules to segment"
                else:
                    save_dicom(seg, folder / "seg.dcm")
                    report.written[fmt] = [folder / "seg.dcm"]
            elif fmt is ExportFormat.SR:
                if result.nodules is None:
                    report.skipped[fmt] = "detection did not run"
                    continue
                from medmm.report.sr import build_sr

                save_dicom(build_sr(result, need_headers(), seg=seg), folder / "sr.dcm")
                report.written[fmt] = [folder / "sr.dcm"]
            elif fmt is ExportFormat.FHIR:
                from medmm.report.fhir import build_fhir_bundle

                check_reference_uids(result)
                patient_id = None
                try:
                    first = headers[0] if headers else read_headers(limit=1)[0]
                    patient_id = str(first.get("PatientID", "")) or None
                except ExportError:
                    logger.info("series %s: source headers unavailable; FHIR Patient without identifier", uid)
                bundle = build_fhir_bundle(result, patient_id=patient_id, issued=issued)
                with atomic_path(folder / "fhir.json") as tmp:
                    tmp.write_text(json.dumps(json.loads(bundle.model_dump_json()), indent=2) + "\n", encoding="utf-8")
                report.written[fmt] = [folder / "fhir.json"]
            elif fmt is ExportFormat.HTML:
                from medmm.report.html import render_html

                with atomic_path(folder / "report.html") as tmp:
                    tmp.write_text(render_html(result, volume), encoding="utf-8")
                report.written[fmt] = [folder / "report.html"]
            elif fmt is ExportFormat.NIFTI:
                if volume is None:
                    raise ExportError("NIfTI export needs the analyzed volume", series_uid=uid)
                from medmm.report.nifti_maps import write_nifti_maps

                report.written[fmt] = write_nifti_maps(result, volume, folder)
        except MedmmError as exc:
            report.failed[fmt] = str(exc)
            logger.warning("series %s: %s export failed: %s", uid, fmt.value, exc)
        except Exception as exc:  # a bug in one writer must not lose the other formats
            report.failed[fmt] = f"internal error ({type(exc).__name__}: {exc}); please report it"
            logger.exception("series %s: %s export failed unexpectedly", uid, fmt.value)
    return report
