"""Reasoning: ontology normalization and clinical guidelines (region GNN and differentials next).

* :func:`load_ontology` -> :class:`Ontology` with :meth:`Ontology.normalize`: any mention
  to a concept IRI, preferred label and codes (RadLex, SNOMED CT, ICD-10-CM, DICOM).
* :mod:`medmm.reason.guidelines`: Lung-RADS v2022, Fleischner 2017, Brock (PanCan).
"""

from medmm.reason.ontology import Code, CodeSystem, Concept, MatchKind, Normalized, Ontology, load_ontology

__all__ = ["Code", "CodeSystem", "Concept", "MatchKind", "Normalized", "Ontology", "load_ontology"]
