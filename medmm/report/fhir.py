"""FHIR R4 export: one ``Bundle`` per result.

The bundle holds a ``DiagnosticReport``, one ``Observation`` per nodule, the
``ImagingStudy``, the ``Patient`` and the algorithm as a ``Device``.

Built and validated with the ``fhir.resources.R4B`` models (R4B is the R4-compatible release
``fhir.resources`` ships; its default package is R5). The Observations follow the HL7
*DICOM SR to FHIR Resource Mapping* IG where it applies to R4: the TID 1500 finding type is
``Observation.code``, the finding site ``bodySite``, measurements and qualitative
evaluations are components (UCUM quantities, coded values), the tracking UID is an
``identifier`` (``urn:dicom:uid``), the study is ``derivedFrom`` and ``partOf`` is left out.
When a report was read, the report/image agreement is a ``note`` on each nodule's
Observation and a sentence of the ``DiagnosticReport.conclusion`` (with every report
finding not found in the image, in words).
R4 has no image-region type, so the centre is a ``component`` (DCM 111010 *Center*) whose
string value is ``"x y z"`` in LPS mm. Every resource is ``preliminary``: an algorithm's
output that no person has verified.

Example:
    >>> bundle = build_fhir_bundle(result, patient_id="12345")       # doctest: +SKIP
    >>> bundle.model_dump_json()                                      # doctest: +SKIP
"""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from medmm.report import codes as mc
from medmm.report.identity import MANUFACTURER, derived_uid, software_version
from medmm.report.seg import tracking_uid
from medmm.types import AnalysisResult, DetectedNodule

__all__ = ["build_fhir_bundle"]

_DICOM_UID = "urn:dicom:uid"
_LOINC = "http://loinc.org"
_V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
_IMAGING_CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "imaging",
            "display": "Imaging",
        }
    ]
}


def _coding(c: mc.CodeTriple) -> dict[str, str]:
    return {"system": mc.FHIR_SYSTEMS[c.scheme], "code": c.value, "display": c.meaning}


def _concept(c: mc.CodeTriple) -> dict[str, Any]:
    return {"coding": [_coding(c)], "text": c.meaning}


def _urn(result: AnalysisResult, *parts: str) -> str:
    """A stable ``urn:uuid`` for a bundle entry (UUID from the derived DICOM UID)."""
    return "urn:uuid:" + str(uuid.UUID(int=int(derived_uid(result, "fhir", *parts).split(".")[-1])))


def _quantity(value: float, code: str, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": mc.FHIR_SYSTEMS["UCUM"], "code": code}


def _guidance_components(result: AnalysisResult, index: int) -> list[dict[str, Any]]:
    """Lung-RADS category and Brock probability of a nodule, when the guidelines stage ran.

    No standard code is used for these (none verified for Lung-RADS v2022 categories), so the
    component codes carry text only, which FHIR allows.
    """
    g = result.guidelines
    if g is None or index >= len(g.nodules):
        return []
    n = g.nodules[index]
    return [
        {"code": {"text": "Lung-RADS v2022 category (baseline screen assumed)"}, "valueString": n.lung_rads},
        {
            "code": {"text": "Brock (PanCan) probability of malignancy"},
            "valueQuantity": _quantity(n.brock_probability, "1", "1"),
        },
    ]


def _observation(result: AnalysisResult, index: int, nodule: DetectedNodule, refs: dict[str, str]) -> dict[str, Any]:
    x, y, z = nodule.center_lps_mm
    components: list[dict[str, Any]] = [
        {"code": _concept(mc.DIAMETER), "valueQuantity": _quantity(nodule.diameter_mm, "mm", "mm")},
        {"code": _concept(mc.VOLUME), "valueQuantity": _quantity(nodule.volume_mm3, "mm3", "mm3")},
        {"code": _concept(mc.PROBABILITY), "valueQuantity": _quantity(nodule.probability, "1", "1")},
        {"code": _concept(mc.TEXTURE_NAME), "valueCodeableConcept": _concept(mc.texture_code(nodule.texture))},
        {
            "code": _concept(mc.CALCIFICATION_NAME),
            "valueCodeableConcept": _concept(mc.CALCIFIED if nodule.calcification == "calcified" else mc.NOT_CALCIFIED),
        },
        {"code": _concept(mc.CENTER), "valueString": f"{x:.2f} {y:.2f} {z:.2f}"},
        *_guidance_components(result, index),
    ]
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": _DICOM_UID, "value": f"urn:oid:{tracking_uid(result, index)}"}],
        "status": "preliminary",
        "category": [_IMAGING_CATEGORY],
        "code": _concept(mc.NODULE),
        "subject": {"reference": refs["patient"]},
        "device": {"reference": refs["device"]},
        "derivedFrom": [{"reference": refs["study"]}],
        "component": components,
        "note": [{"text": f"Nodule {index + 1}: centre (x y z) in DICOM patient coordinates (LPS), mm."}],
    }
    if result.report is not None and result.report.agreement is not None:
        for a in result.report.agreement:
            if a.nodule == index:
                obs["note"].append({"text": f"Report agreement: {a.status.replace('_', ' ')} ({a.detail})."})
    site = mc.lobe_code(nodule.lobe)
    if site is not None:
        obs["bodySite"] = _concept(site)
    return obs


