"""Reasoning: ontology normalization, clinical guidelines, evidence and the ranked differential.

* :func:`load_ontology` -> :class:`Ontology` with :meth:`Ontology.normalize`: any mention
  to a concept IRI, preferred label and codes (RadLex, SNOMED CT, ICD-10-CM, DICOM).
* :mod:`medmm.reason.guidelines`: Lung-RADS v2022, Fleischner 2017, Brock (PanCan).
* :func:`evidence_links` / :func:`observe`: the ontology's weighted evidence links and what
  a study shows (:mod:`medmm.reason.evidence`).
* :class:`Reasoner`: ontology evidence + region GNN -> :class:`~medmm.types.Differential`
  (:mod:`medmm.reason.differential`); trained by ``medmm train reasoning``
  (:mod:`medmm.reason.training`).
"""

from medmm.reason.ontology import Code, CodeSystem, Concept, MatchKind, Normalized, Ontology, load_ontology

_LAZY = {
    "DIFFERENTIAL": "medmm.reason.evidence",
    "evidence_links": "medmm.reason.evidence",
    "observe": "medmm.reason.evidence",
    "Reasoner": "medmm.reason.differential",
}


def __getattr__(name: str) -> object:
    # torch and torch-geometric load only when evidence or the ranker is wanted, so that
    # reading report text (`medmm findings`) stays quick to start.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medmm.reason' has no attribute {name!r}")


__all__ = [
    "DIFFERENTIAL",
    "Code",
    "CodeSystem",
    "Concept",
    "MatchKind",
    "Normalized",
    "Ontology",
    "Reasoner",
    "evidence_links",
    "load_ontology",
    "observe",
]
