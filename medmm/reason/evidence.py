"""Evidence: what a study shows, and how the ontology weighs it for each diagnosis.

* :func:`evidence_links` compiles the ``mm:EvidenceLink`` nodes of the ontology
  (``ontology/evidence.ttl``) into a table: evidence concept -> diagnosis -> natural-log
  likelihood ratio, with its basis (published / derived / assigned) and source.
* :func:`observe` turns a study's :class:`~medmm.reason.inputs.ReasoningInputs` into
  :class:`Observation` s -- a concept plus where it came from (``image``, ``report`` or
  ``guideline``) and the detail that triggered it. Image observations are study
  descriptors computed from the detections (nodule count, bilateral, lower-lobe
  predominance, the dominant nodule's size class, lobe and attenuation, perifissural,
  all calcified); report observations are the report's affirmed, current findings (its
  diagnosis statements are not evidence: the differential is medmm's own reading and is
  compared with the report's impression, not copied from it); the guideline observation is
  the Brock risk band of the most suspicious nodule (British Thoracic Society 10 % threshold,
  Callister et al., Thorax 2015).
* :func:`ontology_log_odds` sums the weights of the observed evidence per diagnosis (each
  concept counted once, whatever its sources) -- the ontology-only ranking, and the prior
  the trained models add their logits to.

Example:
    >>> onto = load_ontology()
    >>> links = evidence_links(onto)
    >>> round(links.weight("urn:medmm:spiculated-margin", "urn:medmm:primary-lung-cancer"), 3)
    1.712
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rdflib
from rdflib.namespace import DCTERMS, RDF, RDFS

from medmm.anatomy.regions import RIGHT_LOBES
from medmm.errors import OntologyError
from medmm.reason.inputs import NoduleObservation, ReasoningInputs
from medmm.reason.ontology import MM, Ontology, load_ontology

__all__ = [
    "DIFFERENTIAL",
    "EvidenceLink",
    "EvidenceTable",
    "Observation",
    "evidence_links",
    "observe",
    "ontology_log_odds",
]

#: The diagnoses ranked by the differential, in the model's output order (those the
#: synthetic generator teaches; see :mod:`medmm.synth.cases`).
DIFFERENTIAL: tuple[str, ...] = (
    "urn:medmm:primary-lung-cancer",
    "urn:medmm:lung-adenocarcinoma",
    "urn:medmm:lung-metastasis",
    "urn:medmm:granuloma",
    "urn:medmm:pulmonary-hamartoma",
    "urn:medmm:intrapulmonary-lymph-node",
    "urn:medmm:indeterminate-nodule",
    "urn:medmm:no-abnormality",
)
_BASES = frozenset({"published", "derived", "assigned"})
_LOWER = frozenset({"RLL", "LLL"})
_UPPER = frozenset({"RUL", "LUL"})
#: Brock probability at which the BTS guideline recommends PET-CT (Callister et al. 2015).
BROCK_HIGH = 0.10


@dataclass(frozen=True)
class EvidenceLink:
    """One compiled evidence link.

    Attributes:
        evidence: Evidence concept IRI.
        diagnosis: Diagnosis concept IRI.
        log_lr: Natural-log likelihood ratio (> 0 supports, < 0 weighs against).
        basis: ``"published"``, ``"derived"`` or ``"assigned"``.
        source: The source's label (citation).
        comment: How the number was read or derived, if said.
    """

    evidence: str
    diagnosis: str
    log_lr: float
    basis: str
    source: str
    comment: str = ""


class EvidenceTable:
    """Evidence links indexed by evidence concept (dictionary lookups only).

    Args:
        links: The links.
    """

    def __init__(self, links: Sequence[EvidenceLink]) -> None:
        self.links: tuple[EvidenceLink, ...] = tuple(links)
        self._by_evidence: dict[str, list[EvidenceLink]] = {}
        for link in self.links:
            self._by_evidence.setdefault(link.evidence, []).append(link)

    def __len__(self) -> int:
        return len(self.links)

    def for_evidence(self, iri: str) -> tuple[EvidenceLink, ...]:
        """Links whose evidence is ``iri``."""
        return tuple(self._by_evidence.get(iri, ()))

    def weight(self, evidence: str, diagnosis: str) -> float:
        """Summed log-LR of ``evidence`` for ``diagnosis`` (0 when unlinked)."""
        return sum(link.log_lr for link in self._by_evidence.get(evidence, ()) if link.diagnosis == diagnosis)

    @property
    def evidence_concepts(self) -> tuple[str, ...]:
        """Every evidence concept with a link, sorted."""
        return tuple(sorted(self._by_evidence))


@dataclass(frozen=True)
class Observation:
    """A concept observed in a study.

    Attributes:
        concept: Concept IRI.
        label: Its preferred label.
        source: ``"image"``, ``"report"`` or ``"guideline"``.
        detail: What triggered it, e.g. ``"RUL 14.2 mm solid nodule"``.
    """

    concept: str
    label: str
    source: str
    detail: str


def evidence_links(onto: Ontology | None = None) -> EvidenceTable:
    """The ontology's evidence links, compiled and checked.

    Raises:
        OntologyError: A link names an unknown concept, does not point at a diagnosis, or
            has a missing/out-of-range weight, basis or source (with the file and line).
    """
    return _compile_links(onto or load_ontology())


@functools.cache
def _compile_links(onto: Ontology) -> EvidenceTable:
    graph = onto.graph
    links = []
    for node in sorted(set(graph.subjects(RDF.type, MM.EvidenceLink)), key=str):
        name = str(node)
        evidence = _one(graph, node, MM.evidence, onto, name)
        diagnosis = _one(graph, node, MM.supports, onto, name)
        for iri, what in ((str(evidence), "evidence"), (str(diagnosis), "diagnosis")):
            try:
                onto.concept(iri)
            except KeyError:
                _fail(onto, name, f"evidence link {name} names unknown {what} concept {iri}")
        if not onto.is_a(str(diagnosis), "urn:medmm:diagnosis"):
            _fail(onto, name, f"evidence link {name} supports {diagnosis}, which is not a diagnosis")
        weight = _one(graph, node, MM.logLikelihoodRatio, onto, name)
        try:
            log_lr = float(weight)
        except (TypeError, ValueError):
            _fail(onto, name, f"evidence link {name} has a non-numeric weight {weight!r}")
        if not -6.0 <= log_lr <= 6.0:
            _fail(onto, name, f"evidence link {name} has weight {log_lr} outside [-6, 6] (natural-log LR)")
        basis = str(_one(graph, node, MM.weightBasis, onto, name))
        if basis not in _BASES:
            _fail(onto, name, f"evidence link {name} has weight basis {basis!r}, not one of {sorted(_BASES)}")
        source = _one(graph, node, DCTERMS.source, onto, name)
        label = next(iter(graph.objects(source, RDFS.label)), None)
        if label is None:
            _fail(onto, name, f"evidence link {name} cites {source}, which has no rdfs:label")
        comment = next(iter(graph.objects(node, RDFS.comment)), "")
        links.append(EvidenceLink(str(evidence), str(diagnosis), log_lr, basis, str(label), str(comment)))
    return EvidenceTable(links)


def _one(graph: rdflib.Graph, node: rdflib.term.Node, prop: rdflib.URIRef, onto: Ontology, name: str) -> Any:
    values = list(graph.objects(node, prop))
    if len(values) != 1:
        _fail(onto, name, f"evidence link {name} has {len(values)} values of {prop}, expected one")
    return values[0]


def _fail(onto: Ontology, name: str, message: str) -> None:
    local = name.rsplit(":", 1)[-1]
    path = line = None
    for f in onto.files:
        for n, text in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if local in text:
                path, line = f, n
                break
        if path is not None:
            break
    raise OntologyError(
        message + (f" (line {line})" if line else ""),
        path=path,
        hint="Fix the evidence link (see ontology/README.md, 'Evidence links').",
    )


# ---------------------------------------------------------------------------- observing


def _dominant(nodules: Sequence[NoduleObservation]) -> NoduleObservation | None:
    """The most suspicious nodule: the largest non-calcified one, else the largest."""
    if not nodules:
        return None
    pool = [n for n in nodules if not n.calcified] or list(nodules)
    return max(pool, key=lambda n: n.diameter_mm)


def _describe(n: NoduleObservation) -> str:
    calc = ", calcified" if n.calcified else ""
    return f"{n.lobe or 'lung'} {n.diameter_mm:.1f} mm {n.texture.replace('_', '-')} nodule{calc}"


_TEXTURE_CONCEPT = {
    "solid": "urn:medmm:solid-nodule",
    "part_solid": "urn:medmm:part-solid-nodule",
    "ground_glass": "urn:medmm:non-solid-nodule",
}


def observe(inputs: ReasoningInputs, onto: Ontology | None = None, *, emphysema_laa: float = 0.06) -> list[Observation]:
    """The study's observations, image first, then report, then guideline.

    Args:
        inputs: What the earlier stages found.
        onto: Ontology (default: shipped).
        emphysema_laa: Low-attenuation (< -950 HU) lung fraction above which emphysema is
            observed from the image (6 %, a common visual-score cut-off; Gevenois et al.,
            AJRCCM 1996 validated the -950 HU threshold).

    Returns:
        Observations; a concept can appear once per source.
    """
    onto = onto or load_ontology()
    out: list[Observation] = []
    seen: set[tuple[str, str]] = set()

    def add(iri: str, source: str, detail: str) -> None:
        if (iri, source) not in seen:
            seen.add((iri, source))
            out.append(Observation(iri, onto.concept(iri).pref_label, source, detail))

    nodules = inputs.nodules
    n = len(nodules)
    if n == 0:
        add("urn:medmm:nodule-count-none", "image", "no nodule above the detection threshold")
    elif n == 1:
        add("urn:medmm:nodule-count-one", "image", _describe(nodules[0]))
    elif n >= 3:
        add("urn:medmm:nodule-count-three-or-more", "image", f"{n} nodules")
    if n:
        sides = {("right" if x.lobe in RIGHT_LOBES else "left") for x in nodules if x.lobe}
        if len(sides) == 2:
            add("urn:medmm:nodules-bilateral", "image", "nodules in both lungs")
        lower = sum(x.lobe in _LOWER for x in nodules)
        if n >= 2 and lower > n / 2:
            add("urn:medmm:nodules-lower-lobe-predominant", "image", f"{lower} of {n} nodules in the lower lobes")
        if all(x.calcified for x in nodules):
            add("urn:medmm:all-nodules-calcified", "image", f"{n} calcified nodule(s)")
        if any(x.calcified for x in nodules):
            add("urn:medmm:calcified-nodule", "image", _describe(next(x for x in nodules if x.calcified)))
        for x in nodules:
            if x.perifissural and x.diameter_mm <= 10.0 and not x.calcified:
                add("urn:medmm:perifissural-nodule", "image", _describe(x) + " on a fissure")
            if x.juxtapleural and not x.calcified:
                add("urn:medmm:juxtapleural-nodule", "image", _describe(x) + " on the pleura")
        dom = _dominant(nodules)
        assert dom is not None
        d = dom.diameter_mm
        size = (
            "urn:medmm:nodule-diameter-10mm-or-less"
            if d <= 10.0
            else "urn:medmm:nodule-diameter-11-to-20mm"
            if d <= 20.0
            else "urn:medmm:nodule-diameter-21-to-30mm"
            if d <= 30.0
            else "urn:medmm:mass"
        )
        add(size, "image", _describe(dom))
        if dom.lobe in _UPPER:
            add("urn:medmm:nodule-upper-lobe", "image", _describe(dom))
        elif dom.lobe in _LOWER:
            add("urn:medmm:nodule-lower-lobe", "image", _describe(dom))
        if not dom.calcified:
            add(_TEXTURE_CONCEPT[dom.texture], "image", _describe(dom))
    lung_rows = [i for i in range(5) if inputs.anatomy_features[i, 0] > 0]
    if lung_rows:
        vol = inputs.anatomy_features[lung_rows, 0]
        laa = float((inputs.anatomy_features[lung_rows, 2] * vol).sum() / vol.sum())
        if laa > emphysema_laa:
            add("urn:medmm:emphysema", "image", f"{100 * laa:.0f} % of the lungs below -950 HU")
    for f in inputs.findings:
        if f.negated or f.historical or onto.is_a(f.concept, "urn:medmm:diagnosis"):
            continue
        add(f.concept, "report", f"'{f.text}'" + (f" ({f.site})" if f.site else ""))
    risks = [x.brock_probability for x in nodules if x.brock_probability is not None and not x.calcified]
    if risks:
        top = max(risks)
        add(
            "urn:medmm:brock-risk-high" if top >= BROCK_HIGH else "urn:medmm:brock-risk-low",
            "guideline",
            f"Brock {100 * top:.1f} % for the most suspicious nodule",
        )
    return out


def ontology_log_odds(
    observations: Sequence[Observation],
    table: EvidenceTable,
    diagnoses: Sequence[str] = DIFFERENTIAL,
    onto: Ontology | None = None,
) -> np.ndarray:
    """Summed evidence weight per diagnosis (each concept counted once, whatever its sources).

    A concept also carries the links of its broader concepts (centrilobular emphysema counts
    as emphysema).

    Shapes:
        Output: ``(len(diagnoses),)``.
    """
    onto = onto or load_ontology()
    concepts = set()
    for o in observations:
        concepts.add(o.concept)
        concepts.update(onto.ancestors(o.concept))
    index = {d: k for k, d in enumerate(diagnoses)}
    out = np.zeros(len(diagnoses), np.float32)
    for c in sorted(concepts):  # a fixed order: float sums must not depend on hash seeds
        for link in table.for_evidence(c):
            k = index.get(link.diagnosis)
            if k is not None:
                out[k] += link.log_lr
    return out
