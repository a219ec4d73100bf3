"""Time and peak memory of lung + lobe segmentation on LIDC-IDRI-0001.

Target (issue "Anatomy"): under 10 s wall on 2 cores and under 3 GB peak. Prints, in one
run and each in a fresh process: loading the series (the baseline every analysis pays),
lung segmentation, and lungs + lobes + region assignment of the LUNA16 nodule.

Then the fissure step of the lobe split side by side: the eigen-analysis of the Hessian of
every inner lung voxel with ``numpy.linalg.eigh`` (LAPACK per voxel; medmm before
2026-12-02) against closed-form eigenvalues (:mod:`medmm.eigen3`) with ``eigh`` on the
kept plate voxels only (now), and whether both keep the same voxels and normals.

Run:
    python benchmarks/bench_anatomy.py [--folder PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared/data/lidc-idri-0001/series"


def _peak_reset() -> int:
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _fissure_hessian(vol: object) -> list[np.ndarray]:
    """The six Hessian entries of the inner lung voxels, exactly as ``segment_lobes`` gets them."""
    from medmm.anatomy import lobes, segment_lungs

    return lobes._fissure_hessian(vol, segment_lungs(vol).lungs, 1.0).entries


def _plates(entries: list[np.ndarray], method: str) -> tuple[np.ndarray, np.ndarray]:
    """Kept plate voxels and their normals: medmm's (``closed_form``) or the former LAPACK-only code."""
    from medmm.anatomy import lobes

    if method == "closed_form":
        return lobes._plate_voxels(entries)
    # the baseline: segment_lobes before 2026-12-02, eigh on every voxel
    from medmm.eigen3 import symmetric3

    evals, evecs = np.linalg.eigh(symmetric3(*entries))
    plate = np.where(evals[:, 0] < 0, -evals[:, 0] - np.abs(evals[:, 1]) - np.abs(evals[:, 2]), 0.0)
    keep = plate > max(np.percentile(plate, 99), 1e-6)
    return keep, evecs[keep][:, :, 0]


def worker(method: str, folder: str) -> None:
    from medmm.anatomy import assign, segment_anatomy, segment_lungs
    from medmm.io import load_series

    vol = load_series(folder) if method != "load" else None
    if method in ("eigh_all", "closed_form"):
        entries = _fissure_hessian(vol)
        base = _peak_reset()
        t0 = time.perf_counter()
        keep, normals = _plates(entries, method)
        wall = time.perf_counter() - t0
        digest = hashlib.sha256(keep.tobytes() + np.abs(normals).round(5).tobytes()).hexdigest()[:12]
        print(json.dumps({"wall_s": wall, "peak_bytes": _status("VmHWM") - base, "voxels": len(keep), "kept": digest}))
        return
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
        res = _run(method, args.folder)
        rows.append((label, res["wall_s"], res["peak_bytes"] / 2**30))
    print(f"{'step':<28}| wall s | peak GiB (above the loaded volume)")
    print(f"{'-' * 28}+--------+-----------")
    for label, wall, peak in rows:
        print(f"{label:<28}| {wall:6.2f} | {peak:6.2f}")
    wall, peak = rows[-1][1], rows[-1][2]
    verdict = "PASS" if wall < 10 and peak < 3 else "FAIL"
    print(f"target: anatomy < 10 s and < 3 GB -> {wall:.1f} s, {peak:.2f} GiB: {verdict}")
    eig = {m: _run(m, args.folder) for m in ("eigh_all", "closed_form")}
    print(f"\nfissure eigen-analysis of {eig['eigh_all']['voxels']:,} inner lung voxels")
    print(f"{'method':<44}| wall s | peak GiB | kept voxels + normals (sha256)")
    for m, label in (
        ("eigh_all", "numpy eigh on every voxel (before)"),
        ("closed_form", "closed form + eigh on the kept 1 % (now)"),
    ):
        r = eig[m]
        print(f"{label:<44}| {r['wall_s']:6.2f} | {r['peak_bytes'] / 2**30:8.2f} | {r['kept']}")
    same = "same" if eig["eigh_all"]["kept"] == eig["closed_form"]["kept"] else "DIFFERENT"
    ratio = eig["eigh_all"]["wall_s"] / max(eig["closed_form"]["wall_s"], 1e-9)
    print(f"speed-up {ratio:.1f}x; kept voxels and normals: {same}")


def _run(method: str, folder: str) -> dict[str, float]:
    """One worker in a fresh process; its JSON line."""
    out = subprocess.run(
        [sys.executable, __file__, "--worker", method, "--folder", folder], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
