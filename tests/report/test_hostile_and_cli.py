"""Hostile header values name no file and escape no folder; `medmm report` rewrites exports."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pydicom
import pytest

from medmm.cli import main
from medmm.report.sources import safe_uid_name
from tests.report.conftest import SAMPLE_CASE, Exported

EXPORT_NAMES = {
    "result.json",
    "sr.dcm",
    "seg.dcm",
    "fhir.json",
    "report.html",
    "ct.nii.gz",
    "lungs.nii.gz",
    "lobes.nii.gz",
    "nodules.nii.gz",
    "labels.txt",
    "outputs.sha256",
}


@pytest.mark.parametrize(
    "uid", ["../../etc", "1.2.3/../../x", "1.2\x00.3", "1." + "2" * 80, "", "C:\\evil", "1.2.840.113619.2.55.3"]
)
def test_safe_uid_name_never_makes_a_path(uid: str) -> None:
    name = safe_uid_name(uid)
    assert re.fullmatch(r"[0-9.]{1,64}|series-[0-9a-f]{16}", name)
    assert name not in {".", ".."} and "/" not in name and "\\" not in name and "\x00" not in name


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning", "ignore:The value length:UserWarning")
def test_hostile_tag_values_write_nothing_outside_out(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "in" / "study"
    src.mkdir(parents=True)
    for f in sorted(SAMPLE_CASE.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SeriesInstanceUID = "../../etc"
        ds.SeriesDescription = "<script>alert('x')</script>" + "D" * 10_000
        ds.PatientName = "Ünïcødé^名前\x00../x"
        ds.InstitutionName = "../../../tmp/pwned\x00"
        ds.StudyDescription = "é" * 3000
        ds.save_as(src / f.name, enforce_file_format=True)
    before = _snapshot(tmp_path)
    out = tmp_path / "out"
    code = main(["analyze", str(tmp_path / "in"), "-o", str(out)])
    assert code == 1  # DICOM and FHIR exports refuse the invalid UID: reported, exit 1
    printed = capsys.readouterr().out
    assert "is not a valid DICOM UID" in printed
    after = _snapshot(tmp_path)
    new = after - before
    assert all(p.startswith("out") for p in new), sorted(p for p in new if not p.startswith("out"))
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 1 and re.fullmatch(r"series-[0-9a-f]{16}", folders[0].name)
    files = {p.name for p in folders[0].iterdir()}
    assert files <= EXPORT_NAMES and {"result.json", "report.html", "ct.nii.gz"} <= files
    assert not files & {"sr.dcm", "seg.dcm", "fhir.json"}
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]
    html = (folders[0] / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;" in html
    data = json.loads((folders[0] / "result.json").read_text(encoding="utf-8"))
    assert data["series"]["series_uid"] == "../../etc"  # recorded as read, never used as a path


@pytest.mark.slow
def test_cli_report_rewrites_exports_from_result_json(
    exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "series"
    shutil.copytree(exported.folder, folder)
    (folder / "sr.dcm").unlink()
    assert main(["report", str(folder / "result.json"), "--format", "sr,seg"]) == 0
    original = pydicom.dcmread(exported.folder / "sr.dcm")
    again = pydicom.dcmread(folder / "sr.dcm")
    assert again.SOPInstanceUID == original.SOPInstanceUID  # same result, same UIDs
    assert again.ContentSequence[-1].ContentSequence[0] == original.ContentSequence[-1].ContentSequence[0]
    # Without the label maps beside result.json, SEG cannot be made: a clear error, exit 2.
    os.remove(folder / "lobes.nii.gz")
    assert main(["report", str(folder / "result.json"), "--format", "seg", "-o", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
    assert main(["report", str(folder / "result.json"), "--format", "bogus"]) == 2
