"""Pointing game and retrieval of the shipped report alignment on a `medmm synth` data set.

Scores the alignment weights that `medmm analyze` uses (default: the shipped ones) on every
case of a held-out synthetic folder, as `medmm train alignment` scores its test set: lobes
from medmm's own anatomy stage, detections from the shipped detector (exactly as `analyze`
finds them; `--detector-weights` gives a candidate detector's instead), the sentence
describing each nodule from the generator's ground-truth mentions.

Rows (one run, the same cached cases):

* **as shipped**: the tempered attention with the stated lobe, size and descriptor priors,
  each stated nodule of the report claiming one detection (`medmm.fusion.claims`; what
  `analyze` uses; `localize` of a lone phrase has no other sentences);
* **without the claim rule**: the same, each sentence weighed on its own (shipped until
  2026-12-02);
* **priors only**: the same priors on a uniform map (what the stated words find among the
  detections without the model; the baseline the learned attention must beat);
* **raw attention**: the model's attention with no prior;
* **random peak**: the exact hit rate of a uniformly drawn lung token.

The pointing game counts a hit when the map's refined peak lies within the nodule's radius +
5 mm (Wilson 95 % intervals); retrieval ranks each volume's own report among 30 by the
pooled embeddings (chance 1/30 and 5/30). Per-nodule lines (distance, hit, and whether the
detector reported the nodule) go to OUT/pointing_nodules.jsonl, the table to
OUT/pointing.md and OUT/pointing.json.

    python scripts/evaluate_pointing.py /data/heldout --out eval_pointing --workers 2 \
        [--weights medmm/weights/report_alignment_v2.safetensors] [--splits train val test] \
        [--detector-weights run/nodule_detector_vN.safetensors]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def _nearest(centre: np.ndarray, rows: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """Distance to the nearest detection (mm) and its probability, or ``(None, None)``."""
    if not rows:
        return None, None
    pts = np.asarray([r["center_lps_mm"] for r in rows], float)
    d = np.linalg.norm(pts - centre, axis=1)
    k = int(d.argmin())
    return round(float(d[k]), 2), round(float(rows[k]["probability"]), 4)


def main(argv: list[str] | None = None) -> int:
    """Score the set, write the table and the per-nodule lines, print a summary."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="medmm synth folder (held out: a seed never used in training)")
    ap.add_argument("--out", type=Path, required=True, help="output folder (case cache, table, per-nodule lines)")
    ap.add_argument("--splits", nargs="+", default=["train", "val", "test"], help="split folders to score")
    ap.add_argument("--weights", type=Path, default=None, help="alignment weights (default: the shipped ones)")
    ap.add_argument("--workers", type=int, default=1, help="processes for case preparation")
    ap.add_argument(
        "--detector-weights",
        nargs="+",
        default=None,
        help="detector .safetensors whose detections the cases hold (default: shipped); several: an ensemble",
    )
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--seed", type=int, default=0, help="seed of the retrieval draws and counterfactual reports")
    args = ap.parse_args(argv)

    import torch

    from medmm.fusion.evaluate import pointing_game, retrieval
    from medmm.fusion.training import ablation_table, build_examples, variant_row
    from medmm.fusion.training_data import prepare_cases
    from medmm.fusion.weights import load_alignment
    from medmm.io.atomic import atomic_path
    from medmm.text.encoder import TextEncoder

    torch.set_num_threads(args.threads)
    files = prepare_cases(
        args.root,
        args.out / "cache",
        anatomy="predicted",
        splits=tuple(args.splits),
        workers=args.workers,
        detector_weights=tuple(str(w) for w in args.detector_weights) if args.detector_weights else None,
    )
    models, card = load_alignment(args.weights)
    models.eval()
    examples = build_examples(files, models.volume, TextEncoder(), args.seed + 2)
    fusion = models.fusion
    priors = {"site_prior": True, "size_prior": True, "descriptor_prior": True, "claim_prior": True}
    shipped = pointing_game(fusion, examples, **priors)
    unclaimed = pointing_game(fusion, examples, **{**priors, "claim_prior": False})
    rr = retrieval(fusion, examples, seed=args.seed)  # the same for every row: no prior touches it
    gate = fusion.cross.gate_value
    uniform = pointing_game(fusion, examples, **priors, uniform=True)
    raw = pointing_game(fusion, examples)
    rows = {
        "as shipped (lobe, size and descriptor priors on the tempered attention, one detection per stated nodule)": (
            variant_row(shipped, rr, gate)
        ),
        "as shipped without the one-detection-per-nodule rule (medmm.fusion.claims)": variant_row(unclaimed, rr, gate),
        "priors only (uniform attention)": variant_row(uniform, rr, gate),
        "raw attention (no prior)": variant_row(raw, rr, gate),
    }
    by_case = {ex.case_id: ex for ex in examples}
    lines = []
    for rec in shipped.nodules:
        ex = by_case[rec["case_id"]]
        nod = next(n for n in ex.nodules if n["label"] == rec["label"])
        centre = np.asarray(nod["center_lps_mm"], float)
        d_rep, p_rep = _nearest(centre, list(ex.detections))
        d_faint, p_faint = _nearest(centre, list(ex.faint))
        lines.append(
            {
                **rec,
                "reported_detection_mm": d_rep,
                "reported_probability": p_rep,
                "detected": d_rep is not None and d_rep <= rec["limit_mm"],
                "faint_detection_mm": d_faint,
                "faint_probability": p_faint,
            }
        )
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "root": str(args.root),
        "splits": args.splits,
        "cases": len(examples),
        "weights": card.get("name"),
        "detector_weights": args.detector_weights or "shipped",
        "rows": rows,
    }
    outputs = {
        "pointing.json": json.dumps(summary, indent=2),
        "pointing.md": ablation_table(rows),
        "pointing_nodules.jsonl": "".join(json.dumps(r) + "\n" for r in lines),
    }
    for name, text in outputs.items():
        with atomic_path(args.out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
    print(f"{len(examples)} cases, weights {card.get('name')}")
    print(outputs["pointing.md"], end="")
    misses = [r for r in lines if not r["hit"] and r["diameter_mm"] >= 6.0]
    print(f"misses >= 6 mm: {len(misses)} ({sum(not r['detected'] for r in misses)} with no reported detection)")
    for r in misses:
        print(
            f"  {r['case_id']} #{r['label']} {r['diameter_mm']:.1f} mm {r['texture']} {r['lobe']}: "
            f"peak {r['distance_mm']} mm (limit {r['limit_mm']}), nearest reported detection "
            f"{r['reported_detection_mm']} mm p {r['reported_probability']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
