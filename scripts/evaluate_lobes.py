"""Voxel lobe accuracy of medmm's lobe split against the synthetic generator's truth.

Generates each case with `medmm.synth.cases.generate_case` (the phantom's lobe labels are
the truth; default scanner draws, so slice thickness varies 0.625-3 mm), segments the lungs
and lobes as `medmm analyze` does, and scores every voxel both call lung. Prints one line
per scan (thickness, accuracy, each fissure's method) and the mean with a bootstrap 95 %
interval over scans; writes them to OUT as JSON.

    python scripts/evaluate_lobes.py --seeds 717100 717120 --matrix 256 --out lobes.json \
        [--cache DIR]

`--cache` keeps each generated scan, its lung mask and its truth as ``.npz``, so a second
checkout (e.g. a git worktree of an older commit, run with ``PYTHONPATH`` pointing at it)
scores the very same voxels; compare two runs with `--compare A.json B.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def _case(seed: int, matrix: int, cache: Path | None) -> dict[str, Any]:
    """Scan, lung labels and truth lobes of one seed (from the cache when there)."""
    path = cache / f"{seed}_{matrix}.npz" if cache else None
    if path is not None and path.exists():
        with np.load(path) as d:
            return {k: d[k] for k in d.files}
    from medmm.anatomy import segment_lungs
    from medmm.synth.cases import generate_case

    case = generate_case(seed, matrix=matrix)
    out = {
        "hu": case.volume.array.astype(np.int16),
        "affine": case.volume.affine,
        "lungs": segment_lungs(case.volume).lungs.astype(np.uint8),
        "truth": case.lobe.astype(np.uint8),
        "thickness": np.float64(case.scanner.slice_thickness_mm),
    }
    if path is not None:
        from medmm.io.atomic import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **out)
    return out


def _mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and its 95 % bootstrap interval over scans (the reasoning evaluation's helper)."""
    from medmm.reason.training import bootstrap_ci

    return (float(values.mean()), *bootstrap_ci(values))


def _compare(a_path: Path, b_path: Path) -> None:
    a, b = (json.loads(p.read_text())["scans"] for p in (a_path, b_path))
    keys = sorted(set(a) & set(b))
    diff = np.array([b[k]["accuracy"] - a[k]["accuracy"] for k in keys])
    m, lo, hi = _mean_ci(diff)
    print(f"{len(keys)} scans: B - A = {m:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    print(f"B worse by > 0.01 on {int((diff < -0.01).sum())}, better by > 0.01 on {int((diff > 0.01).sum())}")


def main(argv: list[str] | None = None) -> int:
    """Score the seeds (or compare two earlier runs) and print the summary."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs=2, metavar=("FIRST", "STOP"), help="seeds FIRST .. STOP-1")
    ap.add_argument("--matrix", type=int, default=256)
    ap.add_argument("--out", type=Path, help="JSON with every scan's accuracy")
    ap.add_argument("--cache", type=Path, default=None, help="keep generated scans here (.npz)")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("A", "B"), help="two earlier --out files")
    args = ap.parse_args(argv)
    if args.compare:
        _compare(*args.compare)
        return 0
    if not args.seeds or not args.out:
        ap.error("--seeds and --out are required (or --compare A B)")

    import medmm
    from medmm.anatomy.lobes import segment_lobes
    from medmm.io.atomic import atomic_path
    from medmm.types import Volume

    scans: dict[str, Any] = {}
    for seed in range(*args.seeds):
        d = _case(seed, args.matrix, args.cache)
        vol = Volume(d["hu"].astype(np.float32), d["affine"])
        seg = segment_lobes(vol, d["lungs"])
        both = (d["truth"] > 0) & (seg.labels > 0)
        acc = float((d["truth"][both] == seg.labels[both]).mean())
        methods = {f.name: f.method for f in seg.fissures}
        scans[str(seed)] = {"thickness_mm": float(d["thickness"]), "accuracy": acc, "methods": methods}
        print(f"{seed} {float(d['thickness']):5.3f} mm  accuracy {acc:.3f}  {methods}", flush=True)
    acc = np.array([s["accuracy"] for s in scans.values()])
    m, lo, hi = _mean_ci(acc)
    print(f"mean voxel lobe accuracy {m:.3f} [{lo:.3f}, {hi:.3f}] over {len(acc)} scans (code: {medmm.__file__})")
    with atomic_path(args.out) as tmp:
        tmp.write_text(
            json.dumps({"matrix": args.matrix, "mean": m, "ci95": [lo, hi], "scans": scans}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
