"""The ranked differential of one study: ontology evidence + region GNN.

:class:`Reasoner` loads the shipped GNN once and turns a study's
:class:`~medmm.reason.inputs.ReasoningInputs` into a :class:`~medmm.types.Differential`:

1. :func:`~medmm.reason.evidence.observe` lists what the study shows (image descriptors,
   the report's affirmed findings, the Brock band);
2. the ontology's evidence links give each diagnosis a summed log-likelihood ratio;
3. the GNN reads the region graph and adds its logit per diagnosis; the probability is the
   softmax of the sum over the ranked diagnoses, divided by the temperature fitted on the
   validation split (calibration; the ranking does not change);
4. each diagnosis lists its supporting and opposing evidence (concept, source, detail,
   weight, literature source), and each region its abnormality score.

Example:
    >>> reasoner = Reasoner()  # doctest: +SKIP
    >>> diff = reasoner.rank(result.reasoning_inputs)  # doctest: +SKIP
    >>> diff.diagnoses[0].label, diff.diagnoses[0].probability  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from medmm.anatomy.graph import NODE_NAMES, build_region_graph
from medmm.reason.evidence import DIFFERENTIAL, EvidenceTable, evidence_links, observe, ontology_log_odds
from medmm.reason.features import node_features
from medmm.reason.inputs import ReasoningInputs
from medmm.reason.ontology import Ontology, load_ontology
from medmm.reason.weights import load_reasoning
from medmm.types import DiagnosisScore, Differential, EvidenceItem, RegionScore

__all__ = ["Reasoner"]

_CODE_PREFERENCE = ("SNOMED CT", "ICD-10-CM", "RadLex", "DCM")


def _preferred_code(codes: tuple[Any, ...]) -> str:
    """``"SYSTEM:CODE"`` of the most interoperable code (SNOMED CT, then ICD-10-CM...), or ``""``."""
    if not codes:
        return ""
    best = min(codes, key=lambda c: _CODE_PREFERENCE.index(c.system) if c.system in _CODE_PREFERENCE else 99)
    return f"{best.system}:{best.code}"


class Reasoner:
    """Ranks diagnoses for a study.

    Args:
        weights: Reasoning weights (default: shipped ``reasoning_v3``).
        ontology: Ontology, e.g. with a site extension merged (default: shipped). Its
            evidence links set the prior; the GNN's study vector keeps the vocabulary it was
            trained with.

    Raises:
        CheckpointError: Weights missing, altered or not matching this medmm.
    """

    def __init__(self, weights: str | os.PathLike[str] | None = None, ontology: Ontology | None = None) -> None:
        self.gnn, self.card = load_reasoning(weights)
        self.ontology = ontology or load_ontology()
        self.table: EvidenceTable = evidence_links(self.ontology)
        self.vocabulary: tuple[str, ...] = tuple(self.card["architecture"]["evidence_vocabulary"])
        self.temperature = float(self.card["architecture"].get("temperature", 1.0))
        self._graph = build_region_graph(feature_dim=0)

    def describe(self) -> dict[str, str]:
        """Name, version and sha256 of the weights (for the result)."""
        return {k: str(self.card.get(k, "")) for k in ("name", "medmm_version", "sha256")}

    @torch.inference_mode()
    def rank(self, inputs: ReasoningInputs) -> Differential:
        """The differential of one study (see the module docstring)."""
        onto = self.ontology
        obs = observe(inputs, onto)
        x, study = node_features(inputs, onto, obs, self.vocabulary)
        prior = ontology_log_odds(obs, self.table, DIFFERENTIAL, onto)
        logits, region = self.gnn(
            torch.from_numpy(x),
            self._graph.edge_index,
            self._graph.edge_type,
            torch.zeros(len(NODE_NAMES), dtype=torch.long),
            torch.from_numpy(study)[None],
        )
        total = (logits[0].numpy().astype(np.float64) + prior) / self.temperature
        prob = np.exp(total - total.max())
        prob /= prob.sum()
        diagnoses = []
        for k in np.argsort(-prob, kind="stable"):
            iri = DIFFERENTIAL[int(k)]
            support, oppose = self._evidence_for(iri, obs)
            concept = onto.concept(iri)
            code = _preferred_code(concept.codes)
            diagnoses.append(
                DiagnosisScore(
                    concept=iri,
                    label=concept.pref_label,
                    code=code,
                    probability=round(float(prob[k]), 4),
                    ontology_log_odds=round(float(prior[k]), 3),
                    supporting=support,
                    opposing=oppose,
                )
            )
        regions = torch.sigmoid(region).numpy()
        reported = tuple(
            dict.fromkeys(
                f.label
                for f in inputs.findings
                if not f.negated and not f.historical and onto.is_a(f.concept, "urn:medmm:diagnosis")
            )
        )
        return Differential(
            diagnoses=tuple(diagnoses),
            regions=tuple(RegionScore(name, round(float(p), 4)) for name, p in zip(NODE_NAMES, regions, strict=True)),
            inputs=("image", "report") if inputs.has_report else ("image",),
            reported_diagnoses=reported,
            model=self.describe(),
        )

    def _evidence_for(
        self, diagnosis: str, observations: list[Any]
    ) -> tuple[tuple[EvidenceItem, ...], tuple[EvidenceItem, ...]]:
        support: list[EvidenceItem] = []
        oppose: list[EvidenceItem] = []
        for o in observations:
            for iri in (o.concept, *sorted(self.ontology.ancestors(o.concept))):
                for link in self.table.for_evidence(iri):
                    if link.diagnosis != diagnosis:
                        continue
                    item = EvidenceItem(o.concept, o.label, o.source, o.detail, link.log_lr, link.basis, link.source)
                    (support if link.log_lr > 0 else oppose).append(item)
        key = lambda e: -abs(e.log_lr)  # noqa: E731
        return tuple(sorted(support, key=key)), tuple(sorted(oppose, key=key))
