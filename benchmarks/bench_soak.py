"""Soak: one batch of 200 synthetic series; resident memory of every worker over time.

Builds an archive of ``--series`` copies of the three ``sample_dicom/`` cases under new
UIDs (113 x 128 x 128 each, with a report for every third), runs them as one batch with
``--workers`` local worker processes (default analysis: anatomy, detection, report
alignment, reasoning, every export format), and samples each worker's resident memory
(RSS) every second. It prints, per worker, side by side:

* RSS just after warm-up (median over the window after the first 10 % of series) -- the
  baseline -- and at the end (median over the last 10 % of the run), and their ratio;
  target: growth <= 10 %;
* peak RSS and series analyzed.

The curve is drawn to ``docs/images/soak_memory.png`` (``--plot``) and the raw samples
are written to ``--out/soak_samples.json``.

    python benchmarks/bench_soak.py [--series 200] [--workers 2] [--plot docs/images/soak_memory.png]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import build_archive

REPO = Path(__file__).resolve().parents[1]
REPORT = (
    "FINDINGS: There is a 9 mm spiculated nodule in the right upper lobe. "
    "No pleural effusion. IMPRESSION: Suspicious right upper lobe nodule."
)


class RssSampler(threading.Thread):
    """Samples the RSS (MB) of every child process of this one, every ``interval_s``."""

    def __init__(self, interval_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.samples: list[tuple[float, int, float]] = []  # (seconds since start, pid, RSS MB)
        self._halt = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        me = psutil.Process()
        while not self._halt.is_set():
            now = time.monotonic() - self._t0
            for child in me.children(recursive=True):
                try:
                    self.samples.append((now, child.pid, child.memory_info().rss / 2**20))
                except psutil.Error:
                    continue
            self._halt.wait(self.interval_s)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _window(samples: list[tuple[float, float]], start_s: float, end_s: float) -> float | None:
    values = [rss for t, rss in samples if start_s <= t <= end_s]
    return statistics.median(values) if values else None


def main() -> None:
    """Build the archive, run the batch while sampling, print the table, draw the curve."""
    from medmm.batch import BatchConfig, run_batch
    from medmm.batch.work import AnalysisOptions

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="keep the batch output and samples here")
    ap.add_argument("--plot", type=Path, default=None, help="write the memory curve (PNG)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="medmm-soak-"))
    out = args.out or work / "out"
    try:
        archive = work / "archive"
        build_archive(archive, args.series)
        reports = work / "reports.csv"
        import csv

        import pydicom

        with reports.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["StudyInstanceUID", "text"])
            for n, folder in enumerate(sorted(archive.iterdir())):
                if n % 3 == 0:
                    first = next(folder.glob("*.dcm"))
                    writer.writerow([pydicom.dcmread(first, stop_before_pixels=True).StudyInstanceUID, REPORT])
        done_at: list[float] = []
        sampler = RssSampler()
        config = BatchConfig(
            roots=(archive,), out=out, options=AnalysisOptions(), reports_csv=reports, workers=args.workers
        )
        t0 = time.monotonic()
        sampler.start()
        summary = run_batch(config, lambda p: done_at.append(time.monotonic() - t0))
        sampler.stop()
        wall_s = time.monotonic() - t0
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)

    n_ok = sum(1 for r in summary.records if r.get("status") == "ok")
    warm_end = done_at[max(0, len(done_at) // 10 - 1)]  # the first 10 % of series finished
    span = wall_s - warm_end
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for t, pid, rss in sampler.samples:
        by_pid.setdefault(pid, []).append((t, rss))
    counts: dict[str, int] = {}
    for rec in summary.records:
        counts[rec.get("worker", "")] = counts.get(rec.get("worker", ""), 0) + 1
    # Worker processes: those that analyzed series (not multiprocessing's resource tracker).
    workers = {pid: s for pid, s in by_pid.items() if counts.get(f"pid {pid}", 0) > 0}

    print(f"soak: {len(summary.records)} series ({n_ok} ok) in {wall_s:.0f} s with {args.workers} workers")
    print(f"warm-up: the first {len(done_at) // 10} series (until {warm_end:.0f} s)")
    print(f"{'worker':>8} {'series':>7} {'after warm-up MB':>17} {'end MB':>8} {'growth':>8} {'peak MB':>8}")
    growths = []
    for pid, s in sorted(workers.items()):
        early = _window(s, warm_end, warm_end + 0.1 * span)
        late = _window(s, wall_s - 0.1 * span, wall_s)
        peak = max(rss for _, rss in s)
        growth = (late / early - 1.0) if early and late else float("nan")
        growths.append(growth)
        n = counts.get(f"pid {pid}", 0)
        print(f"{pid:>8} {n:>7} {early or 0:>17.0f} {late or 0:>8.0f} {growth:>+8.1%} {peak:>8.0f}")
    worst = max(growths) if growths else float("nan")
    print(f"largest growth after warm-up: {worst:+.1%} (target <= +10 %)")

    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "soak_samples.json").write_text(
            json.dumps({"samples": sampler.samples, "done_at_s": done_at, "warm_end_s": warm_end}) + "\n"
        )
    if args.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
        for i, (_pid, s) in enumerate(sorted(workers.items())):
            ax.plot([t / 60 for t, _ in s], [rss for _, rss in s], lw=1, label=f"worker {i + 1}")
        ax.axvspan(0, warm_end / 60, color="0.9", label="warm-up (first 10 % of series)")
        ax.set_xlabel("minutes into the batch")
        ax.set_ylabel("resident memory (MB)")
        ax.set_ylim(bottom=0)
        ax.set_title(
            f"{len(summary.records)} series, {args.workers} workers: largest growth after warm-up {worst:+.1%}"
        )
        ax.legend(loc="lower right")
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot)
        print(f"curve: {args.plot}")


if __name__ == "__main__":
    main()
