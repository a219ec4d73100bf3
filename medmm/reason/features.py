"""Node and study features of the region graph, from a study's reasoning inputs.

Every node of the region graph (:mod:`medmm.anatomy.graph`, 9 regions in a fixed order)
gets one row:

* which region it is (one-hot, 9);
* anatomy: volume in litres, mean HU / 1000, fraction below -950 HU (3);
* image embedding: the volume encoder's lung tokens pooled over the region
  (:data:`~medmm.reason.inputs.IMAGE_FEATURES`; zeros when no encoder ran);
* nodule statistics of the nodules in the region (:data:`NODULE_FEATURES`; a pleura node
  collects the juxtapleural nodules of its side);
* report mentions sited in the region, affirmed and negated, per concept group
  (:data:`MENTION_GROUPS`; ``bilateral`` counts for every lobe), and the largest size stated
  for the region;
* the study vector, repeated on every node: the observed evidence concepts by source
  (:func:`medmm.reason.evidence.observe`), unsited report mentions, and whether a report
  was read.

The no-graph baseline pools the same rows (mean and max over nodes) and keeps the study
vector: it sees the same facts without knowing which region holds them.

Example:
    >>> x, s = node_features(ReasoningInputs((), ()))
    >>> x.shape[0], s.shape == (STUDY_DIM,)
    (9, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medmm.anatomy.graph import ANATOMY_FEATURES, NODE_NAMES
from medmm.anatomy.regions import LOBE_NAMES, RIGHT_LOBES
from medmm.reason.evidence import Observation, evidence_links, observe
from medmm.reason.inputs import IMAGE_FEATURES, NoduleObservation, ReasoningInputs
from medmm.reason.ontology import Ontology, load_ontology

__all__ = [
    "EVIDENCE_SOURCES",
    "MENTION_GROUPS",
    "NODE_DIM",
    "NODULE_FEATURES",
    "STUDY_DIM",
    "evidence_vocabulary",
    "node_features",
    "study_dim",
]

NODULE_FEATURES: tuple[str, ...] = (
    "count_log1p",
    "probability_sum",
    "max_diameter_per_30mm",
    "mean_diameter_per_30mm",
    "solid_sum",
    "part_solid_sum",
    "ground_glass_sum",
    "calcified_sum",
    "juxtapleural_count",
    "perifissural_count",
    "max_brock",
    "count_10mm_or_less",
    "count_over_20mm",
)
#: Report concept groups counted per region (a finding counts for the first group it is a kind of).
MENTION_GROUPS: tuple[str, ...] = (
    "urn:medmm:mass",
    "urn:medmm:part-solid-nodule",
    "urn:medmm:ground-glass-opacity",
    "urn:medmm:solid-nodule",
    "urn:medmm:calcified-nodule",
    "urn:medmm:popcorn-calcification",
    "urn:medmm:calcification",
    "urn:medmm:perifissural-nodule",
    "urn:medmm:juxtapleural-nodule",
    "urn:medmm:pulmonary-nodule",
    "urn:medmm:spiculated-margin",
    "urn:medmm:lobulated-margin",
    "urn:medmm:smooth-margin",
    "urn:medmm:cavitation",
    "urn:medmm:consolidation",
    "urn:medmm:emphysema",
    "urn:medmm:pleural-effusion",
    "urn:medmm:lymphadenopathy",
)
EVIDENCE_SOURCES = ("image", "report", "guideline")
"""Evidence sources, in the order of the study vector's evidence block (sources x vocabulary)."""


def evidence_vocabulary(onto: Ontology | None = None) -> tuple[str, ...]:
    """Evidence concepts that have links, in a fixed order (the study vector's layout)."""
    return evidence_links(onto).evidence_concepts


def _group(onto: Ontology, iri: str) -> int | None:
    for k, g in enumerate(MENTION_GROUPS):
        if onto.is_a(iri, g):
            return k
    return None


