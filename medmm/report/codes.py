"""Coded concepts the exporters write (DICOM SR/SEG, FHIR).

Anatomy and finding descriptors come from the medmm ontology (``ontology/medmm.ttl``), so a
code changes in one place; concept names for measurements and evaluations are DICOM PS3.16
codes taken from pydicom's code dictionary (generated from the standard).

Each concept is a :class:`CodeTriple` (value, scheme designator, meaning), converted to
highdicom or FHIR objects by the writer that needs it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pydicom.sr.codedict import codes

from medmm.reason.ontology import CodeSystem, load_ontology
from medmm.types import NoduleTexture

__all__ = [
    "ABSENT",
    "AGREEMENT_VALUES",
    "CALCIFICATION_NAME",
    "CALCIFIED",
    "CENTER",
    "DIAMETER",
    "FHIR_SYSTEMS",
    "LOBE_CONCEPTS",
    "MEDMM_SCHEME",
    "NODULE",
    "NODULE_CATEGORY",
    "NOT_CALCIFIED",
    "PROBABILITY",
    "REPORT_AGREEMENT",
    "TEXTURE_CONCEPTS",
    "TEXTURE_NAME",
    "VOLUME",
    "CodeTriple",
    "anatomy_segment",
    "lobe_code",
    "ontology_code",
    "texture_code",
]


@dataclass(frozen=True)
class CodeTriple:
    """A code as DICOM writes it.

    Attributes:
        value: Code value, e.g. ``"27925004"``.
        scheme: Coding scheme designator (``"SCT"``, ``"DCM"``, ``"RADLEX"``, ``"UCUM"``).
        meaning: Code meaning.
    """

    value: str
    scheme: str
    meaning: str


def _dcm(code: object) -> CodeTriple:
    return CodeTriple(str(code.value), str(code.scheme_designator), str(code.meaning))  # type: ignore[attr-defined]


_SCHEMES = {CodeSystem.SNOMED_CT: "SCT", CodeSystem.RADLEX: "RADLEX", CodeSystem.DCM: "DCM"}

FHIR_SYSTEMS: dict[str, str] = {
    "SCT": "http://snomed.info/sct",
    "RADLEX": "http://radlex.org",  # RadLex's own system URI, as listed in HL7 terminology
    "DCM": "http://dicom.nema.org/resources/ontology/DCM",
    "UCUM": "http://unitsofmeasure.org",
}
"""FHIR ``Coding.system`` for each DICOM coding scheme designator."""

NODULE = _dcm(codes.SCT.Nodule)
NODULE_CATEGORY = _dcm(codes.SCT.MorphologicallyAbnormalStructure)
ANATOMY_CATEGORY = _dcm(codes.SCT.AnatomicalStructure)
DIAMETER = _dcm(codes.SCT.Diameter)
VOLUME = _dcm(codes.SCT.Volume)
PROBABILITY = _dcm(codes.DCM.Probability)
CENTER = _dcm(codes.DCM.Center)
TEXTURE_NAME = _dcm(codes.DCM.TextureDescriptor)
CALCIFICATION_NAME = _dcm(codes.DCM.CalcificationDescriptor)
CALCIFIED = _dcm(codes.SCT.PathologicCalcification)
NOT_CALCIFIED = _dcm(codes.SCT.NonCalcified)
ABSENT = _dcm(codes.SCT.Absent)

MEDMM_SCHEME = "99MEDMM"
"""Private coding scheme (PS3.3 8.2: designators beginning "99" are local) for the
report/image agreement, which no standard vocabulary names."""
REPORT_AGREEMENT = CodeTriple("report-agreement", MEDMM_SCHEME, "Agreement with the report")
AGREEMENT_VALUES: dict[str, CodeTriple] = {
    "confirmed": CodeTriple("confirmed", MEDMM_SCHEME, "Stated in the report and found in the image"),
    "not_found_in_image": CodeTriple(
        "not-found-in-image", MEDMM_SCHEME, "Stated in the report, not found in the image"
    ),
    "not_in_report": CodeTriple("not-in-report", MEDMM_SCHEME, "Found in the image, not stated in the report"),
}

LOBE_CONCEPTS: dict[str, str] = {
    "RUL": "urn:medmm:right-upper-lobe",
    "RML": "urn:medmm:right-middle-lobe",
    "RLL": "urn:medmm:right-lower-lobe",
    "LUL": "urn:medmm:left-upper-lobe",
    "LLL": "urn:medmm:left-lower-lobe",
}
TEXTURE_CONCEPTS: dict[NoduleTexture, str] = {
    NoduleTexture.SOLID: "urn:medmm:solid-nodule",
    NoduleTexture.PART_SOLID: "urn:medmm:part-solid-nodule",
    NoduleTexture.GROUND_GLASS: "urn:medmm:non-solid-nodule",
}
_LUNG_CONCEPTS = {"right lung": "urn:medmm:right-lung", "left lung": "urn:medmm:left-lung"}


@functools.cache
def ontology_code(iri: str) -> CodeTriple:
    """The concept's code for DICOM: SNOMED CT when the ontology has one, else RadLex.

    Raises:
        KeyError: The concept is unknown or carries neither code.
    """
    concept = load_ontology().concept(iri)
    for system in (CodeSystem.SNOMED_CT, CodeSystem.RADLEX, CodeSystem.DCM):
        for code in concept.codes:
            if code.system is system:
                return CodeTriple(code.code, _SCHEMES[system], concept.pref_label)
    raise KeyError(f"ontology concept {iri} has no SNOMED CT, RadLex or DCM code")


def lobe_code(lobe: str) -> CodeTriple | None:
    """Code of a lobe abbreviation (``"RUL"`` ...), or ``None`` for ``""`` (outside the lobes)."""
    return ontology_code(LOBE_CONCEPTS[lobe]) if lobe else None


def texture_code(texture: NoduleTexture | str) -> CodeTriple:
    """Code of a nodule attenuation class (solid / part-solid / non-solid)."""
    return ontology_code(TEXTURE_CONCEPTS[NoduleTexture(texture)])


def anatomy_segment(label: str) -> tuple[CodeTriple, CodeTriple]:
    """``(category, type)`` for a lung or lobe segment (``"right lung"``, ``"RUL"`` ...)."""
    iri = _LUNG_CONCEPTS.get(label) or LOBE_CONCEPTS[label]
    return ANATOMY_CATEGORY, ontology_code(iri)
