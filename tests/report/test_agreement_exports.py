"""The report/image agreement in every export, and on the sample cases (issue 7 acceptance)."""

from __future__ import annotations

import json

import numpy as np
from pydicom import dcmread

from medmm.io import load_series
from medmm.pipeline import analyze
from medmm.report.fhir import build_fhir_bundle
from tests.conftest import REPO_ROOT
from tests.report.conftest import Exported


def test_metastases_report_leaves_a_nodule_out_and_medmm_says_so(exported: Exported) -> None:
    result = exported.result
    assert result.stages[-3:] == ("text", "fusion", "reasoning")
    report = result.report
    assert report is not None and report.agreement is not None
    truth = json.loads((REPO_ROOT / "sample_dicom" / "case_metastases" / "ground_truth.json").read_text())
    mentioned = {m["nodule_label"] for m in truth["report"]["mentions"] if m.get("nodule_label") is not None}
    left_out = [n for n in truth["nodules"] if n["label"] not in mentioned]
    assert len(left_out) == 1
    flagged = [a for a in report.agreement if a.status == "not_in_report"]
    centre, radius = np.array(left_out[0]["center_lps_mm"]), left_out[0]["diameter_mm"] / 2
    assert any(
        np.linalg.norm(np.subtract(result.nodules[a.nodule].center_lps_mm, centre)) <= radius + 5 for a in flagged
    )
    # the three reported nodules are confirmed, each by a different detection
    confirmed = [a for a in report.agreement if a.status == "confirmed" and a.nodule is not None]
    assert len({a.nodule for a in confirmed}) == 3
    # nodule sentences are grounded: a peak in the lungs' box and a support probability
    grounded = [f for f in report.findings if f.attention_peak_lps_mm is not None]
    assert grounded and all(0.0 <= f.image_support <= 1.0 for f in grounded)  # type: ignore[operator]
    # ... and point at the nodule they describe: 1 of the 3 described nodules here (the LLL
    # one). On this coarse 3.2 mm series the anatomy stage puts both RLL nodules in the RML
    # and RUL, so the stated-lobe prior cannot help, and the RLL sentences point at the
    # dominant LUL nodule the report leaves out (held-out pointing: docs, README)
    by_label = {n["label"]: n for n in truth["nodules"]}
    hits = set()
    for m in truth["report"]["mentions"]:
        if m.get("nodule_label") is None:
            continue
        nod = by_label[m["nodule_label"]]
        for f in grounded:
            if f.start <= m["start"] < f.end or m["start"] <= f.start < m["end"]:
                d = np.linalg.norm(np.subtract(f.attention_peak_lps_mm, nod["center_lps_mm"]))
                if d <= nod["diameter_mm"] / 2 + 5:
                    hits.add(nod["label"])
    assert len(hits) >= 1


def test_agreeing_sample_confirms_the_report_and_flags_only_detector_false_positives() -> None:
    case = REPO_ROOT / "sample_dicom" / "case_spiculated"
    result = analyze(load_series(case / "dicom"), report_text=(case / "report.txt").read_text(encoding="utf-8"))
    assert result.report is not None and result.report.agreement and result.nodules is not None
    items = result.report.agreement
    assert not [a for a in items if a.status == "not_found_in_image"]  # the stated nodule is found
    truth = json.loads((case / "ground_truth.json").read_text())["nodules"]
    for a in items:
        if a.status == "not_in_report":  # allowed only for a detection that is no true nodule
            centre = np.array(result.nodules[a.nodule].center_lps_mm)
            assert all(np.linalg.norm(centre - n["center_lps_mm"]) > n["diameter_mm"] / 2 + 5 for n in truth)


def test_agreement_is_in_every_export(exported: Exported) -> None:
    folder = exported.folder
    data = json.loads((folder / "result.json").read_text())
    statuses = {a["status"] for a in data["report"]["agreement"]}
    assert "not_in_report" in statuses and "confirmed" in statuses
    html = (folder / "report.html").read_text()
    assert "id='agreement'" in html and "not in report" in html and "id='report-findings'" in html
    conclusion = build_fhir_bundle(exported.result).entry[0].resource.conclusion
    assert "Report/image agreement" in conclusion and "not in the report" in conclusion
    sr = dcmread(folder / "sr.dcm")
    values = []

    def walk(items):  # type: ignore[no-untyped-def]
        for it in items:
            if it.ValueType == "CODE" and it.ConceptNameCodeSequence[0].CodeValue == "report-agreement":
                values.append(it.ConceptCodeSequence[0].CodeValue)
            if "ContentSequence" in it:
                walk(it.ContentSequence)

    walk(sr.ContentSequence)
    assert "not-in-report" in values and "confirmed" in values