def _nodule_rows(nodules: Sequence[NoduleObservation]) -> np.ndarray:
    rows = np.zeros((len(NODE_NAMES), len(NODULE_FEATURES)), np.float32)
    members: dict[int, list[NoduleObservation]] = {}
    for n in nodules:
        if n.lobe in LOBE_NAMES:
            members.setdefault(NODE_NAMES.index(n.lobe), []).append(n)
        if n.juxtapleural and n.lobe:
            pleura = "right_pleura_chest_wall" if n.lobe in RIGHT_LOBES else "left_pleura_chest_wall"
            members.setdefault(NODE_NAMES.index(pleura), []).append(n)
    for node, group in members.items():
        d = np.array([n.diameter_mm for n in group])
        tex = np.array([n.texture_probabilities for n in group])
        rows[node] = (
            np.log1p(len(group)),
            sum(n.probability for n in group),
            d.max() / 30.0,
            d.mean() / 30.0,
            *tex.sum(0),
            sum(n.calcification_probability for n in group),
            sum(n.juxtapleural for n in group),
            sum(n.perifissural for n in group),
            max((n.brock_probability or 0.0) for n in group),
            float((d <= 10).sum()),
            float((d > 20).sum()),
        )
    return rows


NODE_DIM = len(NODE_NAMES) + len(ANATOMY_FEATURES) + IMAGE_FEATURES + len(NODULE_FEATURES) + 2 * len(MENTION_GROUPS) + 1


def study_dim(n_vocabulary: int) -> int:
    """Study vector width.

    Evidence concepts x sources, unsited mentions (affirmed, negated, largest stated size),
    and whether a report was read.
    """
    return n_vocabulary * len(EVIDENCE_SOURCES) + 2 * len(MENTION_GROUPS) + 2


#: Study vector width for the shipped ontology.
STUDY_DIM = study_dim(len(evidence_vocabulary()))


def node_features(
    inputs: ReasoningInputs,
    onto: Ontology | None = None,
    observations: Sequence[Observation] | None = None,
    vocabulary: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Node rows and the study vector of one study.

    Args:
        inputs: The study's reasoning inputs.
        onto: Ontology (default: shipped).
        observations: Precomputed :func:`~medmm.reason.evidence.observe` output.
        vocabulary: Evidence concepts of the study vector, in order (a trained model's, from
            its card; default :func:`evidence_vocabulary` of ``onto``).

    Returns:
        ``(x, study)``.

    Shapes:
        - x: ``(9, NODE_DIM)`` (the study vector is not included; models append it)
        - study: ``(STUDY_DIM,)`` (for the shipped ontology's vocabulary)
    """
    onto = onto or load_ontology()
    obs = observe(inputs, onto) if observations is None else observations
    n_nodes = len(NODE_NAMES)
    one_hot = np.eye(n_nodes, dtype=np.float32)
    image = (
        np.zeros((n_nodes, IMAGE_FEATURES), np.float32)
        if inputs.image_features is None
        else np.asarray(inputs.image_features, np.float32)
    )
    g = len(MENTION_GROUPS)
    sited = np.zeros((n_nodes, 2 * g + 1), np.float32)  # last column: largest stated size / 30 mm
    unsited = np.zeros(2 * g + 1, np.float32)
    for f in inputs.findings:
        if f.historical:
            continue
        k = _group(onto, f.concept)
        if k is None:
            continue
        col = k + (g if f.negated else 0)
        size = 0.0 if f.negated or not f.size_mm else min(float(f.size_mm), 60.0) / 30.0
        if f.site in LOBE_NAMES:
            rows: slice | list[int] = [NODE_NAMES.index(f.site)]
        elif f.site == "bilateral":
            rows = slice(0, len(LOBE_NAMES))
        else:
            unsited[col] += 1.0
            unsited[-1] = max(unsited[-1], size)
            continue
        sited[rows, col] += 1.0
        sited[rows, -1] = np.maximum(sited[rows, -1], size)
    x = np.concatenate(
        [one_hot, np.asarray(inputs.anatomy_features, np.float32), image, _nodule_rows(inputs.nodules), sited], axis=1
    )
    vocab = tuple(vocabulary) if vocabulary is not None else evidence_vocabulary(onto)
    index = {c: k for k, c in enumerate(vocab)}
    ev = np.zeros((len(EVIDENCE_SOURCES), len(vocab)), np.float32)
    for o in obs:
        k = index.get(o.concept)
        if k is not None:
            ev[EVIDENCE_SOURCES.index(o.source), k] = 1.0
    study = np.concatenate([ev.ravel(), np.minimum(unsited, 3.0), [float(inputs.has_report)]]).astype(np.float32)
    return x, study
