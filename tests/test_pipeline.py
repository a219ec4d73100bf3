"""The analysis spine and `medmm analyze` (anatomy stage so far)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medmm.cli import main
from medmm.io import load_series
from medmm.pipeline import analyze
from medmm.synth import SeriesTemplate, write_ct_series
from medmm.types import Volume
from tests.conftest import REPO_ROOT

SAMPLE_NORMAL = REPO_ROOT / "sample_dicom" / "case_normal"


def test_analyze_returns_only_the_stages_that_ran() -> None:
    result = analyze(load_series(SAMPLE_NORMAL / "dicom"), report_text="No nodules.")
    assert result.stages == ("anatomy",)
    assert result.lungs is not None
    assert 1000 < result.lungs.right_volume_ml < 6000
    assert set(result.lungs.lobe_methods) == {"RUL", "RML", "RLL", "LUL", "LLL"}
    assert any("report-text stage is not built" in w for w in result.warnings)
    doc = result.to_dict()
    assert "nodules" not in doc  # detection is not built: absent, not faked
    json.dumps(doc)


def test_cli_analyze_isolates_a_bad_series(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "in"
    shutil.copytree(SAMPLE_NORMAL / "dicom", data / "chest")
    _, y, x = np.mgrid[0:12, 0:64, 0:64]
    water = np.where((y - 32) ** 2 + (x - 32) ** 2 < 28**2, 0.0, -1000.0).astype(np.float32)
    write_ct_series(Volume.from_spacing(water, (5.0, 4.0, 4.0)), data / "phantom", SeriesTemplate(seed=77))
    out = tmp_path / "out"
    assert main(["analyze", str(data), "-o", str(out)]) == 1  # one series failed
    text = capsys.readouterr().out
    assert "no lungs found" in text
    results = list(out.glob("*/result.json"))
    assert len(results) == 1
    doc = json.loads(results[0].read_text())
    assert doc["stages"] == ["anatomy"]
    assert results[0].parent.name == doc["series"]["series_uid"]
    assert not list(out.rglob(".tmp-*"))


def test_cli_analyze_missing_path(tmp_path: Path) -> None:
    assert main(["analyze", str(tmp_path / "nope")]) == 2
