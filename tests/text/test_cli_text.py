"""`medmm findings` on hostile text and `medmm localize` on bad input: clear messages, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medmm.cli import main


def test_findings_warns_about_control_characters_and_foreign_text(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    report = tmp_path / "r.txt"
    report.write_text("A 7 mm nodule\x00 in the left lower lobe.\x1b")
    assert main(["findings", str(report)]) == 0
    out = capsys.readouterr()
    rows = [json.loads(x) for x in out.out.splitlines()]
    assert rows and rows[0]["site"] == "LLL" and rows[0]["size_mm"] == 7.0
    assert "control character" in out.err
    report.write_text("Im rechten Oberlappen zeigt sich ein 8 mm großer solider Rundherd ohne Verkalkung. Kein Erguss.")
    assert main(["findings", str(report)]) == 0
    assert "does not look like English" in capsys.readouterr().err
    report.write_text("")
    assert main(["findings", str(report)]) == 0
    assert "empty" in capsys.readouterr().err


def test_findings_on_a_100_page_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    page = "Lungs: There is a 6 mm nodule in the right upper lobe. No pleural effusion. " * 40
    report = tmp_path / "long.txt"
    report.write_text(page * 100)  # ~300,000 characters
    assert main(["findings", str(report)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 2 * 40 * 100  # every mention of every page: nothing cut


def test_localize_missing_series_and_empty_phrase(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["localize", str(tmp_path / "nope"), "8 mm nodule"]) == 2
    assert "medmm localize" in capsys.readouterr().err
    assert main(["localize", str(tmp_path), "  \x00 "]) == 2
    assert "empty" in capsys.readouterr().err


def test_localize_prints_what_the_phrase_states_and_the_peaks(capsys: pytest.CaptureFixture) -> None:
    series = Path(__file__).resolve().parents[2] / "sample_dicom" / "case_metastases" / "dicom"
    if not series.is_dir():
        pytest.skip("sample_dicom/ is not in this checkout")
    phrase = "A 16 mm subpleural solid nodule in the left upper lobe."
    assert main(["localize", str(series), phrase]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stated"] == {"lobe": "LUL", "size_mm": 16.0, "descriptors": ["juxtapleural", "solid"]}
    assert out["peaks"] and len(out["peaks"][0]["point_lps_mm"]) == 3
