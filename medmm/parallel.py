"""Ordered map over local worker processes, with progress.

Example:
    >>> process_map(abs, [-1, 2, -3], workers=1)
    [1, 2, 3]
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

__all__ = ["ProgressCallback", "process_map"]

T = TypeVar("T")
R = TypeVar("R")
ProgressCallback = Callable[[int, int], None]


def process_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int = 1,
    chunksize: int = 1,
    progress: ProgressCallback | None = None,
    on_result: Callable[[R], None] | None = None,
) -> list[R]:
    """Apply ``fn`` to every item, in order, in-process (``workers <= 1``) or in processes.

    Args:
        fn: A picklable function (module level) when ``workers > 1``.
        items: Inputs.
        workers: Processes; 1 runs in the calling process (no pickling, easy debugging).
        chunksize: Items sent to a worker at a time.
        progress: Called as ``progress(done, total)`` after each result.
        on_result: Called with each result as it arrives, in input order (e.g. to save
            finished work so that an interrupted run can resume).

    Returns:
        Results in input order. The first exception raised by ``fn`` propagates.
    """
    todo = list(items)
    total = len(todo)
    results: list[R] = []
    if workers <= 1:
        mapped: Iterable[R] = map(fn, todo)
        for done, res in enumerate(mapped, 1):
            results.append(res)
            if on_result:
                on_result(res)
            if progress:
                progress(done, total)
        return results
    # forkserver, not fork: a process that has run torch (OpenMP threads) can deadlock
    # its forked children (seen when calibrating right after training).
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
        for done, res in enumerate(pool.map(fn, todo, chunksize=chunksize), 1):
            results.append(res)
            if on_result:
                on_result(res)
            if progress:
                progress(done, total)
    return results
