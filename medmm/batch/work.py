"""Analyze one series inside a worker: load, analyze, export to a temp folder, rename.

:func:`process_series` never raises for a bad series: it returns a :class:`SeriesOutcome`
whose ``status`` is ``"failed"`` with the error's type, message and file. Outputs go to
``OUT/.tmp-<key>-<random>/``; ``outputs.sha256`` is written last, and the folder is renamed
to ``OUT/<key>/`` only then, so a killed run never leaves a result that looks complete, and
a folder holding a valid ``outputs.sha256`` is a finished series even if the manifest line
was lost with the process.

Models load once per worker process (:func:`worker_detector`); the local pool and the Dask
plugin both call :func:`warm_up` when a worker starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medmm import __version__
from medmm.batch.jobs import SeriesJob
from medmm.errors import MedmmError

if TYPE_CHECKING:
    from medmm.detect.detector import NoduleDetector
    from medmm.reason.ontology import Ontology
    from medmm.report.deidentify import Deidentifier

__all__ = [
    "CHECKSUM_FILE",
    "AnalysisOptions",
    "SeriesOutcome",
    "file_checksums",
    "process_series",
    "read_checksum_file",
    "warm_up",
    "worker_deidentifier",
    "worker_detector",
    "worker_ontology",
    "write_checksum_file",
]

_DETECTORS: dict[tuple[Any, ...], NoduleDetector] = {}
_ONTOLOGIES: dict[tuple[str, ...], Ontology] = {}
_DEIDENTIFIERS: dict[str, Deidentifier] = {}


@dataclass(frozen=True)
class AnalysisOptions:
    """What every worker needs to analyze a series the same way (picklable).

    Attributes:
        detect: Run nodule detection.
        reason: Run the reasoning stage (differential) after detection.
        weights: Detector weights (``None``: the shipped ones; several: an ensemble).
        tta: Flip test-time augmentation.
        int8: INT8 CNN.
        threshold: Nodule probability threshold.
        formats: Export formats (names of :class:`medmm.report.ExportFormat`).
        seg_lobes: Lobes in the SEG too.
        max_voxels: Refuse larger series before reading pixels (``None``: ``$MEDMM_MAX_VOXELS`` or 10**9).
        ontology: Extension Turtle files merged with the shipped ontology.
        deidentify_key: De-identify every export with this key (``--deidentify``; see
            :mod:`medmm.report.deidentify`); ``None`` keeps the identifiers.
        log_phi: Let identifiers into worker logs (``--log-phi``); off by default.
    """

    detect: bool = True
    reason: bool = True
    weights: str | tuple[str, ...] | None = None
    tta: bool = False
    int8: bool = False
    threshold: float = 0.5
    formats: tuple[str, ...] = ("json", "seg", "sr", "fhir", "html", "nifti")
    seg_lobes: bool = False
    max_voxels: int | None = None
    ontology: tuple[str, ...] = ()
    deidentify_key: str | None = None
    log_phi: bool = False


@dataclass
class SeriesOutcome:
    """What happened to one series (one line of ``manifest.jsonl``).

    Attributes:
        key: Output folder name.
        series_uid: SeriesInstanceUID as read.
        study_uid: StudyInstanceUID.
        status: ``"ok"`` or ``"failed"``.
        error: ``{"type", "message", "file"}`` when failed.
        timings_s: Seconds per step (``load``, ``analyze``, ``export``, ``total``).
        nodules: Number of nodules (``None`` when detection did not run or the series failed).
        largest_mm: Diameter of the largest nodule.
        largest_lobe: Its lobe.
        lung_rads: Study Lung-RADS category, when the guidelines stage ran.
        top_differential: Most probable diagnosis and its probability, when the reasoning stage ran.
        files: Output file name -> sha256.
        versions: medmm version and detector sha256.
        worker: Process id (or Dask worker address) that ran it.
        peak_rss_mb: The worker process's peak resident memory so far (MB).
    """

    key: str
    series_uid: str
    study_uid: str
    status: str
    error: dict[str, str] | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    nodules: int | None = None
    largest_mm: float | None = None
    largest_lobe: str = ""
    lung_rads: str = ""
    top_differential: str = ""
    files: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    worker: str = ""
    peak_rss_mb: float | None = None


def _peak_rss_mb() -> float | None:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    except (ImportError, OSError):
        return None


def worker_detector(options: AnalysisOptions) -> NoduleDetector | None:
    """The detector for these options, loaded once per process."""
    if not options.detect:
        return None
    key = (options.weights, options.tta, options.int8)
    if key not in _DETECTORS:
        from medmm.detect.detector import NoduleDetector

        _DETECTORS[key] = NoduleDetector(options.weights, tta=options.tta, quantize=options.int8)
    return _DETECTORS[key]


def worker_ontology(options: AnalysisOptions) -> Ontology | None:
    """The merged ontology for these options (None: the shipped one), loaded once per process."""
    if not options.ontology:
        return None
    if options.ontology not in _ONTOLOGIES:
        from medmm.reason.ontology import load_ontology

        _ONTOLOGIES[options.ontology] = load_ontology(extra=options.ontology)
    return _ONTOLOGIES[options.ontology]


def worker_deidentifier(options: AnalysisOptions) -> Deidentifier | None:
    """The de-identifier for these options (None: exports keep identifiers), built once per process."""
    if not options.deidentify_key:
        return None
    if options.deidentify_key not in _DEIDENTIFIERS:
        from medmm.report.deidentify import Deidentifier

        _DEIDENTIFIERS[options.deidentify_key] = Deidentifier(options.deidentify_key)
    return _DEIDENTIFIERS[options.deidentify_key]


def warm_up(options: AnalysisOptions) -> None:
    """Import the pipeline, filter PHI from logs, load the models (called when a worker starts)."""
    from medmm.privacy import install_log_privacy

    install_log_privacy(log_phi=options.log_phi)
    import medmm.pipeline
    import medmm.report.export  # noqa: F401

    worker_detector(options)


def file_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every output file in ``folder`` (not recursive, ``outputs.sha256`` excluded), by name."""
    out = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name != CHECKSUM_FILE:
            h = hashlib.sha256()
            with path.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(block)
            out[path.name] = h.hexdigest()
    return out


