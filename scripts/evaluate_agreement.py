"""Report/image agreement on a `medmm synth` data set, against the generator's truth.

Runs `medmm.pipeline.analyze` with each case's report (detection, text and fusion stages,
shipped weights) and compares the agreement items with `ground_truth.json`:

* agreeing reports (`report.disagreement == "none"`): false disagreements, i.e. any
  "not found in image" item for a finding of >= 6 mm (or without a size), and any
  "not in report" item (only detections >= 6 mm are flagged);
* disagreeing reports (a nodule left out, or put on the wrong side): whether the
  discrepancy is flagged -- a "not in report" item on the left-out nodule (within its
  radius + 5 mm), or a "not found in image" item for the wrong-side finding;
* structured retrieval: each volume ranks 30 reports of the set (its own + random others)
  by agreement with its detections (`medmm.fusion.evaluate.structured_retrieval`);
* counterfactual wrong sides: every lobe-sited, sized finding of an agreeing report moved
  to the other lung (as the generator does) when that lung holds no nodule, one at a time,
  on the same pipeline output -- whether that finding is then "not found in image". A data set holds few deliberately
  wrong reports; this measures the same catch on every finding, so a rule that confirms
  findings more readily shows its cost here.

Proportions carry Wilson 95 % intervals. Per-case lines go to OUT/agreement_cases.jsonl,
the summary to OUT/agreement_summary.json.

    python scripts/evaluate_agreement.py /data/heldout --out eval_agreement --workers 2 \
        [--detector-weights medmm/weights/nodule_detector_v3.safetensors [more: an ensemble]]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

_OPPOSITE = {"RUL": "LUL", "RML": "LUL", "RLL": "LLL", "LUL": "RUL", "LLL": "RLL"}


def _score(
    items: tuple[Any, ...], findings: tuple[Any, ...], nodules: tuple[Any, ...], gt: dict[str, Any]
) -> tuple[list[str], bool | None]:
    """False flags (agreeing reports) and whether a disagreement was caught."""
    false_flags = []
    for a in items:
        if a.status == "not_in_report":
            false_flags.append(a.detail)
        elif a.status == "not_found_in_image":
            size = findings[a.mentions[0]].size_mm
            if size is None or size >= 6.0:
                false_flags.append(a.detail)
    kind = gt["report"]["disagreement"]
    caught = None
    if kind == "missed_nodule":
        mentioned = {m["nodule_label"] for m in gt["report"]["mentions"] if m.get("nodule_label") is not None}
        left_out = [n for n in gt["nodules"] if n["label"] not in mentioned]
        caught = any(
            a.status == "not_in_report"
            and any(
                np.linalg.norm(np.subtract(nodules[a.nodule].center_lps_mm, n["center_lps_mm"]))
                <= n["diameter_mm"] / 2 + 5
                for n in left_out
            )
            for a in items
            if a.nodule is not None
        )
    elif kind == "wrong_side":
        caught = any(a.status == "not_found_in_image" for a in items)
    return (false_flags if kind == "none" else []), caught


_DETECTORS: dict[str, Any] = {}


def _one(job: tuple[str, tuple[str, ...] | None]) -> dict[str, Any]:
    import torch

    from medmm.detect.detector import NoduleDetector
    from medmm.fusion.agreement import check_agreement, group_findings, nodule_like
    from medmm.io import load_series
    from medmm.pipeline import analyze
    from medmm.reason.ontology import load_ontology

    folder, weights = job
    torch.set_num_threads(1)
    detector = None
    if weights:
        detector = _DETECTORS.get(weights) or _DETECTORS.setdefault(weights, NoduleDetector(weights))
    case = Path(folder)
    gt = json.loads((case / "ground_truth.json").read_text())
    result = analyze(load_series(case / "dicom"), report_text=(case / "report.txt").read_text(), detector=detector)
    assert result.report is not None
    assert result.report.agreement is not None
    assert result.nodules is not None
    items, findings, nodules = result.report.agreement, result.report.findings, result.nodules
    text = (case / "report.txt").read_text()
    false_flags, caught = _score(items, findings, nodules, gt)
    onto = load_ontology()
    like = nodule_like(findings, onto)
    moved = []
    truth_sides = {n["lobe"][0] for n in gt["nodules"]}  # "R" / "L"
    if gt["report"]["disagreement"] == "none":
        for idx in group_findings(findings, like, text):
            m = findings[idx[0]]
            if m.site not in _OPPOSITE or m.size_mm is None or _OPPOSITE[m.site][0] in truth_sides:
                continue
            swapped = list(findings)
            for i in idx:
                swapped[i] = dataclasses.replace(findings[i], site=_OPPOSITE[m.site], attention_peak_lps_mm=None)
            after = check_agreement(swapped, nodules, like, text=text)
            moved.append(any(a.status == "not_found_in_image" and idx[0] in a.mentions for a in after))
    return {
        "case": f"{case.parent.name}/{case.name}",
        "disagreement": gt["report"]["disagreement"],
        "discrepancies": gt["report"]["discrepancies"],
        "caught": caught,
        "false_flags": false_flags,
        "moved_caught": moved,
        "items": [[a.status, a.detail] for a in items],
        "stages": list(result.stages),
        "nodules": [dataclasses.asdict(n) for n in nodules],
        "report": (case / "report.txt").read_text(),
    }


def main() -> None:
    """Run every case and print the summary."""
    from medmm.evaluate.binary import proportion
    from medmm.fusion.evaluate import structured_retrieval
    from medmm.parallel import process_map
    from medmm.types import DetectedNodule

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--detector-weights",
        nargs="+",
        default=None,
        help="detector .safetensors (default: shipped); several: an ensemble",
    )
    args = ap.parse_args()
    folders = sorted(str(p.parent) for p in args.root.rglob("ground_truth.json"))
    weights = tuple(args.detector_weights) if args.detector_weights else None
    rows = process_map(_one, [(f, weights) for f in folders], workers=args.workers)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "agreement_cases.jsonl").open("w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    agreeing = [r for r in rows if r["disagreement"] == "none"]
    disagreeing = [r for r in rows if r["disagreement"] != "none"]
    clean = sum(not r["false_flags"] for r in agreeing)
    caught = sum(bool(r["caught"]) for r in disagreeing)
    moved = [c for r in agreeing for c in r["moved_caught"]]
    summary = {
        "cases": len(rows),
        "agreeing_cases_without_false_disagreement": dataclasses.asdict(proportion(clean, len(agreeing))),
        "false_disagreements_total": sum(len(r["false_flags"]) for r in agreeing),
        "disagreements_caught": dataclasses.asdict(proportion(caught, len(disagreeing))),
        "counterfactual_wrong_side_caught": dataclasses.asdict(proportion(sum(moved), len(moved))),
        "structured_retrieval": dataclasses.asdict(
            structured_retrieval(
                [[DetectedNodule(**n) for n in r["nodules"]] for r in rows], [r["report"] for r in rows]
            )
        ),
    }
    (args.out / "agreement_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
