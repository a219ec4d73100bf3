"""Out-of-fold top-1 of the region GNN against the no-graph baseline, with study-vector ablations.

A design check, not a test: it reads training case files only (never the held-out set).
The cases are split into ``--folds`` folds; for each fold, the next fold picks each
network's epoch (validation top-1) and the rest train it. Every case is then predicted
once, with and without its report, by networks that never saw it. Single networks (no
ensembles), one per ``--seeds`` entry; the paired GNN - baseline difference is
bootstrapped over cases (seeds averaged per case).

Study-vector variants (``--variants``; the node rows are never changed):

* ``full``: as shipped;
* ``no-location``: the evidence concepts that say where nodules lie (upper / lower lobe,
  bilateral, lower-lobe predominant) zeroed, for every source;
* ``no-evidence``: every evidence concept zeroed (unsited mentions and the report flag stay).

Both models still add the ontology prior, which holds those concepts as log-odds.

    python scripts/cv_reasoning.py RUN/train_cases_2025.jsonl RUN/train_cases_2027.jsonl --seeds 0 1

About 2.5 minutes per variant and model for two seeds on 2 cores (320 cases, 150 epochs).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from medmm.reason.features import EVIDENCE_SOURCES

LOCATION_CONCEPTS = (
    "urn:medmm:nodule-lower-lobe",
    "urn:medmm:nodule-upper-lobe",
    "urn:medmm:nodules-bilateral",
    "urn:medmm:nodules-lower-lobe-predominant",
)


def study_mask(vocabulary: Sequence[str], variant: str) -> np.ndarray:
    """Boolean mask of the study-vector entries a variant zeroes.

    Shapes:
        returns: ``(len(EVIDENCE_SOURCES) * len(vocabulary),)`` over the evidence block only.
    """
    v = len(vocabulary)
    mask = np.zeros(len(EVIDENCE_SOURCES) * v, bool)
    if variant == "no-evidence":
        mask[:] = True
    elif variant == "no-location":
        cols = [k for k, c in enumerate(vocabulary) if c in LOCATION_CONCEPTS]
        for src in range(len(EVIDENCE_SOURCES)):
            mask[[src * v + k for k in cols]] = True
    elif variant != "full":
        raise ValueError(f"unknown variant {variant!r}")
    return mask


def main(argv: list[str] | None = None) -> int:
    """Run the folds for every variant and model; print the table."""
    import torch

    from medmm.reason.dataset import read_cases
    from medmm.reason.evidence import DIFFERENTIAL
    from medmm.reason.features import NODE_DIM, evidence_vocabulary, study_dim
    from medmm.reason.gnn import PooledMLP, RegionGNN
    from medmm.reason.ontology import load_ontology
    from medmm.reason.training import Example, bootstrap_ci, collate, diagnosis_logits, fit_network, make_examples

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", type=Path, nargs="+", help="training case files (.jsonl)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--variants", nargs="+", default=["full", "no-location", "no-evidence"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if args.folds < 3:
        ap.error("--folds must be at least 3 (one predicts, one picks the epoch, the rest train)")
    torch.set_num_threads(args.threads)

    onto = load_ontology()
    vocab = evidence_vocabulary(onto)
    cases = [c for p in args.cases for c in read_cases(p)]
    n = len(cases)
    examples = {w: make_examples(cases, with_report=w, onto=onto) for w in (True, False)}
    folds = np.array_split(np.random.default_rng(0).permutation(n), args.folds)
    s_dim = study_dim(len(vocab))
    builders: dict[str, Callable[[], torch.nn.Module]] = {
        "gnn": lambda: RegionGNN(NODE_DIM, s_dim, len(DIFFERENTIAL), hidden=64, input_readout=True),
        "baseline": lambda: PooledMLP(NODE_DIM, s_dim, len(DIFFERENTIAL), hidden=64),
    }

    def masked(rows: list[Example], mask: np.ndarray) -> list[Example]:
        out = []
        for e in rows:
            study = e.study.copy()
            study[: mask.size][mask] = 0.0
            out.append(dataclasses.replace(e, study=study))
        return out

    def rows(idx: np.ndarray, mask: np.ndarray) -> list[Example]:
        return masked([examples[w][i] for w in (True, False) for i in idx.tolist()], mask)

    hits: dict[tuple[str, str, bool], np.ndarray] = {}
    for variant in args.variants:
        mask = study_mask(vocab, variant)
        for model, build in builders.items():
            h = {w: np.zeros((len(args.seeds), n)) for w in (True, False)}
            for si, seed in enumerate(args.seeds):
                for k in range(args.folds):
                    val_k = (k + 1) % args.folds
                    train_idx = np.concatenate([f for j, f in enumerate(folds) if j not in (k, val_k)])
                    net, _ = fit_network(
                        build, rows(train_idx, mask), rows(folds[val_k], mask), seed=seed, epochs=args.epochs
                    )
                    for w in (True, False):
                        b = collate(masked([examples[w][i] for i in folds[k].tolist()], mask))
                        with torch.no_grad():
                            pred = diagnosis_logits(net, b)[0].argmax(1).numpy()
                        h[w][si, folds[k]] = pred == b.label.numpy()
            for w in (True, False):
                hits[(variant, model, w)] = h[w]
            print(f"[cv] {variant} {model}: done", flush=True)

    print(f"\n{n} cases, {args.folds} folds, seeds {args.seeds}; top-1 out of fold")
    print("| study vector | input | GNN | baseline | GNN - baseline [95 % CI] |")
    print("|---|---|---|---|---|")
    for variant in args.variants:
        for w in (True, False):
            g, m = hits[(variant, "gnn", w)], hits[(variant, "baseline", w)]
            diff = g.mean(0) - m.mean(0)
            lo, hi = bootstrap_ci(diff)
            print(
                f"| {variant} | {'image + report' if w else 'image only'} | {g.mean():.3f} | {m.mean():.3f} "
                f"| {diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
