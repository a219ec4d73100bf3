"""Training and measuring the differential: region GNN, no-graph baseline, ontology only.

Cases are JSON lines from :mod:`medmm.reason.dataset` (synthetic studies run through the
real pipeline). Every training case is used twice, with and without its report, so one
model serves both kinds of study. A share of the training cases (``val_fraction``) picks
the epoch; the test file is only read for the final table.

Example:
    >>> result = train_reasoning(["train.jsonl"], test_paths=["test.jsonl"])  # doctest: +SKIP
    >>> result.table["with_report"]["gnn"]["top1"]  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medmm.anatomy.graph import NODE_NAMES, build_region_graph
from medmm.anatomy.regions import RIGHT_LOBES
from medmm.reason.dataset import ReasoningCase, read_cases
from medmm.reason.evidence import DIFFERENTIAL, evidence_links, observe, ontology_log_odds
from medmm.reason.features import NODE_DIM, evidence_vocabulary, node_features, study_dim
from medmm.reason.gnn import MeanEnsemble, PooledMLP, RegionGNN
from medmm.reason.inputs import ReasoningInputs
from medmm.reason.ontology import Ontology, load_ontology

__all__ = [
    "Example",
    "TrainedReasoning",
    "fit_network",
    "format_table",
    "make_examples",
    "measure",
    "topk_accuracy",
    "train_reasoning",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Example:
    """One study as the networks see it.

    Shapes:
        x: ``(9, NODE_DIM)``; study: ``(S,)``; prior: ``(8,)``; regions: ``(9,)``
    """

    case_id: str
    x: np.ndarray
    study: np.ndarray
    prior: np.ndarray
    label: int
    regions: np.ndarray


def case_label(truth: dict[str, Any], onto: Ontology) -> int:
    """Index in :data:`DIFFERENTIAL` of a case's true diagnosis."""
    concept = onto.lookup(truth["diagnosis"])
    if concept is None or concept.iri not in DIFFERENTIAL:
        raise ValueError(f"diagnosis {truth['diagnosis']!r} is not one the differential ranks")
    return DIFFERENTIAL.index(concept.iri)


def region_targets(truth: dict[str, Any]) -> np.ndarray:
    """1 for every region holding a true nodule (a pleura node: a juxtapleural one of its side)."""
    out = np.zeros(len(NODE_NAMES), np.float32)
    for n in truth.get("nodules", []):
        lobe = n.get("lobe", "")
        if lobe in NODE_NAMES:
            out[NODE_NAMES.index(lobe)] = 1.0
            if n.get("position") == "juxtapleural":
                side = "right_pleura_chest_wall" if lobe in RIGHT_LOBES else "left_pleura_chest_wall"
                out[NODE_NAMES.index(side)] = 1.0
    return out


def make_examples(
    cases: Iterable[ReasoningCase],
    *,
    with_report: bool = True,
    with_image_embedding: bool = True,
    onto: Ontology | None = None,
    vocabulary: Sequence[str] | None = None,
) -> list[Example]:
    """Examples from reasoning cases.

    Args:
        cases: Cases (``truth`` + ``inputs``).
        with_report: Keep the report's findings; False reads each study as image-only.
        with_image_embedding: Keep the volume encoder's region features (False: zeros, the
            ablation).
        onto: Ontology (default: shipped).
        vocabulary: Evidence vocabulary of the study vector (default: the ontology's).
    """
    onto = onto or load_ontology()
    table = evidence_links(onto)
    out = []
    for case in cases:
        inputs = ReasoningInputs.from_dict(case["inputs"])
        if not with_report:
            inputs = dataclasses.replace(inputs, findings=(), has_report=False)
        if not with_image_embedding:
            inputs = dataclasses.replace(inputs, image_features=None)
        obs = observe(inputs, onto)
        x, study = node_features(inputs, onto, obs, vocabulary)
        prior = ontology_log_odds(obs, table, DIFFERENTIAL, onto)
        out.append(
            Example(
                str(case["case_id"]), x, study, prior, case_label(case["truth"], onto), region_targets(case["truth"])
            )
        )
    return out


