"""The acquisition range a detector was trained on, and the warning for series outside it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from medmm.detect.detector import NoduleDetector
from medmm.detect.domain import case_spacing_mm, spacing_range, spacing_warnings
from medmm.detect.training_data import discover_cases
from medmm.io import load_series
from medmm.pipeline import analyze
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "sample_dicom"


def _card(pixel: tuple[float, float], slices: tuple[float, float] = (0.6, 3.0)) -> dict:
    return {"name": "det", "training_data": {"pixel_spacing_mm": list(pixel), "slice_spacing_mm": list(slices)}}


def test_series_within_or_just_past_the_trained_range_gets_no_warning() -> None:
    card = _card((0.6, 2.0))
    assert spacing_warnings((1.25, 0.7, 0.7), card) == []
    assert spacing_warnings((3.0, 2.15, 2.15), card) == []  # within the 10 % tolerance
    assert spacing_warnings((1.0, 0.3, 0.3), card) == []  # finer than trained: resampled to ~1 mm anyway


def test_coarser_pixels_and_slices_each_get_a_warning_naming_the_range() -> None:
    (warning,) = spacing_warnings((1.25, 2.8, 2.7), _card((0.6, 2.0)))
    assert "2.80 mm" in warning and "0.60-2.00 mm" in warning and "det" in warning
    both = spacing_warnings((5.0, 2.8, 2.8), _card((0.6, 2.0), (0.6, 3.0)))
    assert [w.split(" ")[0] for w in both] == ["in-plane", "slice"]


def test_a_card_without_the_range_gives_no_warning_and_an_ensemble_uses_the_union() -> None:
    assert spacing_warnings((5.0, 4.0, 4.0), {"name": "old"}) == []
    ensemble = {"name": "a+b", "members": [_card((0.6, 2.0)), _card((2.4, 3.5))]}
    assert spacing_warnings((2.5, 3.0, 3.0), ensemble) == []
    assert len(spacing_warnings((2.5, 4.0, 4.0), ensemble)) == 1
    assert spacing_warnings((2.5, 4.0, 4.0), {"members": [_card((0.6, 2.0)), {"name": "old"}]}) == []


def test_training_cases_spacing_is_read_from_headers() -> None:
    cases = {c.case_id.rsplit("_", 1)[-1]: c for c in discover_cases(SAMPLE)}
    pixel, slice_mm = case_spacing_mm(cases["normal"])
    volume = load_series(SAMPLE / "case_normal" / "dicom")
    assert slice_mm == pytest.approx(volume.spacing_mm[0], abs=1e-3)
    rng = spacing_range(list(cases.values()))
    assert rng["spacing_cases"] == 3
    assert rng["pixel_spacing_mm"][0] <= pixel <= rng["pixel_spacing_mm"][1]
    assert rng["slice_spacing_mm"] == [3.0, 3.0]
    assert spacing_range([]) == {}


def test_mhd_spacing_is_read_from_the_header(tmp_path: Path) -> None:
    mhd = tmp_path / "scan.mhd"
    mhd.write_text("ObjectType = Image\nNDims = 3\nElementSpacing = 0.7 0.68 2.5\nElementDataFile = scan.raw\n")

    class _Case:
        load = type("L", (), {"path": mhd})()

    assert case_spacing_mm(_Case()) == (0.7, 2.5)


def test_analyze_warns_when_the_series_is_coarser_than_the_detector_saw() -> None:
    detector = copy.copy(NoduleDetector())
    detector.card = {**detector.card, "training_data": {"pixel_spacing_mm": [0.5, 1.0]}}
    volume = load_series(SAMPLE / "case_normal" / "dicom")
    result = analyze(volume, detector=detector, align=False, reason=False)
    assert any("in-plane pixel spacing 2.80 mm is coarser" in w for w in result.warnings)
