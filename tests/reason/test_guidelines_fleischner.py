"""Fleischner Society 2017: one test per cell of Table 1 (MacMahon et al., Radiology 2017;284:228-243)."""

from __future__ import annotations

import pytest

from medmm.reason.guidelines import (
    FleischnerExclusion,
    FollowUpWindow,
    PatientRisk,
    recommend_fleischner,
)
from medmm.types import NoduleTexture

LOW, HIGH = PatientRisk.LOW, PatientRisk.HIGH
W = FollowUpWindow

SOLID_CELLS = [
    # (diameter, multiple, risk, text, windows)
    (5.0, False, LOW, "No routine follow-up.", ()),
    (5.0, False, HIGH, "Optional CT at 12 months.", (W(12, 12, optional=True),)),
    (7.0, False, LOW, "CT at 6-12 months, then consider CT at 18-24 months.", (W(6, 12), W(18, 24, optional=True))),
    (7.0, False, HIGH, "CT at 6-12 months, then CT at 18-24 months.", (W(6, 12), W(18, 24))),
    (10.0, False, LOW, "Consider CT at 3 months, PET/CT, or tissue sampling.", (W(3, 3, optional=True),)),
    (10.0, False, HIGH, "Consider CT at 3 months, PET/CT, or tissue sampling.", (W(3, 3, optional=True),)),
    (5.0, True, LOW, "No routine follow-up.", ()),
    (5.0, True, HIGH, "Optional CT at 12 months.", (W(12, 12, optional=True),)),
    (7.0, True, LOW, "CT at 3-6 months, then consider CT at 18-24 months.", (W(3, 6), W(18, 24, optional=True))),
    (7.0, True, HIGH, "CT at 3-6 months, then CT at 18-24 months.", (W(3, 6), W(18, 24))),
    (10.0, True, LOW, "CT at 3-6 months, then consider CT at 18-24 months.", (W(3, 6), W(18, 24, optional=True))),
    (10.0, True, HIGH, "CT at 3-6 months, then CT at 18-24 months.", (W(3, 6), W(18, 24))),
]


@pytest.mark.parametrize(
    ("diameter_mm", "multiple", "risk", "text", "windows"),
    [pytest.param(*cell, id=f"{cell[0]}mm-{'multiple' if cell[1] else 'single'}-{cell[2]}") for cell in SOLID_CELLS],
)
def test_solid_cells(
    diameter_mm: float, multiple: bool, risk: PatientRisk, text: str, windows: tuple[FollowUpWindow, ...]
) -> None:
    rec = recommend_fleischner(diameter_mm, NoduleTexture.SOLID, multiple=multiple, risk=risk)
    assert rec.applicable
    assert rec.text == text
    assert rec.follow_up == windows


def test_ground_glass_single_small() -> None:
    rec = recommend_fleischner(5.0, NoduleTexture.GROUND_GLASS)
    assert rec.text == "No routine follow-up."
    assert rec.follow_up == ()


def test_ground_glass_single_large() -> None:
    rec = recommend_fleischner(6.0, NoduleTexture.GROUND_GLASS)
    assert rec.text.startswith("CT at 6-12 months to confirm persistence, then CT every 2 years until 5 years")
    assert rec.follow_up == (W(6, 12),)
    assert (rec.repeat_every_months, rec.repeat_until_months) == (24, 60)


def test_part_solid_single_small() -> None:
    rec = recommend_fleischner(5.0, NoduleTexture.PART_SOLID, solid_component_mm=2.0)
    assert rec.text == "No routine follow-up."


def test_part_solid_single_large() -> None:
    rec = recommend_fleischner(8.0, NoduleTexture.PART_SOLID, solid_component_mm=3.0)
    assert rec.text.startswith("CT at 3-6 months to confirm persistence")
    assert "annual CT should be performed for 5 years" in rec.text
    assert "highly suspicious" not in rec.text
    assert rec.follow_up == (W(3, 6),)
    assert (rec.repeat_every_months, rec.repeat_until_months) == (12, 60)


def test_part_solid_with_solid_component_6_mm_is_highly_suspicious() -> None:
    rec = recommend_fleischner(12.0, NoduleTexture.PART_SOLID, solid_component_mm=6.0)
    assert "highly suspicious" in rec.text


def test_multiple_subsolid_small() -> None:
    rec = recommend_fleischner(4.0, NoduleTexture.GROUND_GLASS, multiple=True)
    assert rec.text == "CT at 3-6 months. If stable, consider CT at 2 and 4 years."
    assert rec.follow_up == (W(3, 6), W(24, 24, optional=True), W(48, 48, optional=True))


def test_multiple_subsolid_large() -> None:
    rec = recommend_fleischner(7.0, NoduleTexture.PART_SOLID, multiple=True, solid_component_mm=2.0)
    assert rec.text == "CT at 3-6 months. Subsequent management based on the most suspicious nodule(s)."
    assert rec.follow_up == (W(3, 6),)


@pytest.mark.parametrize(
    ("diameter_mm", "cell"),
    [(5.4, "<6"), (5.5, "6-8"), (8.4, "6-8"), (8.5, ">8")],
)
def test_sizes_round_to_nearest_mm(diameter_mm: float, cell: str) -> None:
    rec = recommend_fleischner(diameter_mm, risk=LOW)
    assert f" {cell} mm" in rec.cell


@pytest.mark.parametrize(
    ("kwargs", "exclusion"),
    [
        ({"age_years": 34}, FleischnerExclusion.AGE_UNDER_35),
        ({"known_cancer": True}, FleischnerExclusion.KNOWN_CANCER),
        ({"immunosuppressed": True}, FleischnerExclusion.IMMUNOSUPPRESSED),
        ({"screening": True}, FleischnerExclusion.SCREENING),
    ],
)
def test_exclusions_are_explicit(kwargs: dict[str, object], exclusion: FleischnerExclusion) -> None:
    rec = recommend_fleischner(10.0, **kwargs)  # type: ignore[arg-type]
    assert not rec.applicable
    assert rec.exclusion is exclusion
    assert rec.follow_up == ()
    if exclusion is FleischnerExclusion.SCREENING:
        assert "Lung-RADS" in rec.text


def test_age_35_is_in_scope() -> None:
    assert recommend_fleischner(5.0, age_years=35, risk=LOW).applicable


def test_negative_diameter_rejected() -> None:
    with pytest.raises(ValueError, match="diameter_mm"):
        recommend_fleischner(-1.0)
