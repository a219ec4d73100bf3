"""Find the image series in a folder tree or DICOMDIR.

Example:
    >>> from medmm.io import scan, load_series
    >>> result = scan("sample_dicom/")                       # doctest: +SKIP
    >>> volume = load_series(result.series[0])               # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.fileset import FileSet

from medmm.errors import InputError
from medmm.io.headers import InstanceHeader, SkippedFile, SkipReason, inspect_file
from medmm.parallel import ProgressCallback, process_map
from medmm.types import SeriesInfo

__all__ = ["DicomSeries", "ScanResult", "scan"]

logger = logging.getLogger(__name__)

_PROCESS_POOL_MIN_FILES = 2000


@dataclass(frozen=True)
class DicomSeries:
    """The instances of one SeriesInstanceUID, as found by :func:`scan` (headers only).

    Attributes:
        info: Series metadata (source files in path order; slice order is set on load).
        instances: Instance headers, sorted by path.
    """

    info: SeriesInfo
    instances: tuple[InstanceHeader, ...]

    @property
    def series_uid(self) -> str:
        """SeriesInstanceUID."""
        return self.info.series_uid

    @property
    def n_frames(self) -> int:
        """Total frames (slices) over all instances."""
        return sum(len(inst.frames) for inst in self.instances)


@dataclass(frozen=True)
class ScanResult:
    """What a scan found.

    Attributes:
        series: Image series, ordered by (study, series number, UID).
        skipped: Every file not used, each with its reason.
    """

    series: tuple[DicomSeries, ...]
    skipped: tuple[SkippedFile, ...]

    def get(self, series_uid: str) -> DicomSeries:
        """Return the series with this UID.

        Raises:
            InputError: No series with that UID was found.
        """
        for s in self.series:
            if s.series_uid == series_uid:
                return s
        found = ", ".join(s.series_uid for s in self.series) or "none"
        raise InputError(
            f"series {series_uid} not found (found: {found})",
            hint="Run `medmm info PATH` to list the series in the folder.",
        )


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _dicomdir_files(path: Path) -> list[Path]:
    """Referenced image files of a DICOMDIR, resolved against its folder."""
    try:
        fs = FileSet(dcmread(path))
    except Exception as exc:
        raise InputError(
            f"cannot read DICOMDIR: {exc}", path=path, hint="Scan the folder that holds the DICOMDIR instead."
        ) from exc
    files = []
    for instance in fs:
        try:
            files.append(Path(instance.path))
        except Exception:
            logger.warning("DICOMDIR record without a usable file path in %s", path)
    return files


def _series_info(instances: list[InstanceHeader]) -> SeriesInfo:
    first = instances[0]
    attrs = first.series_attributes
    return SeriesInfo(
        series_uid=first.series_uid,
        study_uid=first.study_uid,
        frame_of_reference_uid=first.frame_of_reference_uid,
        modality=first.modality,
        sop_class_uid=first.sop_class_uid,
        manufacturer=attrs["manufacturer"],
        manufacturer_model=attrs["manufacturer_model"],
        convolution_kernel=attrs["convolution_kernel"],
        slice_thickness_mm=attrs["slice_thickness_mm"],
        series_description=attrs["series_description"],
        series_number=attrs["series_number"],
        patient_age_years=attrs["patient_age_years"],
        patient_sex=attrs["patient_sex"],
        accession_number=attrs.get("accession_number", ""),
        source_files=tuple(inst.path for inst in instances),
    )


def group_instances(
    headers: Iterable[InstanceHeader | SkippedFile],
) -> ScanResult:
    """Group inspected files into series, dropping duplicate instances.

    Args:
        headers: Results of :func:`medmm.io.headers.inspect_file`.
    """
    by_series: dict[str, list[InstanceHeader]] = {}
    skipped: list[SkippedFile] = []
    seen_sop: dict[str, Path] = {}
    for item in headers:
        if isinstance(item, SkippedFile):
            skipped.append(item)
            continue
        earlier = seen_sop.get(item.sop_instance_uid)
        if earlier is not None:
            skipped.append(SkippedFile(item.path, SkipReason.DUPLICATE, f"same SOPInstanceUID as {earlier}"))
            continue
        seen_sop[item.sop_instance_uid] = item.path
        by_series.setdefault(item.series_uid, []).append(item)
    series = []
    for instances in by_series.values():
        instances.sort(key=lambda h: str(h.path))
        series.append(DicomSeries(_series_info(instances), tuple(instances)))
    series.sort(key=lambda s: (s.info.study_uid, s.info.series_number or 0, s.series_uid))
    skipped.sort(key=lambda s: str(s.path))
    return ScanResult(tuple(series), tuple(skipped))


def scan(
    path: str | os.PathLike[str],
    *,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> ScanResult:
    """Find image series under a folder, a DICOMDIR, or a single file.

    Reads headers only. Files that cannot be part of an image series are reported in
    ``ScanResult.skipped`` with a reason (not DICOM, empty, truncated, no pixel data,
    SR/SEG/RT object, duplicate instance...). Nothing is skipped silently.

    Args:
        path: A folder (walked recursively), a DICOMDIR file, or one DICOM file.
        workers: Processes used to read headers (default: 1 below 2,000 files, else up to 8).
        progress: Called as ``progress(done, total)`` while reading headers.

    Returns:
        The series found and the files skipped.

    Raises:
        InputError: ``path`` does not exist.
    """
    root = Path(path)
    if not root.exists():
        raise InputError("path does not exist", path=root, hint="Check the spelling of the path.")
    if root.is_dir():
        files = list(_walk(root))
    elif root.name.upper() == "DICOMDIR":
        files = _dicomdir_files(root)
        logger.info("DICOMDIR %s references %d files", root, len(files))
    else:
        files = [root]
    # Header parsing is pure Python (GIL-bound): threads only add contention, so small
    # folders are read in-process and large archives use worker processes.
    n_workers = (
        workers if workers is not None else (1 if len(files) < _PROCESS_POOL_MIN_FILES else min(8, os.cpu_count() or 1))
    )
    total = len(files)
    results = process_map(inspect_file, files, workers=n_workers, chunksize=64, progress=progress)
    result = group_instances(results)
    logger.info("scanned %s: %d files, %d series, %d skipped", root, total, len(result.series), len(result.skipped))
    return result
