"""``medmm train reasoning``: the region GNN, the no-graph baseline and the held-out table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_reasoning_parser"]


def _cases(
    given: list[Path] | None, out: Path, name: str, seeds: list[int], n: int, args: argparse.Namespace
) -> list[Path]:
    """The given case files, else one ``OUT/NAME[_SEED].jsonl`` per seed (built through the pipeline if absent)."""
    if given:
        return given
    paths = []
    for seed in seeds:
        path = out / (f"{name}.jsonl" if len(seeds) == 1 else f"{name}_{seed}.jsonl")
        if not path.is_file():
            from medmm.reason.dataset import collect_cases

            def progress(done: int, total: int, label: str = path.stem) -> None:
                if not args.quiet:
                    print(f"[medmm] {label}: {done}/{total} cases analyzed", flush=True)

            collect_cases(
                path, dataset_seed=seed, n_cases=n, matrix=args.matrix, workers=args.workers, progress=progress
            )
        paths.append(path)
    return paths


def _cmd_train_reasoning(args: argparse.Namespace) -> int:
    import torch

    from medmm import __version__
    from medmm.io.atomic import atomic_path
    from medmm.reason.training import format_table, train_reasoning
    from medmm.reason.weights import save_reasoning

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    train_files = _cases(args.cases, args.out, "train_cases", args.cases_seed, args.n_cases, args)
    test_files = _cases(args.test, args.out, "test_cases", [args.test_seed], args.n_test, args)
    result = train_reasoning(
        train_files,
        test_paths=test_files,
        seed=args.seed,
        epochs=args.epochs,
        hidden=args.hidden,
        select=args.select,
        members=args.members,
        input_readout=not args.no_input_readout,
        log=None if args.quiet else lambda s: print(f"[medmm] {s}", flush=True),
    )
    table_md = format_table(result.table)
    card = {
        "name": args.name,
        "medmm_version": __version__,
        "task": "ranked differential diagnosis over the anatomical region graph (GNN logits + ontology log-odds)",
        "training": {**result.settings, **result.history},
        "test": result.table,
        "data": "synthetic only: medmm.synth cases run through medmm.pipeline.analyze (detector, anatomy, "
        "report text and alignment as shipped); no patient data",
        "intended_use": "research and software testing; not for clinical use",
    }
    weights = args.out / f"{args.name}.safetensors"
    save_reasoning(result.gnn, weights, card, result.vocabulary, args.hidden, result.history["gnn"]["temperature"])
    for name, text in (
        ("reasoning_table.md", table_md),
        ("reasoning_table.json", json.dumps(result.table, indent=2) + "\n"),
    ):
        with atomic_path(args.out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
    print(table_md, end="")
    print(f"weights: {weights}  (trained in {result.history['train_seconds']} s)")
    return 0


def add_reasoning_parser(tsub: Any) -> None:
    """Register ``medmm train reasoning`` on the ``train`` subparsers."""
    p = tsub.add_parser(
        "reasoning",
        help="train the region GNN and the no-graph baseline; score them and the ontology-only ranking",
    )
    p.add_argument("--out", type=Path, required=True, help="run folder (case files, weights, reasoning_table.md)")
    p.add_argument("--cases", type=Path, nargs="+", default=None, help="training case files (.jsonl)")
    p.add_argument("--test", type=Path, nargs="+", default=None, help="held-out case files (.jsonl)")
    p.add_argument(
        "--cases-seed",
        type=int,
        nargs="+",
        default=[2025, 2027],
        help="seeds of the training case sets built when --cases is absent (one file of --n-cases per seed)",
    )
    p.add_argument("--n-cases", type=int, default=160, help="training cases to build per seed")
    p.add_argument("--test-seed", type=int, default=2026, help="seed of the held-out cases built when --test is absent")
    p.add_argument("--n-test", type=int, default=100, help="held-out cases to build")
    p.add_argument("--matrix", type=int, default=256, help="image matrix of the built cases")
    p.add_argument("--workers", type=int, default=2, help="processes for building cases")
    p.add_argument("--threads", type=int, default=2, help="torch threads for training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--select", choices=["top1", "nll"], default="top1", help="epoch selection on the validation split")
    p.add_argument("--members", type=int, default=5, help="networks per ensemble (seeds SEED..SEED+MEMBERS-1)")
    p.add_argument(
        "--no-input-readout",
        action="store_true",
        help="GNN readout over the node states only (reasoning_v1's architecture; for comparison)",
    )
    p.add_argument("--name", default="reasoning_v3", help="weights file stem")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_train_reasoning)
