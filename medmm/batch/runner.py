"""Run a batch: discover, skip what is done, analyze the rest on a backend, summarize.

:func:`run_batch` is what ``medmm analyze`` calls for any number of series:

1. remove temp folders a killed run left behind (``OUT/.tmp-*``: never a finished result);
2. discover the series (:func:`~medmm.batch.jobs.discover_jobs`);
3. with ``resume``, skip series whose manifest line says ``ok`` and whose files are unchanged
   (or whose folder holds a valid ``outputs.sha256`` though its manifest line was lost);
4. analyze the rest on the local process pool or on Dask, appending each outcome to the
   manifest as it arrives (a bad series is recorded, and the batch goes on);
5. rebuild ``summary.csv``, ``index.html``, ``candidates.csv`` and ``skipped_files.csv``.

Example:
    >>> summary = run_batch(BatchConfig(roots=(Path("archive"),), out=Path("out"), workers=2))  # doctest: +SKIP
    >>> summary.exit_code                                                                      # doctest: +SKIP
    0
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medmm.batch.jobs import Discovery, SeriesFilter, discover_jobs, read_reports_csv
from medmm.batch.manifest import MANIFEST_NAME, Manifest, read_manifest, recover_record, still_complete
from medmm.batch.summary import write_candidates_csv, write_index_html, write_skipped_csv, write_summary_csv
from medmm.batch.work import AnalysisOptions, SeriesOutcome, worker_deidentifier
from medmm.report.sources import safe_uid_name

__all__ = ["BatchConfig", "BatchProgress", "BatchSummary", "run_batch"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchConfig:
    """Everything a batch run needs.

    Attributes:
        roots: Folders, DICOMDIRs or files to search.
        out: Output folder.
        options: Analysis and export options (sent to every worker).
        series_filter: Which series to analyze.
        report_text: One report for every series.
        reports_csv: ``reports.csv`` mapping StudyInstanceUID/AccessionNumber to text.
        workers: Local worker processes (default: the machine's cores).
        scheduler: Dask scheduler address; use Dask instead of the local pool.
        dask_local: Start a Dask ``LocalCluster`` with this many workers.
        timeout_s: Per-series time limit.
        resume: Skip series finished by an earlier run into ``out``.
    """

    roots: tuple[Path, ...]
    out: Path
    options: AnalysisOptions = field(default_factory=AnalysisOptions)
    series_filter: SeriesFilter = field(default_factory=SeriesFilter)
    report_text: str | None = None
    reports_csv: Path | None = None
    workers: int | None = None
    scheduler: str | None = None
    dask_local: int | None = None
    timeout_s: float | None = None
    resume: bool = False


@dataclass(frozen=True)
class BatchProgress:
    """Passed to the progress callback after every series.

    Attributes:
        done: Series finished (ok or failed) in this run.
        total: Series to analyze in this run.
        outcome: The series just finished.
        elapsed_s: Seconds since the first series was sent.
    """

    done: int
    total: int
    outcome: SeriesOutcome
    elapsed_s: float

    @property
    def per_minute(self) -> float:
        """Throughput so far."""
        return 60.0 * self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float:
        """Estimated seconds left at the throughput so far."""
        return (self.total - self.done) * self.elapsed_s / self.done if self.done else float("nan")


@dataclass
class BatchSummary:
    """What a batch run did.

    Attributes:
        out: Output folder.
        records: Manifest record per discovered series, in discovery order.
        resumed: Series skipped because an earlier run finished them.
        discovery: What discovery found and left out.
        elapsed_s: Wall time of the analysis phase.
    """

    out: Path
    records: list[dict[str, Any]]
    resumed: int
    discovery: Discovery
    elapsed_s: float

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Records of series that failed."""
        return [r for r in self.records if r.get("status") != "ok"]

    @property
    def exit_code(self) -> int:
        """0 when every series succeeded, 1 when some failed (2, usage errors, is the CLI's)."""
        return 1 if self.failed else 0


def _clean_leftovers(out: Path) -> None:
    """Remove temp and superseded folders a killed run left (never a finished result)."""
    for path in out.glob(".tmp-*"):
        if path.is_dir():
            logger.info("removing %s left by an interrupted run", path.name)
            shutil.rmtree(path, ignore_errors=True)
    for path in out.glob(".old-*"):
        shutil.rmtree(path, ignore_errors=True)


def run_batch(config: BatchConfig, progress: Callable[[BatchProgress], None] | None = None) -> BatchSummary:
    """Analyze every matching series under ``config.roots`` into ``config.out``.

    Args:
        config: The run.
        progress: Called after each series (the CLI draws a bar from it).

    Returns:
        The summary; ``exit_code`` is 0 only if every series succeeded.

    Raises:
        InputError: A root or the reports CSV cannot be read, or no image series was found.
    """
    from medmm.errors import InputError

    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(out)
    reports = read_reports_csv(config.reports_csv) if config.reports_csv else None
    discovery = discover_jobs(config.roots, config.series_filter, report_text=config.report_text, reports=reports)
    from medmm.privacy import register_report_text

    for text in {job.report_text for job in discovery.jobs if job.report_text}:
        register_report_text(text)  # never shown in this process's logs either
    deid = worker_deidentifier(config.options)
    if deid is not None:  # output folders are named by the pseudonym UIDs
        discovery.jobs = [
            dataclasses.replace(j, key=safe_uid_name(deid.uid(j.series.series_uid))) for j in discovery.jobs
        ]
    if not discovery.jobs and not discovery.filtered:
        raise InputError(
            f"no image series under {', '.join(str(r) for r in config.roots)} "
            f"({len(discovery.skipped_files)} file(s) skipped)",
            hint="Run `medmm info PATH` to see why each file was skipped.",
        )
    manifest_path = out / MANIFEST_NAME
    previous = read_manifest(manifest_path) if config.resume else {}
    done = {k for k, rec in previous.items() if still_complete(rec, out)}
    recovered = []
    if config.resume:
        for job in discovery.jobs:
            if job.key not in done and (rec := recover_record(job.key, out)) is not None:
                recovered.append(rec)
                done.add(job.key)
    todo = [j for j in discovery.jobs if j.key not in done]
    resumed = len(discovery.jobs) - len(todo)
    if resumed:
        logger.info("resume: %d series already finished, %d to analyze", resumed, len(todo))
    start = time.monotonic()
    with Manifest(manifest_path, append=config.resume) as manifest:
        for rec in recovered:
            logger.info("series %s: finished folder found without its manifest line; recorded", rec["series_uid"])
            manifest.write(rec)
        if todo:
            if config.scheduler or config.dask_local:
                from medmm.batch.dask_backend import run_dask

                outcomes = run_dask(
                    todo,
                    config.options,
                    out,
                    scheduler=config.scheduler,
                    local_workers=config.dask_local,
                    timeout_s=config.timeout_s,
                )
            else:
                from medmm.batch.local import run_local

                outcomes = run_local(
                    todo, config.options, out, workers=config.workers or os.cpu_count() or 1, timeout_s=config.timeout_s
                )
            for n, outcome in enumerate(outcomes, 1):
                manifest.write(outcome)
                if outcome.status != "ok":
                    logger.warning("series %s failed: %s", outcome.series_uid, (outcome.error or {}).get("message"))
                if progress is not None:
                    progress(BatchProgress(n, len(todo), outcome, time.monotonic() - start))
    elapsed = time.monotonic() - start
    final = read_manifest(manifest_path)
    records = [final[j.key] for j in discovery.jobs if j.key in final]
    write_summary_csv(out / "summary.csv", records)
    write_index_html(out / "index.html", records)
    write_skipped_csv(out / "skipped_files.csv", discovery.skipped_files, discovery.filtered)
    if config.options.detect:
        write_candidates_csv(out / "candidates.csv", out, records)
    return BatchSummary(out, records, resumed, discovery, elapsed)
