"""Local worker processes: one series at a time each, crashes and timeouts contained.

Each worker is a ``spawn``-ed process that loads the models once and then takes series over
a pipe. The parent waits on every worker's pipe *and* its process sentinel, so a worker that
dies (segfault, the kernel's out-of-memory killer) is noticed at once: its series is marked
failed with the exit code and a fresh worker takes its place. A series running past the
timeout gets its worker killed and replaced the same way.

Threads: each worker runs ``max(1, cores // workers)`` torch/OpenMP threads, so N workers do
not oversubscribe the cores.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from medmm.batch.jobs import SeriesJob
from medmm.batch.work import AnalysisOptions, SeriesOutcome, process_series
from medmm.errors import MedmmError

__all__ = ["run_local"]

logger = logging.getLogger(__name__)


def _die_with_parent() -> None:
    """End this worker when the batch process dies, even by SIGKILL (no orphan finishes a series)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    parent = os.getppid()

    def watch() -> None:  # portable fallback: poll the parent pid
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="medmm-parent-watch", daemon=True).start()


def _worker_main(
    conn: Connection,
    options: AnalysisOptions,
    out_root: str,
    threads: int,
    process: Any,
    log_setup: tuple[int, bool] = (logging.WARNING, False),
) -> None:
    """Worker loop: set threads, load models, then analyze series until told to stop."""
    _die_with_parent()
    level, log_phi = log_setup  # the parent's log level and --log-phi, so a worker logs like the parent
    logging.basicConfig(level=level, format=f"%(levelname)s %(name)s [worker {os.getpid()}]: %(message)s")
    if level > logging.DEBUG:
        logging.getLogger("pydicom").setLevel(logging.ERROR)
    from medmm.privacy import install_log_privacy

    install_log_privacy(log_phi=log_phi)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    import torch

    torch.set_num_threads(threads)
    from medmm.batch.work import warm_up

    warm_up(options)
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(("done", process(job, options, Path(out_root))))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    job: SeriesJob | None = None
    started: float = 0.0
    ready: bool = False


def _failed(job: SeriesJob, kind: str, message: str, worker: str) -> SeriesOutcome:
    info = job.series.info
    return SeriesOutcome(
        job.key,
        info.series_uid,
        info.study_uid,
        "failed",
        error={"type": kind, "message": message, "file": str(info.source_files[0]) if info.source_files else ""},
        worker=worker,
    )


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (the out-of-memory killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        return f"worker process died from {name}{hint}"
    return f"worker process exited with code {code}"


def run_local(
    jobs: Sequence[SeriesJob],
    options: AnalysisOptions,
    out_root: Path,
    *,
    workers: int,
    timeout_s: float | None = None,
    process: Callable[[SeriesJob, AnalysisOptions, Path], SeriesOutcome] = process_series,
) -> Iterator[SeriesOutcome]:
    """Analyze ``jobs`` in ``workers`` processes, yielding outcomes as they finish.

    Args:
        jobs: Series to analyze.
        options: Analysis options.
        out_root: Batch output folder.
        workers: Worker processes (at most one per job).
        timeout_s: Per-series limit; the worker running longer is killed and replaced.
        process: The per-series function run in the workers (module level, picklable).

    Yields:
        One outcome per job, in completion order.
    """
    ctx = multiprocessing.get_context("spawn")
    n = max(1, min(workers, len(jobs)))
    threads = max(1, (os.cpu_count() or 1) // n)
    pending = deque(jobs)
    pool: list[_Worker] = []
    from medmm.privacy import log_phi_enabled

    log_setup = (logging.getLogger().getEffectiveLevel(), log_phi_enabled())

    def spawn() -> _Worker:
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_worker_main, args=(child, options, str(out_root), threads, process, log_setup), daemon=True
        )
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def retire(w: _Worker) -> None:
        if w.process.is_alive():
            w.process.kill()
        w.process.join(5)
        w.conn.close()
        pool.remove(w)

    try:
        pool.extend(spawn() for _ in range(n))
        while pending or any(w.job is not None for w in pool):
            for w in pool:
                if w.ready and w.job is None and pending:
                    w.job, w.started = pending.popleft(), time.monotonic()
                    w.conn.send(w.job)
            waitables = [w.conn for w in pool] + [w.process.sentinel for w in pool]
            wait(waitables, timeout=1.0)
            for w in list(pool):
                message = None
                try:
                    if w.conn.poll():
                        message = w.conn.recv()
                except (EOFError, OSError):
                    message = None
                if message is not None:
                    kind, payload = message
                    if kind == "ready":
                        w.ready = True
                    else:
                        w.job = None
                        yield payload
                    continue
                if not w.process.is_alive():
                    text = _exit_text(w.process.exitcode)
                    if w.job is not None:
                        logger.error("series %s: %s; a new worker takes over", w.job.key, text)
                        yield _failed(w.job, "WorkerCrash", text, f"pid {w.process.pid}")
                    elif not w.ready:
                        raise MedmmError(
                            f"a batch worker failed to start: {text}",
                            hint='Check that `python -c "import medmm.pipeline"` works in this environment.',
                        )
                    retire(w)
                    if pending or any(x.job is not None for x in pool):
                        pool.append(spawn())
                elif w.job is not None and timeout_s is not None and time.monotonic() - w.started > timeout_s:
                    logger.error("series %s: over the %.0f s timeout; worker killed", w.job.key, timeout_s)
                    job = w.job
                    retire(w)
                    yield _failed(
                        job, "Timeout", f"analysis took longer than {timeout_s:.0f} s", f"pid {w.process.pid}"
                    )
                    if pending or any(x.job is not None for x in pool):
                        pool.append(spawn())
    finally:
        for w in list(pool):
            with contextlib.suppress(OSError):
                if w.process.is_alive():
                    w.conn.send(None)
        deadline = time.monotonic() + 10
        for w in list(pool):
            w.process.join(max(0.0, deadline - time.monotonic()))
            retire(w)