def _agreement_sentence(result: AnalysisResult) -> str:
    r = result.report
    if r is None or r.agreement is None:
        return ""
    counts = {k: sum(a.status == k for a in r.agreement) for k in ("confirmed", "not_found_in_image", "not_in_report")}
    text = (
        f" Report/image agreement: {counts['confirmed']} report finding(s) confirmed, "
        f"{counts['not_found_in_image']} not found in the image, {counts['not_in_report']} detected nodule(s) "
        "not in the report."
    )
    missing = [a.detail for a in r.agreement if a.status == "not_found_in_image"]
    return text + "".join(f" Not found in image: {d}." for d in missing)


_CODE_SYSTEM_URIS = {"SNOMED CT": "http://snomed.info/sct", "ICD-10-CM": "http://hl7.org/fhir/sid/icd-10-cm"}


def _differential(result: AnalysisResult) -> tuple[str, list[dict[str, Any]]]:
    """Conclusion sentence and ``conclusionCode`` s (diagnoses with probability >= 0.25, at most 3)."""
    d = result.differential
    if d is None:
        return "", []
    from medmm.reason.ontology import load_ontology

    onto = load_ontology()
    top = ", ".join(f"{x.label} {100 * x.probability:.0f} %" for x in d.diagnoses[:3])
    sentence = f" Differential (medmm, from {' + '.join(d.inputs)}): {top}."
    codes = []
    for x in [x for x in d.diagnoses if x.probability >= 0.25][:3]:
        codings = [
            {"system": _CODE_SYSTEM_URIS[c.system], "code": c.code, "display": x.label}
            for c in onto.concept(x.concept).codes
            if c.system in _CODE_SYSTEM_URIS
        ]
        codes.append({"coding": codings, "text": x.label} if codings else {"text": x.label})
    return sentence, codes


def build_fhir_bundle(result: AnalysisResult, *, patient_id: str | None = None, issued: str | None = None) -> Bundle:
    """The result as a FHIR R4 collection ``Bundle`` (validated by the R4B models).

    Args:
        result: Analysis result.
        patient_id: DICOM PatientID, written as the Patient's identifier when given.
        issued: ``DiagnosticReport.issued`` (ISO 8601 with time zone); left out when ``None``
            so that the same result always gives the same bundle.

    Raises:
        pydantic.ValidationError: A resource does not validate (a bug; please report it).
    """
    refs = {name: _urn(result, name) for name in ("patient", "device", "study", "report")}
    series = result.series
    patient: dict[str, Any] = {"resourceType": "Patient"}
    if patient_id:
        patient["identifier"] = [{"value": patient_id}]
    device = {
        "resourceType": "Device",
        "manufacturer": MANUFACTURER,
        "deviceName": [{"name": "medmm", "type": "model-name"}],
        "version": [{"value": software_version()}],
        "note": [{"text": "Research software; not for clinical use."}],
    }
    if result.detector:
        device["deviceName"].append({"name": result.detector.get("name", ""), "type": "other"})  # type: ignore[attr-defined]
    study: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "status": "available",
        "subject": {"reference": refs["patient"]},
        "series": [
            {
                "uid": series.series_uid,
                "modality": {
                    "system": mc.FHIR_SYSTEMS["DCM"],
                    "code": series.modality or "CT",
                },
                "numberOfInstances": len(series.source_files) or None,
                **({"description": series.series_description[:1024]} if series.series_description else {}),
            }
        ],
    }
    if series.study_uid:
        study["identifier"] = [{"system": _DICOM_UID, "value": f"urn:oid:{series.study_uid}"}]
    if study["series"][0]["numberOfInstances"] is None:
        del study["series"][0]["numberOfInstances"]
    observations = [_observation(result, i, n, refs) for i, n in enumerate(result.nodules or ())]
    obs_refs = [_urn(result, "observation", str(i)) for i in range(len(observations))]
    count = len(observations)
    if result.nodules is None:
        conclusion = "Nodule detection did not run."
    elif count == 0:
        conclusion = f"No lung nodule at or above probability {result.nodule_threshold}."
    else:
        largest = max(result.nodules, key=lambda n: n.diameter_mm)
        conclusion = (
            f"{count} lung nodule(s) at or above probability {result.nodule_threshold}; largest "
            f"{largest.diameter_mm:.1f} mm{' in ' + largest.lobe if largest.lobe else ''}."
        )
    if result.guidelines is not None:
        g = result.guidelines
        conclusion += f" Lung-RADS v2022 {g.lung_rads} (baseline screen assumed)."
        if g.fleischner:
            conclusion += f" Fleischner 2017, if incidental: {g.fleischner}"
    conclusion += _agreement_sentence(result)
    differential, conclusion_codes = _differential(result)
    conclusion += differential
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "status": "preliminary",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD", "display": "Radiology"}
                ]
            }
        ],
        "code": {"coding": [{"system": _LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}]},
        "subject": {"reference": refs["patient"]},
        "imagingStudy": [{"reference": refs["study"]}],
        "result": [{"reference": r} for r in obs_refs],
        "conclusion": conclusion + " Produced by medmm (research software, not for clinical use).",
    }
    if conclusion_codes:
        report["conclusionCode"] = conclusion_codes
    if issued:
        report["issued"] = issued
    entries = [
        {"fullUrl": refs["report"], "resource": report},
        *({"fullUrl": u, "resource": o} for u, o in zip(obs_refs, observations, strict=True)),
        {"fullUrl": refs["study"], "resource": study},
        {"fullUrl": refs["patient"], "resource": patient},
        {"fullUrl": refs["device"], "resource": device},
    ]
    return Bundle.model_validate({"resourceType": "Bundle", "type": "collection", "entry": entries})
