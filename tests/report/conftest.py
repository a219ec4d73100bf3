"""One real analysis of a committed sample case, exported once for the report tests."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from medmm.io import load_series
from medmm.pipeline import analyze
from medmm.report import ExportReport, export_result, series_folder
from medmm.types import AnalysisResult, Volume
from tests.conftest import REPO_ROOT

SAMPLE_CASE = REPO_ROOT / "sample_dicom" / "case_metastases" / "dicom"


@dataclass
class Exported:
    """A result, its volume and what export_result wrote."""

    result: AnalysisResult
    volume: Volume
    report: ExportReport
    root: Path

    @property
    def folder(self) -> Path:
        return self.report.folder


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """case_metastases (four nodules, report leaves one out) analyzed with its report and
    exported in every format, lobes in the SEG."""
    volume = load_series(SAMPLE_CASE)
    result = analyze(volume, report_text=(SAMPLE_CASE.parent / "report.txt").read_text(encoding="utf-8"))
    assert result.nodules is not None and len(result.nodules) >= 2, "fixture needs a case with nodules"
    root = tmp_path_factory.mktemp("export")
    report = export_result(result, series_folder(root, result), volume=volume, seg_lobes=True)
    assert report.ok, report.failed
    return Exported(result, volume, report, root)


def dciodvfy_errors(path: Path) -> list[str]:
    """Lines dciodvfy reports as errors for a file (skips when dicom3tools is absent)."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (Debian dicom3tools) is not installed; .ci/run installs it")
    proc = subprocess.run([exe, "-new", str(path)], capture_output=True, text=True, timeout=120, check=False)
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]
