"""Batch analysis of DICOM archives: parallel, resumable, fault-isolated, on Dask if wanted.

Example:
    >>> from medmm.batch import BatchConfig, run_batch                     # doctest: +SKIP
    >>> s = run_batch(BatchConfig(roots=(Path("archive"),), out=Path("out"), workers=2, resume=True))  # doctest: +SKIP
    >>> s.exit_code, len(s.records)                                         # doctest: +SKIP

Modules: :mod:`~medmm.batch.jobs` (discovery, filters, reports), :mod:`~medmm.batch.work`
(one series in a worker), :mod:`~medmm.batch.local` (process pool with crash and timeout
handling), :mod:`~medmm.batch.dask_backend`, :mod:`~medmm.batch.manifest`,
:mod:`~medmm.batch.summary`, :mod:`~medmm.batch.runner`.
"""

from medmm.batch.jobs import SeriesFilter, SeriesJob, discover_jobs, read_reports_csv
from medmm.batch.runner import BatchConfig, BatchProgress, BatchSummary, run_batch
from medmm.batch.work import AnalysisOptions, SeriesOutcome, process_series

__all__ = [
    "AnalysisOptions",
    "BatchConfig",
    "BatchProgress",
    "BatchSummary",
    "SeriesFilter",
    "SeriesJob",
    "SeriesOutcome",
    "discover_jobs",
    "process_series",
    "read_reports_csv",
    "run_batch",
]
