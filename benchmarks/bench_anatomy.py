"""Time and peak memory of lung + lobe segmentation on LIDC-IDRI-0001.

Target (issue "Anatomy"): under 10 s wall on 2 cores and under 3 GB peak. Prints, in one
run and each in a fresh process: loading the series (the baseline every analysis pays),
lung segmentation, and lungs + lobes + region assignment of the LUNA16 nodule.

Run:
    python benchmarks/bench_anatomy.py [--folder PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared/data/lidc-idri-0001/series"


def _peak_reset() -> int:
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def worker(method: str, folder: str) -> None:
    from medmm.anatomy import assign, segment_anatomy, segment_lungs
    from medmm.io import load_series

    vol = load_series(folder) if method != "load" else None
    base = _peak_reset()
    t0 = time.perf_counter()
    if method == "load":
        load_series(folder)
    elif method == "lungs":
        segment_lungs(vol)
    else:
        anatomy = segment_anatomy(vol)
        assign([56.2, 86.3, -115.9], 23.4, anatomy)
    wall = time.perf_counter() - t0
    print(json.dumps({"wall_s": wall, "peak_bytes": _status("VmHWM") - base}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=str(DEFAULT))
    parser.add_argument("--worker", default=None)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.folder)
        return
    if not Path(args.folder).exists():
        print(f"series folder not found: {args.folder}; nothing to benchmark")
        return
    rows = []
    for method, label in (
        ("load", "load_series (baseline)"),
        ("lungs", "segment_lungs"),
        ("anatomy", "segment_anatomy + assign"),
    ):
        out = (
            subprocess.run(
                [sys.executable, __file__, "--worker", method, "--folder", args.folder],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        res = json.loads(out)
        rows.append((label, res["wall_s"], res["peak_bytes"] / 2**30))
    print(f"{'step':<28}| wall s | peak GiB (above the loaded volume)")
    print(f"{'-' * 28}+--------+-----------")
    for label, wall, peak in rows:
        print(f"{label:<28}| {wall:6.2f} | {peak:6.2f}")
    wall, peak = rows[-1][1], rows[-1][2]
    verdict = "PASS" if wall < 10 and peak < 3 else "FAIL"
    print(f"target: anatomy < 10 s and < 3 GB -> {wall:.1f} s, {peak:.2f} GiB: {verdict}")


if __name__ == "__main__":
    main()