@dataclass(frozen=True)
class _Batch:
    x: torch.Tensor
    edge_index: torch.Tensor
    edge_type: torch.Tensor
    batch: torch.Tensor
    study: torch.Tensor
    prior: torch.Tensor
    label: torch.Tensor
    regions: torch.Tensor


def collate(examples: Sequence[Example]) -> _Batch:
    """Stack examples into one disjoint union of region graphs."""
    graph = build_region_graph(feature_dim=0)
    n = len(NODE_NAMES)
    b = len(examples)
    offsets = torch.arange(b).repeat_interleave(graph.edge_index.shape[1]) * n
    return _Batch(
        x=torch.from_numpy(np.concatenate([e.x for e in examples])).float(),
        edge_index=graph.edge_index.repeat(1, b) + offsets,
        edge_type=graph.edge_type.repeat(b),
        batch=torch.arange(b).repeat_interleave(n),
        study=torch.from_numpy(np.stack([e.study for e in examples])).float(),
        prior=torch.from_numpy(np.stack([e.prior for e in examples])).float(),
        label=torch.tensor([e.label for e in examples]),
        regions=torch.from_numpy(np.concatenate([e.regions for e in examples])).float(),
    )


def diagnosis_logits(model: nn.Module, batch: _Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Final logits (network + ontology prior) and, for the GNN, region logits."""
    kind = model.kind if isinstance(model, MeanEnsemble) else type(model)
    if issubclass(kind, RegionGNN):
        logits, region = model(batch.x, batch.edge_index, batch.edge_type, batch.batch, batch.study)
        return logits + batch.prior, region
    return model(batch.x, batch.batch, batch.study) + batch.prior, None


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per case, 1.0 when the true label is among the ``k`` highest logits.

    Shapes:
        logits: ``(N, C)``; labels: ``(N,)``; Output: ``(N,)``
    """
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return (top == labels[:, None]).any(axis=1).astype(float)


def bootstrap_ci(values: np.ndarray, *, seed: int = 0, draws: int = 2000) -> tuple[float, float]:
    """95 % percentile bootstrap interval of a mean (cases resampled)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(draws, len(values)))
    means = values[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def fit_network(
    build: Callable[[], nn.Module],
    train: Sequence[Example],
    val: Sequence[Example],
    *,
    seed: int,
    epochs: int = 150,
    lr: float = 3e-3,
    region_weight: float = 0.1,
    select: str = "top1",
) -> tuple[nn.Module, dict[str, Any]]:
    """One network (GNN or baseline) built and batched from ``seed``, trained, its best epoch kept.

    The initialization comes from ``seed``, not from whatever the global generator holds.

    Args:
        build: Makes the untrained network (``RegionGNN`` or ``PooledMLP``).
        train: Training examples.
        val: Examples that pick the epoch (``select``: ``"top1"``, ties by NLL, or ``"nll"``).
        seed: Seed of the initialization and the batch order.
        epochs: Epochs.
        lr: AdamW learning rate.
        region_weight: Weight of the GNN's region loss.
        select: Epoch selection rule.

    Returns:
        The network in eval mode and ``{"best_epoch", "val_top1", "val_nll"}``.
    """
    torch.manual_seed(seed)
    model = build()
    torch.manual_seed(seed)  # dropout draws from here on: the same whatever the build consumed
    tb, vb = collate(train), collate(val)
    model.norm_x.fit(tb.x)  # type: ignore[operator]
    model.norm_study.fit(tb.study)  # type: ignore[operator]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    ce, bce = nn.CrossEntropyLoss(), nn.BCEWithLogitsLoss()
    best: tuple[float, float] = (-1.0, -np.inf)
    best_state = copy.deepcopy(model.state_dict())
    best_epoch = 0
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=gen).tolist()
        for start in range(0, len(order), 32):
            mb = collate([train[i] for i in order[start : start + 32]])
            logits, region = diagnosis_logits(model, mb)
            loss = ce(logits, mb.label)
            if region is not None:
                loss = loss + region_weight * bce(region, mb.regions)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            logits, _ = diagnosis_logits(model, vb)
            top1 = float((logits.argmax(1) == vb.label).float().mean())
            nll = -float(ce(logits, vb.label))
        key = (top1, nll) if select == "top1" else (nll, top1)
        if key > (best if select == "top1" else (best[1], best[0])):
            best, best_state, best_epoch = (top1, nll), copy.deepcopy(model.state_dict()), epoch
    model.load_state_dict(best_state)
    model.eval()
    return model, {"best_epoch": best_epoch, "val_top1": best[0], "val_nll": -best[1]}


def fit_temperature(model: nn.Module, val: Sequence[Example]) -> float:
    """Temperature ``T`` minimizing the validation NLL of ``softmax((logits + prior) / T)``.

    Temperature scaling (Guo et al., ICML 2017) calibrates the probabilities without changing
    any ranking. Grid search over 0.5-20.
    """
    b = collate(val)
    with torch.no_grad():
        logits = diagnosis_logits(model, b)[0]
    grid = np.geomspace(0.5, 20.0, 80)
    nll = [float(nn.functional.cross_entropy(logits / t, b.label)) for t in grid]
    return round(float(grid[int(np.argmin(nll))]), 3)


def _scores(
    logits: np.ndarray, labels: np.ndarray, model: nn.Module | None = None, batch: _Batch | None = None
) -> dict[str, Any]:
    """Top-1/top-3 with CIs; for an ensemble (``model`` and ``batch`` given) also each member's top-1."""
    row: dict[str, Any] = {"n": len(labels)}
    for k in (1, 3):
        hits = topk_accuracy(logits, labels, k)
        lo, hi = bootstrap_ci(hits)
        row[f"top{k}"] = round(float(hits.mean()), 4)
        row[f"top{k}_ci95"] = [round(lo, 4), round(hi, 4)]
    if isinstance(model, MeanEnsemble) and batch is not None:
        with torch.no_grad():
            row["members_top1"] = [
                round(float((diagnosis_logits(m, batch)[0].argmax(1) == batch.label).float().mean()), 4)
                for m in model.members
            ]
    return row


@dataclass
class TrainedReasoning:
    """What :func:`train_reasoning` produced.

    Attributes:
        gnn: The region GNN (shipped).
        mlp: The no-graph baseline (measured, not shipped).
        vocabulary: Evidence vocabulary of the study vector.
        history: Epoch selection per model.
        table: Test figures: ``{setting: {ranker: {top1, top1_ci95, top3, top3_ci95, n}}}``
            plus the paired GNN - baseline top-1 difference per setting.
        settings: The recipe.
    """

    gnn: MeanEnsemble
    mlp: MeanEnsemble
    vocabulary: tuple[str, ...]
    history: dict[str, Any]
    table: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def train_reasoning(
    train_paths: Sequence[str | Path],
    *,
    test_paths: Sequence[str | Path] = (),
    seed: int = 0,
    epochs: int = 150,
    lr: float = 3e-3,
    hidden: int = 64,
    val_fraction: float = 0.2,
    ablate_image: bool = True,
    region_weight: float = 0.1,
    select: str = "top1",
    input_readout: bool = True,
    members: int = 5,
    onto: Ontology | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainedReasoning:
    """Train the GNN and the baseline; measure both and the ontology-only ranking on the test cases.

    Args:
        train_paths: Reasoning case files for training (and epoch selection).
        test_paths: Held-out case files, read only for the final table.
        seed: Seed of the split; member ``k`` of each network is initialized and batched
            with ``seed + k``.
        epochs: Epochs (the best on the validation split is kept).
        lr: AdamW learning rate.
        hidden: Hidden width of both networks.
        val_fraction: Share of the training cases used to pick the epoch.
        ablate_image: Also train a GNN without the image embedding (an extra table row).
        region_weight: Weight of the GNN's region loss ("holds a true nodule") beside the
            diagnosis cross-entropy.
        select: Epoch selection on the validation split: ``"top1"`` (top-1, ties by NLL) or
            ``"nll"`` (negative log-likelihood, ties by top-1).
        input_readout: The GNN's readout also reads the pooled input rows
            (:class:`~medmm.reason.gnn.RegionGNN`).
        members: Networks per ensemble (:class:`~medmm.reason.gnn.MeanEnsemble`); the GNN,
            the baseline and the ablation all get the same number.
        onto: Ontology (default: shipped).
        log: Progress lines.
    """
    if members < 1:
        raise ValueError(f"members must be at least 1, got {members}")
    say = log or logger.info
    onto = onto or load_ontology()
    vocab = evidence_vocabulary(onto)
    cases = [c for p in train_paths for c in read_cases(p)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(cases))
    n_val = max(1, round(val_fraction * len(cases)))
    val_cases = [cases[i] for i in order[:n_val]]
    train_cases = [cases[i] for i in order[n_val:]]

    def both(cases_: list[ReasoningCase], image: bool = True) -> list[Example]:
        """Each case with and without its report."""
        return [
            *make_examples(cases_, with_image_embedding=image, onto=onto),
            *make_examples(cases_, with_report=False, with_image_embedding=image, onto=onto),
        ]

    train, val = both(train_cases), both(val_cases)
    s_dim = study_dim(len(vocab))
    n_cls = len(DIFFERENTIAL)
    seeds = [seed + k for k in range(members)]
    say(
        f"reasoning: {len(train_cases)} training cases, {len(val_cases)} validation (each with and without "
        f"report); {members} member(s) per network"
    )
    t0 = time.perf_counter()

    def ensemble(build: Callable[[], nn.Module], tr: list[Example], va: list[Example]) -> tuple[MeanEnsemble, dict]:
        nets, hist = [], []
        for s in seeds:
            net, h = fit_network(
                build, tr, va, seed=s, epochs=epochs, lr=lr, region_weight=region_weight, select=select
            )
            nets.append(net)
            hist.append({"seed": s, **h})
        model = MeanEnsemble(nets).eval()
        vb = collate(va)
        with torch.no_grad():
            top1 = float((diagnosis_logits(model, vb)[0].argmax(1) == vb.label).float().mean())
        return model, {"members": hist, "val_top1": round(top1, 4)}

    def build_gnn() -> RegionGNN:
        return RegionGNN(NODE_DIM, s_dim, n_cls, hidden=hidden, input_readout=input_readout)

    gnn, h_gnn = ensemble(build_gnn, train, val)
    h_gnn["temperature"] = fit_temperature(gnn, val)
    say(f"GNN: validation top-1 {h_gnn['val_top1']:.3f}, temperature {h_gnn['temperature']:.2f}")
    mlp, h_mlp = ensemble(lambda: PooledMLP(NODE_DIM, s_dim, n_cls, hidden=hidden), train, val)
    say(f"baseline: validation top-1 {h_mlp['val_top1']:.3f}")
    ablation = None
    if ablate_image:
        ablation, h_abl = ensemble(build_gnn, both(train_cases, image=False), both(val_cases, image=False))
        say(f"GNN without image embedding: validation top-1 {h_abl['val_top1']:.3f}")
    history = {"gnn": h_gnn, "mlp": h_mlp, "train_seconds": round(time.perf_counter() - t0, 1)}
    if ablation is not None:
        history["gnn_no_image_embedding"] = h_abl
    result = TrainedReasoning(
        gnn,
        mlp,
        vocab,
        history,
        settings={
            "seed": seed,
            "epochs": epochs,
            "lr": lr,
            "hidden": hidden,
            "val_fraction": val_fraction,
            "region_loss_weight": region_weight,
            "epoch_selection": select,
            "input_readout": input_readout,
            "members": members,
            "train_files": [str(p) for p in train_paths],
            "n_train_cases": len(train_cases),
            "n_val_cases": len(val_cases),
        },
    )
    if test_paths:
        test_cases = [c for p in test_paths for c in read_cases(p)]
        result.table = measure(gnn, mlp, test_cases, onto=onto, gnn_no_image=ablation)
        result.settings["test_files"] = [str(p) for p in test_paths]
    return result


def measure(
    gnn: nn.Module,
    mlp: nn.Module | None,
    cases: Sequence[ReasoningCase],
    *,
    onto: Ontology,
    gnn_no_image: nn.Module | None = None,
    vocabulary: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Top-1/top-3 with 95 % bootstrap CIs of the rankers, with and without the reports.

    Args:
        gnn: The region GNN (or ensemble) to score.
        mlp: The no-graph baseline; None scores the GNN and the ontology-only ranking alone
            (e.g. shipped weights on a new test set: the baseline is not shipped).
        cases: Held-out cases.
        onto: Ontology.
        gnn_no_image: The GNN trained without the region image embedding (ablation row).
        vocabulary: Evidence vocabulary the networks were trained with (default: the
            ontology's, as in training).
    """
    table: dict[str, Any] = {}
    for setting, with_report in (("with_report", True), ("image_only", False)):
        ex = make_examples(cases, with_report=with_report, onto=onto, vocabulary=vocabulary)
        b = collate(ex)
        labels = b.label.numpy()
        with torch.no_grad():
            g = diagnosis_logits(gnn, b)[0].numpy()
        rows: dict[str, Any] = {"ontology_only": _scores(b.prior.numpy(), labels)}
        if mlp is not None:
            with torch.no_grad():
                m = diagnosis_logits(mlp, b)[0].numpy()
            diff = topk_accuracy(g, labels, 1) - topk_accuracy(m, labels, 1)
            lo, hi = bootstrap_ci(diff)
            rows["baseline_mlp"] = _scores(m, labels, mlp, b)
            rows["gnn_minus_baseline_top1"] = {
                "mean": round(float(diff.mean()), 4),
                "ci95": [round(lo, 4), round(hi, 4)],
            }
        rows["gnn"] = _scores(g, labels, gnn, b)
        rows["per_class_gnn_top1"] = {
            DIFFERENTIAL[c].rsplit(":", 1)[-1]: round(float((g[labels == c].argmax(1) == c).mean()), 3)
            for c in range(len(DIFFERENTIAL))
            if (labels == c).any()
        }
        if gnn_no_image is not None:
            plain = collate(
                make_examples(
                    cases, with_report=with_report, with_image_embedding=False, onto=onto, vocabulary=vocabulary
                )
            )
            with torch.no_grad():
                a = diagnosis_logits(gnn_no_image, plain)[0].numpy()
            rows["gnn_no_image_embedding"] = _scores(a, labels, gnn_no_image, plain)
        table[setting] = rows
    return table


_RANKERS = (
    ("ontology_only", "ontology only"),
    ("baseline_mlp", "no-graph baseline (pooled MLP)"),
    ("gnn_no_image_embedding", "region GNN without the image embedding"),
    ("gnn", "region GNN"),
)


def format_table(table: dict[str, Any]) -> str:
    """The held-out figures as one Markdown table (setting x ranker, top-1 and top-3 with 95 % CIs)."""

    def cell(row: dict[str, Any], k: int) -> str:
        lo, hi = row[f"top{k}_ci95"]
        return f"{row[f'top{k}']:.3f} [{lo:.3f}, {hi:.3f}]"

    lines = ["| input | ranker | n | top-1 [95 % CI] | top-3 [95 % CI] |", "|---|---|---|---|---|"]
    for setting, name in (("with_report", "image + report"), ("image_only", "image only")):
        rows = table.get(setting)
        if not rows:
            continue
        for key, label in _RANKERS:
            if key not in rows:
                continue
            r = rows[key]
            lines.append(f"| {name} | {label} | {r['n']} | {cell(r, 1)} | {cell(r, 3)} |")
        d = rows.get("gnn_minus_baseline_top1")
        if d is None:
            continue
        lines.append(
            f"| {name} | GNN - baseline, top-1 (paired) | {rows['gnn']['n']} | "
            f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] | |"
        )
    return "\n".join(lines) + "\n"
