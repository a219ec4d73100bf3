"""Batch throughput: series/minute with 1 and 2 local workers, scaling efficiency, overhead, memory.

Builds an archive of `--series` synthetic series (copies of the three `sample_dicom/`
cases under new UIDs, 113 x 128 x 128 each), then runs the same batch with 1 and with 2
worker processes (default analysis: anatomy + detection, every export format) and prints,
side by side:

* wall time and series/minute; speed-up of 2 workers over 1 and scaling efficiency
  (speed-up / workers); target: 2 workers >= 1.7x one worker on 2 cores;
* overhead outside the per-series analysis: worker-seconds available (wall x workers)
  minus the seconds workers spent loading + analyzing, as a share of the total -- once
  counting the export (writing the outputs) as analysis and once as overhead; target < 10 %;
* peak resident memory per worker process.

    python benchmarks/bench_batch.py [--series 20] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.uid import UID

REPO = Path(__file__).resolve().parents[1]
CASES = ("case_metastases", "case_spiculated", "case_normal")


def _uid(*parts: object) -> UID:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:16]
    return UID(f"2.25.{int.from_bytes(digest, 'big')}")


def build_archive(root: Path, n_series: int) -> None:
    """Copies of the sample series with fresh study/series/instance UIDs."""
    for n in range(n_series):
        dest = root / f"patient{n:02d}"
        dest.mkdir(parents=True)
        for k, path in enumerate(sorted((REPO / "sample_dicom" / CASES[n % 3] / "dicom").glob("*.dcm"))):
            ds = pydicom.dcmread(path)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = _uid("study", n), _uid("series", n)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid("sop", n, k)
            ds.save_as(dest / path.name, enforce_file_format=True)


def main() -> None:
    """Run the batch with each worker count and print the comparison."""
    from medmm.batch import BatchConfig, run_batch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=20)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive"
        build_archive(archive, args.series)
        for workers in args.workers:
            out = Path(tmp) / f"out{workers}"
            t0 = time.perf_counter()
            summary = run_batch(BatchConfig(roots=(archive,), out=out, workers=workers))
            wall = time.perf_counter() - t0
            assert summary.exit_code == 0, summary.failed
            records = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
            analysis = sum(r["timings_s"]["load"] + r["timings_s"]["analyze"] for r in records)
            export = sum(r["timings_s"]["export"] for r in records)
            rss = max(r["peak_rss_mb"] or 0.0 for r in records)
            rows.append((workers, wall, analysis, export, rss))
            shutil.rmtree(out)
    base = rows[0][1]
    print(f"\n{args.series} series (113 x 128 x 128 each), anatomy + detection + all exports\n")
    head = ("workers", "wall s", "series/min", "speed-up", "efficiency", "overhead", "overhead+export", "peak MB/wkr")
    print("".join(f"{h:>16}" for h in head))
    for workers, wall, analysis, export, rss in rows:
        capacity = wall * workers
        speed = base / wall
        print(
            f"{workers:>16}{wall:>16.1f}{60 * args.series / wall:>16.2f}{speed:>16.2f}{speed / workers:>16.2f}"
            f"{(capacity - analysis - export) / capacity:>16.1%}{(capacity - analysis) / capacity:>16.1%}{rss:>16.0f}"
        )
    print("\noverhead: share of worker-seconds not spent loading, analyzing or exporting a series")
    print("overhead+export: the same, counting the export (writing outputs) as overhead too")


if __name__ == "__main__":
    main()
