"""Alignment metrics: phrase pointing game and image-to-report retrieval.

* **Pointing game** (Zhang et al., ECCV 2016), phrase-specific and per nodule: the refined
  peak of the attention map of the first sentence describing a nodule (the FINDINGS one;
  mean over heads and the sentence's word pieces) must lie within that nodule's radius +
  ``tolerance_mm`` (5 mm). The
  *random-peak baseline* is the exact hit rate of a peak drawn uniformly from the lung
  tokens (the share of lung tokens inside the same sphere), so it needs no draws.
* **Retrieval**: each volume ranks ``n_candidates`` reports (its own + others drawn at
  random, ``draws`` times, seeded) by cosine of the pooled embeddings; recall@1 and @5
  against chance (1/n and 5/n). Cases with identical report text count as one another's
  match (a normal report says the same thing for every normal chest). Tied scores are
  ordered at random, in expectation (so a tie never favours the own report).
* **Structured retrieval** (no model): the same protocol, each report scored by how well
  its nodule findings agree with the volume's detections under the agreement rules
  (:func:`medmm.fusion.agreement.check_agreement`): confirmed items minus disagreements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from medmm.evaluate.binary import Proportion, proportion
from medmm.fusion.batching import collate
from medmm.fusion.claims import claimed_elsewhere
from medmm.fusion.descriptors import stated_descriptors
from medmm.fusion.examples import FusionExample
from medmm.fusion.model import AlignmentModel
from medmm.fusion.peaks import map_peaks
from medmm.fusion.site import stated_lobe_and_size
from medmm.fusion.size import stated_weighted
from medmm.fusion.train_alignment import phrase_inputs

if TYPE_CHECKING:
    from medmm.reason.ontology import Ontology
    from medmm.types import DetectedNodule

__all__ = ["PointingResult", "RetrievalResult", "phrase_maps", "pointing_game", "retrieval", "structured_retrieval"]


@dataclass(frozen=True)
class PointingResult:
    """Pointing-game hits with Wilson intervals.

    Attributes:
        hits_6mm: Nodules >= 6 mm.
        hits_all: All described nodules.
        random_6mm, random_all: Expected hit rate of a uniformly random lung token.
        distances_mm: Peak-to-nodule-centre distance of every phrase.
        nodules: One record per scored nodule, in scoring order: ``case_id``, ``label``,
            ``diameter_mm``, ``texture``, ``lobe``, ``distance_mm``, ``limit_mm`` and ``hit``
            (what a per-nodule look at the misses needs).
    """

    hits_6mm: Proportion
    hits_all: Proportion
    random_6mm: float
    random_all: float
    distances_mm: np.ndarray
    nodules: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class RetrievalResult:
    """Image-to-report recall among ``n_candidates`` reports."""

    recall_at_1: float
    recall_at_5: float
    chance_at_1: float
    chance_at_5: float
    n_candidates: int
    n_cases: int


@torch.no_grad()
def phrase_maps(
    model: AlignmentModel,
    example: FusionExample,
    *,
    site_prior: bool = False,
    size_prior: bool = False,
    descriptor_prior: bool = False,
    claim_prior: bool = False,
    uniform: bool = False,
) -> list[torch.Tensor]:
    """Attention over the volume tokens of each nodule phrase (heads and word pieces averaged).

    Args:
        model: Alignment model.
        example: One case.
        site_prior: Reweight each map by the lobe its sentence states
            (:func:`medmm.fusion.site.site_weighted`).
        size_prior: And by the size it states (:func:`medmm.fusion.size.size_weighted`).
        descriptor_prior: And by the descriptors it states (calcified, texture, pleural or
            fissural contact; :mod:`medmm.fusion.descriptors`); the three together are what
            ``analyze`` and ``localize`` use.
        claim_prior: With the lobe and size priors, a detection another finding of the
            report claims keeps little of its size match (:mod:`medmm.fusion.claims`).
        uniform: Replace the model's attention by a uniform map (the priors-only
            baseline: what the stated lobe and size find among the detections alone).

    Shapes:
        returns: one (N,) map per phrase.
    """
    texts, real, _ = phrase_inputs([example])
    b = collate([example], texts=texts)
    _, attn, _ = model(*b.model_inputs())
    n = len(example.volume)
    maps = [attn[0][:, rows, :n].mean(dim=(0, 1)) for rows in real[0]]
    if uniform:
        maps = [torch.full_like(m, 1.0 / n) for m in maps]
    if not (site_prior or size_prior):
        return maps
    spans = example.text.spans
    sentences = [example.report[int(spans[idx, 0].min()) : int(spans[idx, 1].max())] for idx in example.phrases]
    stated = [stated_lobe_and_size(t) for t in sentences]
    described = [stated_descriptors(t) if descriptor_prior else frozenset() for t in sentences]
    detections = example.detections + example.faint
    claims = [frozenset[int]() for _ in sentences]
    if site_prior and size_prior and claim_prior:
        span_list = [(int(spans[idx, 0].min()), int(spans[idx, 1].max())) for idx in example.phrases]
        claims = claimed_elsewhere(example.report, span_list, detections, example.volume)
    return [
        stated_weighted(
            m,
            example.volume,
            detections,
            lobe if site_prior else None,
            size if size_prior else None,
            desc,
            claimed,
        )
        for m, (lobe, size), desc, claimed in zip(maps, stated, described, claims, strict=True)
    ]


def pointing_game(
    model: AlignmentModel,
    examples: Sequence[FusionExample],
    *,
    tolerance_mm: float = 5.0,
    site_prior: bool = False,
    size_prior: bool = False,
    descriptor_prior: bool = False,
    claim_prior: bool = False,
    uniform: bool = False,
) -> PointingResult:
    """Phrase pointing game over every described nodule of the examples (see :func:`phrase_maps`)."""
    model.eval()
    hit6 = hit_all = n6 = n_all = 0
    rand6: list[float] = []
    rand_all: list[float] = []
    dists = []
    records: list[dict[str, Any]] = []
    for ex in examples:
        pos = ex.volume.positions_lps_mm.numpy()
        seen: set[int] = set()
        maps = phrase_maps(
            model,
            ex,
            site_prior=site_prior,
            size_prior=size_prior,
            descriptor_prior=descriptor_prior,
            claim_prior=claim_prior,
            uniform=uniform,
        )
        for m, nod in zip(maps, ex.nodules, strict=True):
            if nod["label"] in seen:
                continue
            seen.add(nod["label"])
            centre = np.asarray(nod["center_lps_mm"])
            limit = nod["diameter_mm"] / 2 + tolerance_mm
            point, _ = map_peaks(m, ex.volume.positions_lps_mm, k=1)[0]
            d = float(np.linalg.norm(point - centre))
            dists.append(d)
            records.append(
                {
                    "case_id": ex.case_id,
                    "label": nod["label"],
                    "diameter_mm": float(nod["diameter_mm"]),
                    "texture": nod.get("texture"),
                    "lobe": nod.get("lobe"),
                    "distance_mm": round(d, 2),
                    "limit_mm": round(limit, 2),
                    "hit": bool(d <= limit),
                }
            )
            chance = float((np.linalg.norm(pos - centre, axis=1) <= limit).mean())
            n_all += 1
            hit_all += d <= limit
            rand_all.append(chance)
            if nod["diameter_mm"] >= 6.0:
                n6 += 1
                hit6 += d <= limit
                rand6.append(chance)
    return PointingResult(
        hits_6mm=proportion(hit6, n6),
        hits_all=proportion(hit_all, n_all),
        random_6mm=float(np.mean(rand6)) if rand6 else float("nan"),
        random_all=float(np.mean(rand_all)) if rand_all else float("nan"),
        distances_mm=np.asarray(dists),
        nodules=tuple(records),
    )


@torch.no_grad()
def retrieval(
    model: AlignmentModel,
    examples: Sequence[FusionExample],
    *,
    n_candidates: int = 30,
    draws: int = 20,
    seed: int = 0,
) -> RetrievalResult:
    """Image-to-report recall@1/@5 among ``n_candidates`` (see the module docstring)."""
    model.eval()
    vol_emb, rep_emb = [], []
    for s in range(0, len(examples), 8):
        b = collate(list(examples[s : s + 8]))
        vol = model.volume(b.vol_features, b.vol_lobes, b.vol_positions, b.centre)
        vol_emb.append(model.volume_embedding(vol, b.vol_mask))
        rep_emb.append(model.report_embedding(b.sentence))
    v, r = torch.cat(vol_emb), torch.cat(rep_emb)
    return _recall((v @ r.T).numpy(), [ex.report for ex in examples], n_candidates, draws, seed)


def _hit_chance(scores: np.ndarray, good: np.ndarray, k: int) -> float:
    """Chance that a matching report is among the top ``k`` when ties are ordered at random."""
    best = scores[good].max()
    better = int((~good & (scores > best)).sum())
    tied_bad, tied_good = int((~good & (scores == best)).sum()), int((good & (scores == best)).sum())
    slots = min(k - better, tied_bad + tied_good)
    if slots <= 0:
        return 0.0
    return 1.0 - math.comb(tied_bad, slots) / math.comb(tied_bad + tied_good, slots)


def _recall(sim: np.ndarray, reports: Sequence[str], n_candidates: int, draws: int, seed: int) -> RetrievalResult:
    """Recall@1/@5 of ``sim[volume, report]`` among ``n_candidates`` (own + random others)."""
    texts = [" ".join(t.split()) for t in reports]
    same = np.array([[a == b for b in texts] for a in texts])
    rng = np.random.default_rng(seed)
    n = len(texts)
    k = min(n_candidates, n)
    r1 = r5 = 0.0
    total = 0
    for _ in range(draws):
        for i in range(n):
            others = rng.choice(np.delete(np.arange(n), i), size=k - 1, replace=False)
            cand = np.concatenate([[i], others])
            r1 += _hit_chance(sim[i, cand], same[i, cand], 1)
            r5 += _hit_chance(sim[i, cand], same[i, cand], 5)
            total += 1
    return RetrievalResult(r1 / total, r5 / total, 1 / k, min(5, k) / k, k, n)


def structured_retrieval(
    detections: Sequence[Sequence[DetectedNodule]],
    reports: Sequence[str],
    *,
    n_candidates: int = 30,
    draws: int = 20,
    seed: int = 0,
    ontology: Ontology | None = None,
) -> RetrievalResult:
    """Image-to-report recall when reports are ranked by agreement with the detections.

    Args:
        detections: Each volume's reported detections (with lobes), as ``analyze`` gives them.
        reports: Each volume's own report text (same order).
        n_candidates: Reports each volume ranks (its own + random others).
        draws: Random candidate sets per volume.
        seed: Seed of the draws.
        ontology: Vocabulary for reading the reports (default: shipped).

    Example:
        >>> structured_retrieval([(), ()], ["No nodules.", "No nodules."]).recall_at_1
        1.0
    """
    from medmm.fusion.agreement import check_agreement, nodule_like
    from medmm.reason.ontology import load_ontology
    from medmm.text.mentions import extract_mentions

    onto = ontology or load_ontology()
    read = []
    for text in reports:
        mentions = extract_mentions(text, onto) if text.strip() else []
        read.append((mentions, nodule_like(mentions, onto), text))
    sim = np.zeros((len(detections), len(reports)))
    for i, dets in enumerate(detections):
        for j, (mentions, like, text) in enumerate(read):
            items = check_agreement(mentions, dets, like, text=text)
            sim[i, j] = sum(1 if a.status == "confirmed" else -1 for a in items)
    return _recall(sim, reports, n_candidates, draws, seed)
