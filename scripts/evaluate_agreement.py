"""Report/image agreement on a `medmm synth` data set, against the generator's truth.

Runs `medmm.pipeline.analyze` with each case's report (detection, text and fusion stages,
shipped weights) and compares the agreement items with `ground_truth.json`:

* agreeing reports (`report.disagreement == "none"`): false disagreements, i.e. any
  "not found in image" item for a finding of >= 6 mm (or without a size), and any
  "not in report" item (only detections >= 6 mm are flagged); the acceptance names the
  *nodule's* size, so the same count is also given by the true diameter of the nodule the
  finding describes (`false_flags_true_size`: a finding of a nodule truly under 6 mm that a
  report rounds to "6 mm" is left out; one the generator ties to no nodule stays in);
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

Every figure is also given for the agreement's second look (rule 5 of
`medmm.fusion.agreement`) switched off and at several probability floors
(`--second-look-floors`), with the stated lobe only and with the stated lung, all from the
same pipeline output, under `second_look` in the
summary ("off" is the pipeline's own rule set, also the top-level figures).

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


def _true_diameter_mm(finding: Any, gt: dict[str, Any]) -> float | None:
    """True diameter of the nodule the generator wrote ``finding`` for (span overlap), if any."""
    by_label = {n["label"]: n["diameter_mm"] for n in gt["nodules"]}
    for m in gt["report"]["mentions"]:
        if m.get("nodule_label") is not None and m["start"] < finding.end and finding.start < m["end"]:
            return float(by_label[m["nodule_label"]])
    return None


def _score(
    items: tuple[Any, ...], findings: tuple[Any, ...], nodules: tuple[Any, ...], gt: dict[str, Any]
) -> tuple[list[str], bool | None, list[str]]:
    """False flags (agreeing reports), whether a disagreement was caught, and the false flags by true size."""
    false_flags, by_truth = [], []
    for a in items:
        if a.status == "not_in_report":
            false_flags.append(a.detail)
            by_truth.append(a.detail)
        elif a.status == "not_found_in_image":
            size = findings[a.mentions[0]].size_mm
            if size is None or size >= 6.0:
                false_flags.append(a.detail)
            true = [d for d in (_true_diameter_mm(findings[i], gt) for i in a.mentions) if d is not None]
            if not true or max(true) >= 6.0:
                by_truth.append(a.detail)
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
    agreeing = kind == "none"
    return (false_flags if agreeing else []), caught, (by_truth if agreeing else [])


def _one(job: tuple[Any, ...]) -> dict[str, Any]:
    import torch

    from medmm.detect.detector import detector_for
    from medmm.fusion.agreement import (
        SECOND_LOOK_MIN_PROBABILITY,
        check_agreement,
        group_findings,
        nodule_like,
    )
    from medmm.fusion.report_stage import faint_with_lobes
    from medmm.io import load_series
    from medmm.pipeline import analyze
    from medmm.reason.ontology import load_ontology

    folder, weights, floors = job
    torch.set_num_threads(1)
    detector = detector_for(weights) if weights else None
    case = Path(folder)
    gt = json.loads((case / "ground_truth.json").read_text())
    volume = load_series(case / "dicom")
    text = (case / "report.txt").read_text()
    result = analyze(volume, report_text=text, detector=detector)
    assert result.report is not None
    assert result.report.agreement is not None
    assert result.nodules is not None
    assert result.maps is not None
    items, findings, nodules = result.report.agreement, result.report.findings, result.nodules
    false_flags, caught, flags_by_truth = _score(items, findings, nodules, gt)
    onto = load_ontology()
    like = nodule_like(findings, onto)
    below = [p for p in result.candidates or () if p.probability < result.nodule_threshold]
    faint = faint_with_lobes(volume, result.maps.lobes, below, min([*floors, SECOND_LOOK_MIN_PROBABILITY]))
    truth_sides = {n["lobe"][0] for n in gt["nodules"]}  # "R" / "L"

    def moved_caught(extra: dict[str, Any]) -> list[bool]:
        out = []
        for idx in group_findings(findings, like, text):
            m = findings[idx[0]]
            if m.site not in _OPPOSITE or m.size_mm is None or _OPPOSITE[m.site][0] in truth_sides:
                continue
            swapped = list(findings)
            for i in idx:
                swapped[i] = dataclasses.replace(findings[i], site=_OPPOSITE[m.site], attention_peak_lps_mm=None)
            after = check_agreement(swapped, nodules, like, text=text, **extra)
            out.append(any(a.status == "not_found_in_image" and idx[0] in a.mentions for a in after))
        return out

    agreeing = gt["report"]["disagreement"] == "none"
    variants = {}
    settings: list[tuple[str, dict[str, Any]]] = [("off", {})]
    for same_lung in (False, True):
        for floor in floors:
            key = f"{'lung' if same_lung else 'lobe'} {floor:g}"
            settings.append(
                (key, {"faint": faint, "second_look_min_probability": floor, "second_look_same_lung": same_lung})
            )
    for key, extra in settings:
        v_items = check_agreement(findings, nodules, like, text=text, **extra)
        v_flags, v_caught, _ = _score(v_items, findings, nodules, gt)
        variants[key] = {
            "false_flags": v_flags,
            "caught": v_caught,
            "moved_caught": moved_caught(extra) if agreeing else [],
        }
    return {
        "case": f"{case.parent.name}/{case.name}",
        "disagreement": gt["report"]["disagreement"],
        "discrepancies": gt["report"]["discrepancies"],
        "caught": caught,
        "false_flags": false_flags,
        "false_flags_true_size": flags_by_truth,
        "moved_caught": variants["off"]["moved_caught"],  # the pipeline's own rules (second look off)
        "items": [[a.status, a.detail] for a in items],
        "stages": list(result.stages),
        "second_look": variants,
        "faint": [dataclasses.asdict(f) for f in faint],
        "nodules": [dataclasses.asdict(n) for n in nodules],
        "report": text,
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
    ap.add_argument(
        "--second-look-floors",
        nargs="*",
        type=float,
        default=[0.05, 0.1, 0.2, 0.3],
        help="probability floors of the second look (stated lobe only, and stated lung) to report "
        "beside 'off' (same pipeline output)",
    )

    args = ap.parse_args()
    folders = sorted(str(p.parent) for p in args.root.rglob("ground_truth.json"))
    weights = tuple(args.detector_weights) if args.detector_weights else None
    floors = tuple(args.second_look_floors)
    rows = process_map(_one, [(f, weights, floors) for f in folders], workers=args.workers)
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
        "agreeing_cases_without_false_disagreement_true_size": dataclasses.asdict(
            proportion(sum(not r.get("false_flags_true_size") for r in agreeing), len(agreeing))
        ),
        "disagreements_caught": dataclasses.asdict(proportion(caught, len(disagreeing))),
        "counterfactual_wrong_side_caught": dataclasses.asdict(proportion(sum(moved), len(moved))),
        "structured_retrieval": dataclasses.asdict(
            structured_retrieval(
                [[DetectedNodule(**n) for n in r["nodules"]] for r in rows], [r["report"] for r in rows]
            )
        ),
    }
    summary["second_look"] = (
        {
            key: {
                "agreeing_clean": dataclasses.asdict(
                    proportion(sum(not r["second_look"][key]["false_flags"] for r in agreeing), len(agreeing))
                ),
                "false_disagreements_total": sum(len(r["second_look"][key]["false_flags"]) for r in agreeing),
                "disagreements_caught": dataclasses.asdict(
                    proportion(sum(bool(r["second_look"][key]["caught"]) for r in disagreeing), len(disagreeing))
                ),
                "counterfactual_wrong_side_caught": dataclasses.asdict(
                    proportion(
                        sum(c for r in agreeing for c in r["second_look"][key]["moved_caught"]),
                        sum(len(r["second_look"][key]["moved_caught"]) for r in agreeing),
                    )
                ),
            }
            for key in rows[0]["second_look"]
        }
        if rows
        else {}
    )
    (args.out / "agreement_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
