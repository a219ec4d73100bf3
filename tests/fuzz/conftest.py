"""Shared pieces of the fuzz tests: example budgets and the property every reader must keep.

Every fuzz test runs twice: a bounded run in the default suite and a ``slow`` run with
100x the examples, which takes about an hour on one core and so runs only when asked::

    MEDMM_FUZZ_SLOW=1 python -m pytest -m slow -s tests/fuzz

Hypothesis keeps no example database (CI starts clean; a failure prints the example to
reproduce it with ``@example``).
"""

from __future__ import annotations

import os
import resource
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

from medmm.errors import MedmmError

DEFAULT_EXAMPLES = {"dicom": 150, "annotations": 300, "text": 200, "ontology": 100}
"""Examples per fuzz test in the default suite; the slow variant runs 100x as many."""

BUDGETS = [
    pytest.param(1, id="default"),
    pytest.param(
        100,
        id="slow",
        marks=[
            pytest.mark.slow,
            pytest.mark.skipif(not os.environ.get("MEDMM_FUZZ_SLOW"), reason="100x fuzz run: set MEDMM_FUZZ_SLOW=1"),
        ],
    ),
]
"""Parametrize a fuzz test with this: the argument multiplies its example count."""

TIME_LIMIT_S = 30.0
"""No single input may use more CPU time than this (the 'no hang' bound).

Was 10 s; a 2-core Xeon @ 2.0 GHz (2026-11-30) spent 10.3 s on the derandomized input
"There is a " + "nodule " * 2348 (16 kB, under tracemalloc) -- slow, not a hang: the
bound must hold on slow CI machines and still catch exponential blow-ups. That input was
since made ~3x cheaper (each sentence tokenized once, ccb6f97), and a truly quadratic
case the fuzzer had not drawn yet (a size search on long digit runs) was fixed with it.

CPU time of this process, not wall time: a 100x run shares the machine with other work,
and a starved process must not look like a hang. The hangs this guards against
(catastrophic regexes, quadratic loops, decompression) all burn CPU."""

MEMORY_LIMIT_MB = 256.0
"""Peak Python/numpy allocation while reading one input (the 'bounded memory' bound)."""


def fuzz_settings(kind: str, multiplier: int) -> settings:
    """Hypothesis settings for one fuzz test at one budget."""
    return settings(
        max_examples=DEFAULT_EXAMPLES[kind] * multiplier,
        deadline=None,  # our own TIME_LIMIT_S is checked instead (first calls warm caches)
        database=None,
        derandomize=multiplier == 1,  # the default suite tries the same inputs every run
        # No "explain" phase: its line tracer slows every call tenfold and would trip TIME_LIMIT_S.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@contextmanager
def bounded(label: str, *, trace_allocations: bool = True) -> Iterator[None]:
    """Fail if the body takes longer than TIME_LIMIT_S or allocates more than MEMORY_LIMIT_MB.

    Args:
        label: Names the input in the failure message.
        trace_allocations: Measure with tracemalloc (exact, but slows allocation-heavy
            code such as rdflib's parser several-fold); otherwise the growth of the
            process's peak resident memory is checked.
    """
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MB
    if trace_allocations:
        tracemalloc.start()
    t0 = time.process_time()
    try:
        yield
    finally:
        elapsed = time.process_time() - t0
        if trace_allocations:
            peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        else:
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before
    assert elapsed < TIME_LIMIT_S, f"{label}: took {elapsed:.1f} s of CPU time"
    assert peak_mb < MEMORY_LIMIT_MB, f"{label}: allocated {peak_mb:.0f} MB"


class Tally:
    """Counts what a fuzz run tried, so a run that silently rejected everything fails.

    ``print``-ed at the end of each test (``pytest -s`` shows it): the closing figures.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: dict[str, int] = {}

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    @property
    def tried(self) -> int:
        return sum(self.counts.values())

    def report(self, minimum: int) -> None:
        print(
            f"\n[fuzz] {self.name}: {self.tried} inputs tried, 0 failures; outcomes {dict(sorted(self.counts.items()))}"
        )
        assert self.tried >= minimum, f"only {self.tried} inputs reached the reader (expected >= {minimum})"


def run_fuzz(check: Callable[[], None], tally: Tally, minimum: int) -> None:
    """Run a hypothesis ``check`` with library warnings silenced, then report its tally."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about every hostile value it meets
        check()
    tally.report(minimum=minimum)


def only_medmm_errors(call: Callable[[], Any], *names: str | Path) -> MedmmError | None:
    """Run ``call``; return the MedmmError it raised (after checking it names the input), else None.

    Any other exception propagates and fails the test: it is a bug.
    """
    try:
        call()
    except MedmmError as exc:
        text = str(exc)
        assert any(str(n) in text for n in names if str(n)), f"error does not name its input {names}: {text}"
        assert exc.hint, "a MedmmError must tell the reader what to do"
        return exc
    return None
