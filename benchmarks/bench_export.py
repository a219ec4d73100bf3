"""Export time for a 10-nodule result: every format, side by side with loading the series.

Analyzes one series (default: ../shared/data/lidc-idri-0001, 512 x 512 x 133, else the
synthetic `sample_dicom/` metastases case), keeps its ten most probable detections as
nodules (no probability floor, on purpose: the benchmark needs ten), then times each exporter
and the whole `export_result` call (median of `--repeat` runs) beside the time
`load_series` takes to read the same series -- the baseline, so the ratio stays readable on
a noisy machine. Target (issue 9): all formats under 3 s.

    python benchmarks/bench_export.py [--folder DICOM_DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from timing import median_seconds

REPO = Path(__file__).resolve().parents[1]
LIDC = REPO.parent / "shared" / "data" / "lidc-idri-0001" / "series"


def main() -> None:
    """Build the result, time the exports, print the table."""
    from medmm.detect import NoduleDetector
    from medmm.io import load_series
    from medmm.pipeline import analyze, nodule_label_map
    from medmm.report import ALL_FORMATS, export_result

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=LIDC if LIDC.exists() else REPO / "sample_dicom" / "case_metastases")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nodules", type=int, default=10)
    args = ap.parse_args()

    class _AllDetections(NoduleDetector):
        """The shipped detector without the 0.01 submission floor, so that ten detections exist."""

        def detect(self, volume, lung_mask, **kwargs):  # type: ignore[no-untyped-def,override]
            return super().detect(volume, lung_mask, min_probability=0.0, max_detections=args.nodules)

    volume = load_series(args.folder)
    result = analyze(volume, detector=_AllDetections(), nodule_threshold=0.0)
    nodules = (result.nodules or ())[: args.nodules]
    assert result.maps is not None
    result = dataclasses.replace(
        result, nodules=nodules, maps=dataclasses.replace(result.maps, nodules=nodule_label_map(volume, nodules))
    )
    print(f"series {args.folder}: grid {volume.shape}, {len(nodules)} nodules in the result")
    baseline = median_seconds(lambda: load_series(args.folder), args.repeat)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ALL_FORMATS:
            folder = Path(tmp) / fmt.value
            t = median_seconds(
                lambda f=fmt, d=folder: export_result(result, d, volume=volume, formats=[f]), args.repeat
            )
            rows.append((fmt.value, t))
        total = median_seconds(lambda: export_result(result, Path(tmp) / "all", volume=volume), args.repeat)
        report = export_result(result, Path(tmp) / "all", volume=volume)
        assert report.ok, report.failed
        size = sum(p.stat().st_size for paths in report.written.values() for p in paths)
    print(f"\n{'what':<28}{'seconds':>10}{'x load_series':>16}")
    print(f"{'load_series (baseline)':<28}{baseline:>10.3f}{1.0:>16.2f}")
    for name, t in rows:
        print(f"{'  export ' + name:<28}{t:>10.3f}{t / baseline:>16.2f}")
    print(f"{'export_result, all formats':<28}{total:>10.3f}{total / baseline:>16.2f}")
    print(f"\nall formats: {total:.2f} s for {len(nodules)} nodules ({size / 1e6:.1f} MB written); target < 3 s")


if __name__ == "__main__":
    main()
