"""Shared by the benchmark scripts: the median wall time of a call, the sample-case options."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SAMPLE_CASE = Path(__file__).resolve().parents[1] / "sample_dicom" / "case_metastases"


def sample_case_args(description: str) -> argparse.Namespace:
    """``--folder``, ``--report`` (default: the metastases sample and its report), ``--repeat``, ``--threads``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--folder", type=Path, default=SAMPLE_CASE / "dicom")
    ap.add_argument("--report", type=Path, default=SAMPLE_CASE / "report.txt")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    return ap.parse_args()


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    """Median of ``repeat`` wall-clock timings of ``fn()``, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
