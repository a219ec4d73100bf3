"""Held-out evaluation of the nodule detector on a `medmm synth` data set.

Runs the detection path of `medmm analyze` (lung mask -> candidates -> CNN -> NMS) on
every case under ROOT, writes `candidates.csv` (LUNA16 submission format), and scores it
with `medmm.evaluate` (LUNA16 FROC / CPM with a bootstrap over scans), plus the diameter
error and texture accuracy of the best detection on each found nodule (bootstrap CIs).

    python scripts/evaluate_detector.py /data/heldout --out eval_heldout --workers 2 \
        [--weights W.safetensors [W2.safetensors ...]] [--update-card] [--ranker card R.safetensors]

Also writes `detections.json` (per case: reference nodules and detections).
`--update-card` writes the figures into the weights' model card under `metrics`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def _one(
    args: tuple[str, str | tuple[str, ...] | None, bool, bool, float | None, int | None, tuple[str | None, ...]],
) -> list[dict[str, Any]]:
    """Detections on one case, once per candidate ranker (the volume and lungs shared)."""
    folder, weights, tta, int8, floor, max_candidates, rankers = args
    import torch

    from medmm.anatomy import segment_lungs
    from medmm.detect.detector import NoduleDetector
    from medmm.detect.ranker import combine_rankers
    from medmm.detect.weights import load_ranker
    from medmm.io import load_series

    torch.set_num_threads(1)
    gt = json.loads((Path(folder) / "ground_truth.json").read_text())
    t0 = time.perf_counter()
    vol = load_series(Path(folder) / "dicom")
    t1 = time.perf_counter()
    mask = segment_lungs(vol).lung_mask
    t2 = time.perf_counter()
    out = []
    for ranker_path in rankers:
        key = (weights, tta, int8, max_candidates, ranker_path)
        det = _DETECTORS.get(key)
        if det is None:
            extra: dict[str, Any] = {} if max_candidates is None else {"max_candidates": max_candidates}
            if ranker_path is not None:
                extra["ranker"] = combine_rankers([load_ranker(p)[0] for p in ranker_path.split("+")])
            det = _DETECTORS[key] = NoduleDetector(weights, tta=tta, quantize=int8, **extra)
        t3 = time.perf_counter()
        dets = det.detect(vol, mask) if floor is None else det.detect(vol, mask, min_probability=floor)
        out.append(
            {
                "uid": gt["series_uid"],
                "case": Path(folder).name,
                "gt": gt["nodules"],
                "dets": [
                    (d.center_lps_mm, d.probability, d.diameter_mm, d.texture.value, d.logit, d.candidate_score)
                    for d in dets
                ],
                "seconds": {"load": t1 - t0, "lungs": t2 - t1, "detect": time.perf_counter() - t3},
            }
        )
    return out


_DETECTORS: dict[Any, Any] = {}


def _ranker_name(ranker: str | None) -> str:
    """Folder name of a ``--ranker`` value: ``card``, or the file stems joined by ``+``."""
    return "card" if ranker is None else "+".join(Path(p).stem for p in ranker.split("+"))


def _boot_ci(values: np.ndarray, stat: Any, seed: int = 0, n: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    if len(values) == 0:
        return (float("nan"), float("nan"))
    reps = [stat(values[rng.integers(0, len(values), len(values))]) for _ in range(n)]
    return (float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5)))


def main() -> None:
    """Evaluate, print and save the metrics."""
    from medmm.parallel import process_map

    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--weights", nargs="+", default=None, help="detector weights; several: an ensemble")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tta", action="store_true")
    ap.add_argument("--int8", action="store_true")
    ap.add_argument("--update-card", action="store_true")
    ap.add_argument("--min-probability", type=float, default=None, help="submission floor (default: the detector's)")
    ap.add_argument(
        "--max-candidates", type=int, default=None, help="ranked blob candidates the CNN sees (default: the detector's)"
    )
    ap.add_argument(
        "--ranker",
        nargs="+",
        default=None,
        help="candidate ranker(s) to use instead of the one the detector's card names ('card' for that one; "
        "'A+B' for the mean-logit ensemble of A and B); several: each is scored on the same scans, into "
        "OUT/<ranker name>/",
    )
    args = ap.parse_args()
    rankers = tuple(None if r == "card" else r for r in (args.ranker or ["card"]))
    if len(rankers) > 1:
        names = [_ranker_name(r) for r in rankers]
        if len(set(names)) < len(names):
            ap.error("--ranker: give rankers with different file names")
    folders = sorted(str(p.parent) for p in args.root.rglob("ground_truth.json"))
    weights = tuple(args.weights) if args.weights and len(args.weights) > 1 else (args.weights or [None])[0]
    if args.update_card and isinstance(weights, tuple):
        ap.error("--update-card takes one weights file (an ensemble has no card of its own)")
    t0 = time.perf_counter()
    per_case = process_map(
        _one,
        [(f, weights, args.tta, args.int8, args.min_probability, args.max_candidates, rankers) for f in folders],
        workers=args.workers,
    )
    wall = time.perf_counter() - t0
    base = args.out
    for k, ranker in enumerate(rankers):
        out = base if len(rankers) == 1 else base / _ranker_name(ranker)
        _score(args, weights, [rows[k] for rows in per_case], out, wall, ranker)


def _score(
    args: argparse.Namespace,
    weights: str | tuple[str, ...] | None,
    rows: list[dict[str, Any]],
    out: Path,
    wall: float,
    ranker: str | None,
) -> None:
    """Score one ranker's detections, write them and the metrics under ``out``."""
    from medmm.evaluate import EvaluationSettings, evaluate_detections, read_predictions, read_synthetic_reference

    out.mkdir(parents=True, exist_ok=True)
    lines = ["seriesuid,coordX,coordY,coordZ,probability"]
    for r in rows:
        for c, p, *_ in r["dets"]:
            lines.append(f"{r['uid']},{c[0]:.2f},{c[1]:.2f},{c[2]:.2f},{p:.5f}")
    (out / "candidates.csv").write_text("\n".join(lines) + "\n")
    # Per case: reference nodules and detections, for looking at misses by kind afterwards.
    (out / "detections.json").write_text(json.dumps(rows) + "\n")
    ref = read_synthetic_reference(args.root)
    res = evaluate_detections(
        read_predictions(out / "candidates.csv"), ref, settings=EvaluationSettings(n_bootstrap=1000, seed=0)
    )
    froc = res.froc
    op = {p.fps_per_scan: p for p in froc.operating_points}
    # Diameter and texture of the most probable detection within each nodule's radius.
    derr: list[float] = []
    tex_ok: list[bool] = []
    found_by_texture: dict[str, list[int]] = {}  # texture -> [found at p >= 0.5, nodules]
    for r in rows:
        dets = r["dets"]
        for n in r["gt"]:
            best = None
            for c, p, d, tex, *_ in dets:
                if np.linalg.norm(np.subtract(c, n["center_lps_mm"])) <= n["diameter_mm"] / 2 and (
                    best is None or p > best[0]
                ):
                    best = (p, d, tex)
            tally = found_by_texture.setdefault(n["texture"], [0, 0])
            tally[1] += 1
            if best is not None and best[0] >= 0.5:
                tally[0] += 1
                derr.append(abs(best[1] - n["diameter_mm"]))
                tex_ok.append(best[2] == n["texture"])
    derr_a, tex_a = np.asarray(derr), np.asarray(tex_ok, float)
    secs = {k: float(np.mean([r["seconds"][k] for r in rows])) for k in ("load", "lungs", "detect")}
    metrics = {
        "test_set": {
            "root": args.root.name,
            "cases": len(rows),
            "nodules": froc.n_nodules,
            "note": "held-out synthetic cases, generated with a seed not used for training",
        },
        "cpm": froc.cpm,
        "cpm_ci95": list(froc.cpm_ci) if froc.cpm_ci else None,
        "sensitivity_at_fp_per_scan": {
            str(k): {"sensitivity": v.sensitivity, "ci95": [v.ci_low, v.ci_high]} for k, v in op.items()
        },
        "diameter_abs_error_mm": {
            "median": float(np.median(derr_a)) if len(derr_a) else None,
            "median_ci95": list(_boot_ci(derr_a, np.median)),
            "mean": float(np.mean(derr_a)) if len(derr_a) else None,
            "n": len(derr_a),
            "on": "nodules whose most probable detection within their radius has p >= 0.5",
        },
        "texture_accuracy": {
            "value": float(np.mean(tex_a)) if len(tex_a) else None,
            "ci95": list(_boot_ci(tex_a, np.mean)),
            "n": len(tex_a),
        },
        "found_by_texture": {
            tex: {"found": k, "nodules": n, "rule": "most probable detection within the radius has p >= 0.5"}
            for tex, (k, n) in sorted(found_by_texture.items())
        },
        "mean_seconds_per_case": secs,
        "wall_seconds": wall,
        "tta": args.tta,
        "int8": args.int8,
        "min_probability": args.min_probability,
        "max_candidates": args.max_candidates,
        "candidate_ranker": "the detector card's" if ranker is None else _ranker_name(ranker),
        "bootstrap": "1000 replicates over scans (FROC, medmm.evaluate); 2000 over nodules (diameter, texture); seed 0",
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "evaluation.json").write_text(json.dumps(res.to_dict(), indent=1, default=str) + "\n")
    print(json.dumps(metrics, indent=2))
    if args.update_card and ranker is None:
        from medmm.detect.weights import default_weights_path

        w = Path(weights) if weights else default_weights_path()  # type: ignore[arg-type]
        card_path = w.with_suffix(".json")
        card = json.loads(card_path.read_text())
        key = "heldout_synthetic" + ("_tta" if args.tta else "") + ("_int8" if args.int8 else "")
        card.setdefault("metrics", {})[key] = metrics
        card_path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"model card updated: {card_path}")


if __name__ == "__main__":
    main()
