"""Report/image agreement on a `medmm synth` data set, against the generator's truth.

Runs `medmm.pipeline.analyze` with each case's report (detection, text and fusion stages,
shipped weights) and compares the agreement items with `ground_truth.json`:

* agreeing reports (`report.disagreement == "none"`): false disagreements, i.e. any
  "not found in image" item for a finding of >= 6 mm (or without a size), and any
  "not in report" item (only detections >= 6 mm are flagged);
* disagreeing reports (a nodule left out, or put on the wrong side): whether the
  discrepancy is flagged -- a "not in report" item on the left-out nodule (within its
  radius + 5 mm), or a "not found in image" item for the wrong-side finding.

Proportions carry Wilson 95 % intervals. Per-case lines go to OUT/agreement_cases.jsonl,
the summary to OUT/agreement_summary.json.

    python scripts/evaluate_agreement.py /data/heldout --out eval_agreement --workers 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np


def _one(folder: str) -> dict[str, Any]:
    import torch

    from medmm.io import load_series
    from medmm.pipeline import analyze

    torch.set_num_threads(1)
    case = Path(folder)
    gt = json.loads((case / "ground_truth.json").read_text())
    result = analyze(load_series(case / "dicom"), report_text=(case / "report.txt").read_text())
    assert result.report is not None
    assert result.report.agreement is not None
    assert result.nodules is not None
    items = result.report.agreement
    findings = result.report.findings
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
                np.linalg.norm(np.subtract(result.nodules[a.nodule].center_lps_mm, n["center_lps_mm"]))
                <= n["diameter_mm"] / 2 + 5
                for n in left_out
            )
            for a in items
            if a.nodule is not None
        )
    elif kind == "wrong_side":
        caught = any(a.status == "not_found_in_image" for a in items)
    return {
        "case": f"{case.parent.name}/{case.name}",
        "disagreement": kind,
        "discrepancies": gt["report"]["discrepancies"],
        "caught": caught,
        "false_flags": false_flags if kind == "none" else [],
        "items": [[a.status, a.detail] for a in items],
        "stages": list(result.stages),
    }


def main() -> None:
    """Run every case and print the summary."""
    from medmm.evaluate.binary import proportion
    from medmm.parallel import process_map

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    folders = sorted(str(p.parent) for p in args.root.rglob("ground_truth.json"))
    rows = process_map(_one, folders, workers=args.workers)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "agreement_cases.jsonl").open("w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    agreeing = [r for r in rows if r["disagreement"] == "none"]
    disagreeing = [r for r in rows if r["disagreement"] != "none"]
    clean = sum(not r["false_flags"] for r in agreeing)
    caught = sum(bool(r["caught"]) for r in disagreeing)
    summary = {
        "cases": len(rows),
        "agreeing_cases_without_false_disagreement": dataclasses.asdict(proportion(clean, len(agreeing))),
        "false_disagreements_total": sum(len(r["false_flags"]) for r in agreeing),
        "disagreements_caught": dataclasses.asdict(proportion(caught, len(disagreeing))),
    }
    (args.out / "agreement_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