CHECKSUM_FILE = "outputs.sha256"
"""Written last into each series folder (``sha256sum -c`` format): the folder is complete."""


def write_checksum_file(folder: Path, checksums: dict[str, str]) -> None:
    """Write ``outputs.sha256`` listing every output file's sha256."""
    from medmm.io.atomic import atomic_path

    with atomic_path(folder / CHECKSUM_FILE) as tmp:
        tmp.write_text("".join(f"{digest}  {name}\n" for name, digest in checksums.items()), encoding="utf-8")


def read_checksum_file(folder: Path) -> dict[str, str] | None:
    """The checksums a finished folder lists, or ``None`` when it has none (or a torn one)."""
    path = folder / CHECKSUM_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return {name: digest for digest, name in (line.split("  ", 1) for line in lines)}
    except (OSError, ValueError):
        return None


def _check_voxels(job: SeriesJob, max_voxels: int | None) -> None:
    from medmm.io.limits import check_voxels, default_max_voxels

    series = job.series
    n = sum(len(inst.frames) * int(inst.layout.rows) * int(inst.layout.columns) for inst in series.instances)
    check_voxels(n, default_max_voxels() if max_voxels is None else max_voxels, what=f"series {series.series_uid}")


def _promote(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` with renames only (the old result stays until the new one is in)."""
    old = None
    if final.is_symlink():  # planted link: remove the link itself, never what it points to
        final.unlink()
    elif final.exists():
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def process_series(job: SeriesJob, options: AnalysisOptions, out_root: Path) -> SeriesOutcome:
    """Analyze and export one series; a bad series gives a failed outcome, never an exception.

    Args:
        job: The series.
        options: Analysis and export options.
        out_root: The batch output folder (the series lands in ``out_root / job.key``).

    Returns:
        The outcome, with timings, output checksums and versions.
    """
    from medmm.io import load_series
    from medmm.io.atomic import ensure_inside
    from medmm.pipeline import analyze
    from medmm.report import export_result

    deid = worker_deidentifier(options)
    info = deid.series_info(job.series.info) if deid is not None else job.series.info
    outcome = SeriesOutcome(job.key, info.series_uid, info.study_uid, "failed", worker=f"pid {os.getpid()}")
    outcome.versions["medmm"] = __version__
    t0 = time.perf_counter()
    tmp = out_root / f".tmp-{job.key}-{uuid.uuid4().hex[:8]}"
    try:
        ensure_inside(out_root, out_root / job.key)
        _check_voxels(job, options.max_voxels)
        volume = load_series(job.series, max_voxels=options.max_voxels)
        t1 = time.perf_counter()
        detector = worker_detector(options)
        result = analyze(
            volume,
            report_text=job.report_text,
            detector=detector,
            detect=options.detect,
            nodule_threshold=options.threshold,
            reason=options.reason,
            ontology=worker_ontology(options),
        )
        t2 = time.perf_counter()
        report = export_result(
            result, tmp, volume=volume, formats=options.formats, seg_lobes=options.seg_lobes, deidentifier=deid
        )
        t3 = time.perf_counter()
        outcome.timings_s = {"load": t1 - t0, "analyze": t2 - t1, "export": t3 - t2}
        if result.detector:
            outcome.versions["detector_sha256"] = result.detector.get("sha256", "")
        if result.nodules is not None:
            outcome.nodules = len(result.nodules)
            big = max(result.nodules, key=lambda n: n.diameter_mm, default=None)
            if big is not None:
                outcome.largest_mm, outcome.largest_lobe = big.diameter_mm, big.lobe
        if result.guidelines is not None:
            outcome.lung_rads = result.guidelines.lung_rads
        if result.differential is not None:
            top = result.differential.diagnoses[0]
            outcome.top_differential = f"{top.label} ({100 * top.probability:.0f} %)"
        outcome.files = file_checksums(tmp)
        write_checksum_file(tmp, outcome.files)
        _promote(tmp, out_root / job.key)
        if report.failed:
            failed = "; ".join(f"{f.value}: {why}" for f, why in report.failed.items())
            outcome.error = {"type": "ExportError", "message": failed, "file": ""}
        else:
            outcome.status = "ok"
    except MedmmError as exc:
        outcome.error = {"type": type(exc).__name__, "message": exc.message, "file": str(exc.path or "")}
    except MemoryError:
        outcome.error = {"type": "MemoryError", "message": "out of memory while analyzing this series", "file": ""}
    except Exception as exc:  # isolate the batch from a bug in one series
        last = traceback.extract_tb(exc.__traceback__)[-1]
        outcome.error = {
            "type": type(exc).__name__,
            "message": f"internal error: {exc} (at {Path(last.filename).name}:{last.lineno}); please report it",
            "file": "",
        }
    finally:
        with contextlib.suppress(OSError):
            if tmp.exists():
                shutil.rmtree(tmp)
    outcome.timings_s["total"] = time.perf_counter() - t0
    outcome.peak_rss_mb = _peak_rss_mb()
    return outcome
