from __future__ import annotations

import json
from pathlib import Path

import pytest

from medmm.cli import main
from medmm.synth import SeriesTemplate, write_ct_series
from medmm.types import Volume


def test_info_prints_series_and_skipped_files(tmp_path: Path, small_ct: Volume, capsys: pytest.CaptureFixture) -> None:
    write_ct_series(small_ct, tmp_path / "s", SeriesTemplate(seed=1, series_description="chest lowdose"))
    (tmp_path / "readme.txt").write_text("hello")
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "chest lowdose" in out and "24x48x48" in out and "2, 0.8, 0.8" in out and "SPL" in out
    assert "readme.txt" in out and "not_dicom" in out
    assert "1 series, 1 skipped file(s)" in out


def test_info_json_reports_geometry_problems(tmp_path: Path, small_ct: Volume, capsys: pytest.CaptureFixture) -> None:
    files = write_ct_series(small_ct, tmp_path, seed=2)
    files[5].unlink()
    assert main(["info", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (series,) = doc["series"]
    assert series["slices"] == 23 and series["spacing_mm"] is None
    assert "missing slice" in series["problems"][0]


def test_info_on_missing_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["info", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_help_exits_cleanly() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0


def test_console_script_is_installed() -> None:
    import shutil
    import subprocess

    exe = shutil.which("medmm")
    if exe is None:
        pytest.skip("medmm is not installed as a console script (pip install -e .)")
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0
    assert "info" in done.stdout
