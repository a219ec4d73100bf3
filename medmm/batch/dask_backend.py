"""Dask distributed backend: the same :func:`~medmm.batch.work.process_series` on a cluster.

``--scheduler tcp://HOST:PORT`` connects to a running scheduler; ``--dask-local N`` starts a
``LocalCluster`` of N single-threaded worker processes. A worker plugin loads the models
when each worker starts (once per worker, as in the local pool). At most two series per
worker are in flight, so the scheduler never holds the whole archive. Workers must see the
same file system paths as the client (input series and output folder).

A task whose worker dies is retried by Dask on another worker up to its
``allowed-failures`` setting, then reported here as failed (``KilledWorker``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from medmm.batch.jobs import SeriesJob
from medmm.batch.work import AnalysisOptions, SeriesOutcome, process_series, warm_up
from medmm.errors import InputError

__all__ = ["ModelPlugin", "run_dask"]

logger = logging.getLogger(__name__)

try:  # optional dependency: only this backend needs it
    from distributed import WorkerPlugin
except ImportError:  # pragma: no cover - exercised only without dask installed
    WorkerPlugin = object  # type: ignore[assignment,misc]


class ModelPlugin(WorkerPlugin):  # type: ignore[misc]
    """Loads medmm's models when a Dask worker starts."""

    name = "medmm-models"

    def __init__(self, options: AnalysisOptions) -> None:
        self.options = options

    def setup(self, worker: Any) -> None:
        """Called by Dask on each worker."""
        import torch

        torch.set_num_threads(1)
        warm_up(self.options)


def _run(job: SeriesJob, options: AnalysisOptions, out_root: str) -> SeriesOutcome:
    outcome = process_series(job, options, Path(out_root))
    try:
        from distributed import get_worker

        outcome.worker = f"dask {get_worker().address}"
    except (ImportError, ValueError):
        pass
    return outcome


def run_dask(
    jobs: Sequence[SeriesJob],
    options: AnalysisOptions,
    out_root: Path,
    *,
    scheduler: str | None = None,
    local_workers: int | None = None,
    timeout_s: float | None = None,
) -> Iterator[SeriesOutcome]:
    """Analyze ``jobs`` on a Dask cluster, yielding outcomes as they finish.

    Args:
        jobs: Series to analyze.
        options: Analysis options.
        out_root: Batch output folder (visible to every worker at the same path).
        scheduler: Address of a running scheduler (``tcp://HOST:PORT``).
        local_workers: Start a ``LocalCluster`` with this many worker processes instead.
        timeout_s: Per-series limit. Dask cannot stop a running task safely, so a series
            over it is finished and logged, not killed (the local pool kills it).

    Raises:
        InputError: dask/distributed is not installed, or neither target is given.
    """
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise InputError(
            "the Dask backend needs dask.distributed",
            hint='Install it with: pip install -c constraints.txt "dask[distributed]"',
        ) from exc
    if scheduler is None and not local_workers:
        raise InputError("give a scheduler address or a local worker count for the Dask backend")
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(scheduler or cluster)
    try:
        client.register_plugin(ModelPlugin(options))
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        todo = list(jobs)
        by_key: dict[str, SeriesJob] = {}
        window = as_completed()

        def submit(job: SeriesJob) -> None:
            future = client.submit(_run, job, options, str(out_root), key=f"medmm-{job.key}", pure=False)
            by_key[future.key] = job
            window.add(future)

        while todo and len(by_key) < 2 * n_workers:
            submit(todo.pop(0))
        for future in window:
            job = by_key.pop(future.key)
            try:
                outcome = future.result()
            except Exception as exc:  # KilledWorker, a lost worker, ...
                info = job.series.info
                outcome = SeriesOutcome(
                    job.key,
                    info.series_uid,
                    info.study_uid,
                    "failed",
                    error={"type": type(exc).__name__, "message": f"Dask task failed: {exc}", "file": ""},
                )
            if timeout_s is not None and outcome.timings_s.get("total", 0.0) > timeout_s:
                logger.warning("series %s took %.0f s, over the timeout", job.key, outcome.timings_s["total"])
            yield outcome
            if todo:
                submit(todo.pop(0))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
