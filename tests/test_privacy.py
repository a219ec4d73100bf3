"""No patient identifier or report text reaches the logs by default; --log-phi lets them through."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from medmm.privacy import PhiFilter, register_phi, withheld
from tests.batch.conftest import copy_series
from tests.conftest import REPO_ROOT

NAME = "Zyxwabc^Qwertina^Mavis"
PATIENT_ID = "PID-98765432"
BIRTH_DATE = "19510317"
OTHER_ID = "MRN-55501234"
REPORT = (
    "Comparison: prior chest CT of Qwertina Zyxwabc, 2019.\n"
    "There is a 9 mm spiculated nodule in the right upper lobe.\n"
    "Glorpified zantharic opacity in the left lower lobe, of uncertain nature.\n"
)
PHI_STRINGS = [
    NAME,
    "Zyxwabc",
    "Qwertina",
    "Qwertina Zyxwabc",
    PATIENT_ID,
    BIRTH_DATE,
    "1951-03-17",
    OTHER_ID,
    "Glorpified zantharic",
    "zantharic opacity",
    "prior chest CT of",
    "spiculated nodule in the right upper lobe",
]


@pytest.fixture(scope="module")
def phi_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("phi")
    series = root / "dicom"
    copy_series("case_spiculated", series, "phi-study")
    for path in series.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PATIENT_ID, BIRTH_DATE
        ds.OtherPatientIDs = OTHER_ID
        ds.save_as(path, enforce_file_format=True)
    # A damaged copy of one file: its reading errors must not quote identifiers either.
    first = sorted(series.glob("*.dcm"))[0]
    (root / "broken").mkdir()
    (root / "broken" / "cut.dcm").write_bytes(first.read_bytes()[:900])
    report = root / "report.txt"
    report.write_text(REPORT)
    return root, report


def _run(root: Path, report: Path, out: Path, *extra: str) -> str:
    cmd = [sys.executable, "-m", "medmm.cli", "-vv", *extra, "analyze", str(root), "-o", str(out)]
    cmd += ["--report", str(report), "--workers", "1"]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.mark.slow
def test_full_debug_log_holds_no_phi_and_log_phi_lets_it_through(phi_study: tuple[Path, Path], tmp_path: Path) -> None:
    root, report = phi_study
    log = _run(root, report, tmp_path / "out")
    assert log.count("DEBUG") >= 5 and "INFO" in log, "the run produced no debug log to check"
    leaked = [s for s in PHI_STRINGS if s.lower() in log.lower()]
    assert not leaked, f"PHI in the default debug log: {leaked}"
    assert "report text withheld" in log  # the report was logged, without its words
    # The exports keep the clinical identifiers they need (FHIR links to the patient).
    (series_dir,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert PATIENT_ID in (series_dir / "fhir.json").read_text()
    assert pydicom.dcmread(series_dir / "sr.dcm").PatientName == NAME
    # --log-phi shows them: the test above can fail.
    verbose = _run(root, report, tmp_path / "out2", "--log-phi")
    assert "zantharic" in verbose.lower()


def test_phi_filter_redacts_arguments_and_tracebacks() -> None:
    register_phi("Doe^Janeth", "ID-4242-77")
    record = logging.LogRecord(
        "medmm", logging.ERROR, __file__, 1, "patient %s (%s)", ("Janeth Doe", "ID-4242-77"), None
    )
    try:
        raise ValueError("bad PN 'Doe^Janeth'")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert PhiFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "Janeth" not in text and "4242" not in text and "[PHI]" in text
    assert "withheld, 11 characters" in withheld("hello world")
