"""What a batch will analyze: series found under the roots, filtered, matched with reports.

:func:`discover_jobs` scans every root (folders or DICOMDIRs, via :func:`medmm.io.scan`),
keeps the series that pass a :class:`SeriesFilter`, attaches report text (one file for
every series, or a ``reports.csv`` keyed by StudyInstanceUID or AccessionNumber) and
names each series' output folder from its validated UID. Files that are not part of an
image series are returned with their reasons, so the batch can list them.

Example:
    >>> found = discover_jobs(["archive/"], SeriesFilter(modality="CT", min_slices=20))   # doctest: +SKIP
    >>> [j.key for j in found.jobs]                                                      # doctest: +SKIP
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medmm.errors import InputError
from medmm.io import scan
from medmm.io.discovery import DicomSeries
from medmm.io.headers import SkippedFile
from medmm.report.sources import safe_uid_name

__all__ = ["Discovery", "SeriesFilter", "SeriesJob", "discover_jobs", "read_reports_csv"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeriesFilter:
    """Which image series a batch analyzes.

    Attributes:
        modality: Keep only this Modality (e.g. ``"CT"``); ``None`` keeps all.
        min_slices: Keep series with at least this many frames.
        series_description: Regular expression searched in SeriesDescription (case-insensitive).
    """

    modality: str | None = "CT"
    min_slices: int = 0
    series_description: str | None = None

    def reason_to_skip(self, series: DicomSeries) -> str | None:
        """Why ``series`` is filtered out, or ``None`` to keep it."""
        info = series.info
        if self.modality and info.modality.upper() != self.modality.upper():
            return f"modality {info.modality or '(none)'} is not {self.modality}"
        if series.n_frames < self.min_slices:
            return f"{series.n_frames} slices, fewer than --min-slices {self.min_slices}"
        if self.series_description and not re.search(self.series_description, info.series_description, re.I):
            return f"series description does not match {self.series_description!r}"
        return None


@dataclass(frozen=True)
class SeriesJob:
    """One series to analyze.

    Attributes:
        key: Output folder name (the validated SeriesInstanceUID, else ``series-<sha256>``).
        series: The series' headers (picklable; sent to the worker).
        report_text: The study's report text, if one was matched.
        index: Position in discovery order (summary and candidates.csv keep this order).
    """

    key: str
    series: DicomSeries
    report_text: str | None
    index: int


@dataclass
class Discovery:
    """Result of :func:`discover_jobs`.

    Attributes:
        jobs: Series to analyze, in discovery order.
        filtered: ``(series_uid, reason)`` of image series the filter left out.
        skipped_files: Files that are not part of an image series, with reasons.
        duplicates: ``(series_uid, root)`` of series met again under another root (analyzed once).
    """

    jobs: list[SeriesJob] = field(default_factory=list)
    filtered: list[tuple[str, str]] = field(default_factory=list)
    skipped_files: list[SkippedFile] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)


def read_reports_csv(path: Path) -> dict[str, str]:
    """``reports.csv`` -> ``{StudyInstanceUID or AccessionNumber: text}``.

    The file needs a ``text`` column and a ``StudyInstanceUID`` and/or ``AccessionNumber``
    column (header names are case-insensitive).

    Raises:
        InputError: Unreadable, or the columns are missing.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = {f.lower(): f for f in reader.fieldnames or ()}
            keys = [fields[k] for k in ("studyinstanceuid", "accessionnumber") if k in fields]
            if "text" not in fields or not keys:
                raise InputError(
                    f"columns {sorted(fields.values())} lack 'text' and a StudyInstanceUID/AccessionNumber column",
                    path=path,
                    hint="Write a CSV with header StudyInstanceUID,text (or AccessionNumber,text).",
                )
            out: dict[str, str] = {}
            for row in reader:
                for key in keys:
                    value = (row.get(key) or "").strip()
                    if value:
                        out[value] = row[fields["text"]] or ""
            return out
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read reports CSV: {exc}", path=path) from exc


def discover_jobs(
    roots: Sequence[str | Path],
    series_filter: SeriesFilter | None = None,
    *,
    report_text: str | None = None,
    reports: dict[str, str] | None = None,
) -> Discovery:
    """Find and filter the series under ``roots`` and match their reports.

    Args:
        roots: Folders, DICOMDIR files or single files.
        series_filter: Which series to keep (default: CT only).
        report_text: One report for every series (a single study).
        reports: ``{StudyInstanceUID or AccessionNumber: text}`` (from :func:`read_reports_csv`).

    Returns:
        Jobs in discovery order plus what was left out and why.

    Raises:
        InputError: A root does not exist.
    """
    series_filter = series_filter or SeriesFilter()
    found = Discovery()
    seen: set[str] = set()
    for root in roots:
        result = scan(root)
        found.skipped_files.extend(result.skipped)
        for series in result.series:
            uid = series.series_uid
            reason = series_filter.reason_to_skip(series)
            if reason is not None:
                found.filtered.append((uid, reason))
                continue
            key = safe_uid_name(uid)
            if key in seen:
                found.duplicates.append((uid, str(root)))
                logger.warning("series %s appears under more than one root; analyzed once", uid)
                continue
            seen.add(key)
            text = report_text
            if reports:
                text = reports.get(series.info.study_uid) or reports.get(series.info.accession_number) or text
            found.jobs.append(SeriesJob(key, series, text, len(found.jobs)))
    return found
