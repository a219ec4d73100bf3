"""medmm analyze --deidentify: exports carry pseudonyms, the profile's markers, and no identifier."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from medmm.cli import main
from medmm.report.deidentify import Deidentifier
from tests.batch.conftest import copy_series

NAME, PATIENT_ID, BIRTH = "Quorble^Maxine", "HOSP-7781234", "19480229"
INSTITUTION, DESCRIPTION, ACCESSION = "St Elsewhere Hospital", "CHEST Dr Quorble protocol", "ACC778812"


def _texts(folder: Path) -> dict[str, str]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in (".json", ".html", ".csv", ".jsonl", ".txt"):
            out[str(path.relative_to(folder))] = path.read_text(errors="replace")
        elif path.is_file() and path.suffix == ".dcm":
            out[str(path.relative_to(folder))] = str(pydicom.dcmread(path))
    return out


@pytest.mark.slow
def test_deidentified_exports_hold_no_identifier_and_stay_consistent(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "in"
    series_uid = copy_series("case_spiculated", src, "deid")
    study_uid = ""
    for path in src.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PATIENT_ID, BIRTH
        ds.InstitutionName, ds.SeriesDescription, ds.AccessionNumber = INSTITUTION, DESCRIPTION, ACCESSION
        study_uid = ds.StudyInstanceUID
        ds.save_as(path, enforce_file_format=True)
    monkeypatch.setenv("MEDMM_DEID_KEY", "test-key")
    out = tmp_path / "out"
    assert main(["analyze", str(src), "-o", str(out), "--deidentify", "-q"]) == 0
    deid = Deidentifier("test-key")
    pseudo = deid.uid(series_uid)
    assert (out / pseudo / "sr.dcm").is_file(), "the output folder is named by the pseudonym UID"
    texts = _texts(out)
    identifiers = [
        NAME,
        "Quorble",
        "Maxine",
        PATIENT_ID,
        BIRTH,
        INSTITUTION,
        DESCRIPTION,
        ACCESSION,
        series_uid,
        study_uid,
    ]
    leaks = {name: [i for i in identifiers if i in text] for name, text in texts.items()}
    assert not {k: v for k, v in leaks.items() if v}, "identifiers in de-identified exports"
    assert str(src) not in "".join(texts.values()), "source paths in de-identified exports"
    for kind in ("sr.dcm", "seg.dcm"):
        ds = pydicom.dcmread(out / pseudo / kind)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.StudyInstanceUID == deid.uid(study_uid)
        assert "PatientAge" not in ds and "SeriesDescription" not in ds.get("ReferencedSeriesSequence", [{}])[0]
    sr = pydicom.dcmread(out / pseudo / "sr.dcm")
    refs = {
        str(r.ReferencedSOPInstanceUID)
        for item in sr.CurrentRequestedProcedureEvidenceSequence
        for s in item.ReferencedSeriesSequence
        for r in s.ReferencedSOPSequence
    }
    assert refs and all(r.startswith("2.") for r in refs)  # references point at pseudonym instances
    fhir = json.loads((out / pseudo / "fhir.json").read_text())
    assert PATIENT_ID not in json.dumps(fhir)
    result = json.loads((out / pseudo / "result.json").read_text())
    assert result["series"]["series_uid"] == pseudo and result["series"]["source_files"] == []
    # Without --deidentify the identifiers are kept (exports link to the patient).
    plain = tmp_path / "plain"
    assert main(["analyze", str(src), "-o", str(plain), "--format", "sr,fhir", "-q"]) == 0
    assert PATIENT_ID in (plain / series_uid / "fhir.json").read_text()
    assert pydicom.dcmread(plain / series_uid / "sr.dcm").PatientName == NAME
