"""Ranked-differential accuracy of reasoning weights on held-out reasoning cases.

`medmm train reasoning` scores the networks it trains; this scores weights already made
(default: the shipped ones) on a case file, e.g. after the detector changed: the cases are
built by `medmm.reason.dataset.collect_cases`, i.e. synthetic studies run through
`medmm.pipeline.analyze` with the detector, anatomy, text and alignment as installed.
Rows: the ontology-only ranking and the weights' GNN (each member's top-1 too), with and
without the reports; top-1/top-3 with 95 % bootstrap intervals over cases. The no-graph
baseline is not shipped, so it is not scored here.

    python scripts/evaluate_reasoning.py OUT --build-seed 2026 --n-cases 100 --workers 2
    python scripts/evaluate_reasoning.py OUT --cases OUT/test_cases.jsonl [--weights W.safetensors]

Writes OUT/reasoning_eval.json (the table, the weights' name and sha256, the case files and
the installed detector's name) and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Build or read the cases, score the weights, write OUT/reasoning_eval.json; exit status."""
    from medmm.io.atomic import atomic_path
    from medmm.reason.dataset import collect_cases, read_cases
    from medmm.reason.ontology import load_ontology
    from medmm.reason.training import format_table, measure
    from medmm.reason.weights import load_reasoning

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="output folder")
    ap.add_argument("--cases", type=Path, nargs="+", help="held-out case files (.jsonl)")
    ap.add_argument("--build-seed", type=int, help="build OUT/test_cases.jsonl with this dataset seed first")
    ap.add_argument("--n-cases", type=int, default=100, help="cases to build")
    ap.add_argument("--matrix", type=int, default=256, help="image matrix of the built cases")
    ap.add_argument("--workers", type=int, default=2, help="processes for building cases")
    ap.add_argument("--weights", type=Path, help="reasoning weights (default: shipped)")
    args = ap.parse_args(argv)
    if (args.cases is None) == (args.build_seed is None):
        ap.error("give exactly one of --cases and --build-seed")
    args.out.mkdir(parents=True, exist_ok=True)
    files = args.cases
    if files is None:
        path = args.out / "test_cases.jsonl"

        def progress(done: int, total: int) -> None:
            print(f"{done}/{total} cases analyzed", flush=True)

        collect_cases(
            path,
            dataset_seed=args.build_seed,
            n_cases=args.n_cases,
            matrix=args.matrix,
            workers=args.workers,
            progress=progress,
        )
        files = [path]
    cases = [c for f in files for c in read_cases(f)]
    gnn, card = load_reasoning(args.weights)
    table = measure(gnn, None, cases, onto=load_ontology(), vocabulary=card["architecture"]["evidence_vocabulary"])
    detectors = sorted({str(c.get("detector") or "not recorded") for c in cases})
    summary = {
        "weights": {"name": card.get("name"), "sha256": card.get("sha256")},
        "case_files": [str(f) for f in files],
        "detector": detectors,
        "table": table,
    }
    with atomic_path(args.out / "reasoning_eval.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(format_table(table), end="")
    for setting, rows in table.items():
        print(
            f"{setting}: members' GNN top-1 {rows['gnn'].get('members_top1')}; per class {rows['per_class_gnn_top1']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
