"""Time `medmm synth`: generating a reproducible synthetic data set.

Target (issue "Synthetic chest CT"): 100 cases of 256 x 256 x ~150 in under 5 minutes
on 2 cores. Prints total and per-case wall time, the slices per case, and, as the
baseline in the same run, the time of one case rendered without nodules, scanner or
DICOM writing (phantom only) so that the share of each stage is visible.

Run:
    python benchmarks/bench_synth.py                 # 100 cases, 2 workers
    python benchmarks/bench_synth.py --cases 10 --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from medmm.synth.dataset import generate_dataset
from medmm.synth.phantom import PatientShape, build_phantom, phantom_geometry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--matrix", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slice-mm", type=float, default=2.0, help="2 mm gives ~150-180 slices per case")
    args = parser.parse_args()

    shape = PatientShape.sample(np.random.default_rng(args.seed))
    geom = phantom_geometry(shape, matrix=args.matrix, slice_thickness_mm=2.0)
    t0 = time.perf_counter()
    build_phantom(geom, shape)
    phantom_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        records = generate_dataset(
            Path(tmp),
            n_cases=args.cases,
            seed=args.seed,
            matrix=args.matrix,
            workers=args.workers,
            slice_thickness_mm=args.slice_mm,
        )
        total_s = time.perf_counter() - t0
        manifest = json.loads((Path(tmp) / "manifest.json").read_text())
        slices = [len(list((Path(tmp) / c["folder"] / "dicom").glob("*.dcm"))) for c in manifest["cases"]]
        size_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 2**20

    per_case = total_s / args.cases
    print(f"cases: {len(records)}  matrix: {args.matrix}  workers: {args.workers}")
    print(
        f"slices per case: median {int(np.median(slices))} (min {min(slices)}, max {max(slices)}); "
        f"data written: {size_mb:.0f} MiB"
    )
    print(f"{'stage':<34}| seconds")
    print(f"{'-' * 34}+--------")
    print(f"{'phantom only, one case (baseline)':<34}| {phantom_s:7.2f}")
    print(f"{'full case, wall / case':<34}| {per_case:7.2f}")
    print(f"{'full data set, wall':<34}| {total_s:7.1f}")
    scaled = per_case * 100
    verdict = "PASS" if scaled <= 300 else "FAIL"
    print(f"target: 100 cases <= 300 s on 2 cores -> {scaled:.0f} s for 100 at this rate: {verdict}")


if __name__ == "__main__":
    main()
