"""Lung-RADS v2022: one case per row of the assessment table (ACR, Nov 2022; Christensen et al. 2024)."""

from __future__ import annotations

import pytest

from medmm.reason.guidelines import (
    AirwayLevel,
    CystChange,
    CystWall,
    IncompleteReason,
    LungRadsCategory,
    LungRadsNodule,
    NoduleStatus,
    NoduleTexture,
    classify_lung_rads_nodule,
    classify_lung_rads_study,
    is_growth,
    lung_rads_management,
    mean_diameter_mm,
)

S, PS, GG = NoduleTexture.SOLID, NoduleTexture.PART_SOLID, NoduleTexture.GROUND_GLASS
BASE, NEW, GROW, STABLE = NoduleStatus.BASELINE, NoduleStatus.NEW, NoduleStatus.GROWING, NoduleStatus.STABLE
C = LungRadsCategory

ROWS = [
    # Category 1
    ("1 benign calcification", LungRadsNodule(12.0, S, BASE, benign_calcification_or_fat=True), C.C1),
    # Category 2
    ("2 juxtapleural <10 baseline", LungRadsNodule(9.9, S, BASE, juxtapleural=True), C.C2),
    ("2 juxtapleural <10 new", LungRadsNodule(8.0, S, NEW, juxtapleural=True), C.C2),
    ("2 solid <6 baseline", LungRadsNodule(5.9, S, BASE), C.C2),
    ("2 solid new <4", LungRadsNodule(3.9, S, NEW), C.C2),
    ("2 part-solid <6 total baseline", LungRadsNodule(5.9, PS, BASE, solid_component_mm=3.0), C.C2),
    ("2 GGN <30 baseline", LungRadsNodule(29.9, GG, BASE), C.C2),
    ("2 GGN <30 new", LungRadsNodule(20.0, GG, NEW), C.C2),
    ("2 GGN <30 growing", LungRadsNodule(25.0, GG, GROW), C.C2),
    ("2 GGN >=30 stable", LungRadsNodule(31.0, GG, STABLE), C.C2),
    ("2 airway subsegmental baseline", LungRadsNodule(5.0, S, BASE, airway=AirwayLevel.SUBSEGMENTAL), C.C2),
    ("2 airway subsegmental stable", LungRadsNodule(5.0, S, STABLE, airway=AirwayLevel.SUBSEGMENTAL), C.C2),
    ("2 category 3 stable at 6 months", LungRadsNodule(7.0, S, STABLE, prior_category=C.C3), C.C2),
    # Category 3
    ("3 solid 6 baseline", LungRadsNodule(6.0, S, BASE), C.C3),
    ("3 solid 7.9 baseline", LungRadsNodule(7.9, S, BASE), C.C3),
    ("3 solid new 4", LungRadsNodule(4.0, S, NEW), C.C3),
    ("3 solid new 5.9", LungRadsNodule(5.9, S, NEW), C.C3),
    ("3 part-solid >=6 solid <6 baseline", LungRadsNodule(10.0, PS, BASE, solid_component_mm=5.9), C.C3),
    ("3 part-solid new <6 total", LungRadsNodule(5.5, PS, NEW, solid_component_mm=2.0), C.C3),
    ("3 GGN >=30 baseline", LungRadsNodule(30.0, GG, BASE), C.C3),
    ("3 GGN >=30 new", LungRadsNodule(35.0, GG, NEW), C.C3),
    (
        "3 thick-walled cyst growing cystic component",
        LungRadsNodule(20.0, S, GROW, cyst=CystWall.THICK_WALLED, cyst_change=CystChange.GROWING_CYSTIC_COMPONENT),
        C.C3,
    ),
    ("3 category 4A stable at 3 months", LungRadsNodule(9.0, S, STABLE, prior_category=C.C4A), C.C3),
    # Category 4A
    ("4A solid 8 baseline", LungRadsNodule(8.0, S, BASE), C.C4A),
    ("4A solid 14.9 baseline", LungRadsNodule(14.9, S, BASE), C.C4A),
    ("4A solid growing <8", LungRadsNodule(7.9, S, GROW), C.C4A),
    ("4A solid new 6 to <8", LungRadsNodule(6.0, S, NEW), C.C4A),
    ("4A part-solid solid 6 to <8 baseline", LungRadsNodule(12.0, PS, BASE, solid_component_mm=6.0), C.C4A),
    ("4A part-solid new solid <4", LungRadsNodule(8.0, PS, NEW, solid_component_mm=3.9), C.C4A),
    ("4A part-solid growing solid <4", LungRadsNodule(8.0, PS, GROW, solid_component_mm=3.0), C.C4A),
    (
        "4A airway segmental baseline",
        LungRadsNodule(6.0, S, BASE, airway=AirwayLevel.SEGMENTAL_OR_PROXIMAL),
        C.C4A,
    ),
    ("4A airway segmental new", LungRadsNodule(6.0, S, NEW, airway=AirwayLevel.SEGMENTAL_OR_PROXIMAL), C.C4A),
    ("4A thick-walled cyst baseline", LungRadsNodule(15.0, S, BASE, cyst=CystWall.THICK_WALLED), C.C4A),
    ("4A multilocular cyst baseline", LungRadsNodule(15.0, S, BASE, cyst=CystWall.MULTILOCULAR), C.C4A),
    (
        "4A cyst became multilocular",
        LungRadsNodule(15.0, S, GROW, cyst=CystWall.THIN_WALLED, cyst_change=CystChange.BECAME_MULTILOCULAR),
        C.C4A,
    ),
    # Category 4B
    ("4B solid 15 baseline", LungRadsNodule(15.0, S, BASE), C.C4B),
    ("4B solid new 8", LungRadsNodule(8.0, S, NEW), C.C4B),
    ("4B solid growing 8", LungRadsNodule(8.0, S, GROW), C.C4B),
    ("4B part-solid solid >=8 baseline", LungRadsNodule(14.0, PS, BASE, solid_component_mm=8.0), C.C4B),
    ("4B part-solid new solid >=4", LungRadsNodule(9.0, PS, NEW, solid_component_mm=4.0), C.C4B),
    ("4B part-solid growing solid >=4", LungRadsNodule(9.0, PS, GROW, solid_component_mm=5.0), C.C4B),
    (
        "4B airway segmental stable at 3 months",
        LungRadsNodule(6.0, S, STABLE, airway=AirwayLevel.SEGMENTAL_OR_PROXIMAL),
        C.C4B,
    ),
    (
        "4B airway segmental growing",
        LungRadsNodule(7.0, S, GROW, airway=AirwayLevel.SEGMENTAL_OR_PROXIMAL),
        C.C4B,
    ),
    (
        "4B thick-walled cyst growing wall",
        LungRadsNodule(15.0, S, GROW, cyst=CystWall.THICK_WALLED, cyst_change=CystChange.GROWING_WALL_OR_NODULARITY),
        C.C4B,
    ),
    (
        "4B growing multilocular cyst",
        LungRadsNodule(15.0, S, GROW, cyst=CystWall.MULTILOCULAR, cyst_change=CystChange.GROWING_MULTILOCULAR),
        C.C4B,
    ),
    (
        "4B multilocular increased loculation",
        LungRadsNodule(
            15.0, S, STABLE, cyst=CystWall.MULTILOCULAR, cyst_change=CystChange.INCREASED_LOCULATION_OR_OPACITY
        ),
        C.C4B,
    ),
    ("4B slow-growing solid", LungRadsNodule(7.0, S, STABLE, slow_growth=True), C.C4B),
    ("4B slow-growing part-solid", LungRadsNodule(9.0, PS, STABLE, solid_component_mm=3.0, slow_growth=True), C.C4B),
    # Category 4X
    ("4X category 3 with suspicious features", LungRadsNodule(7.0, S, BASE, suspicious_features=True), C.C4X),
    ("4X category 4B with suspicious features", LungRadsNodule(16.0, S, BASE, suspicious_features=True), C.C4X),
]


@pytest.mark.parametrize(("nodule", "expected"), [pytest.param(n, c, id=name) for name, n, c in ROWS])
def test_every_table_row(nodule: LungRadsNodule, expected: LungRadsCategory) -> None:
    assert classify_lung_rads_nodule(nodule).category is expected


def test_suspicious_features_do_not_raise_categories_1_or_2() -> None:
    assert classify_lung_rads_nodule(LungRadsNodule(4.0, S, BASE, suspicious_features=True)).category is C.C2


def test_juxtapleural_rule_needs_solid_baseline_or_new_and_under_10_mm() -> None:
    assert classify_lung_rads_nodule(LungRadsNodule(10.0, S, BASE, juxtapleural=True)).category is C.C4A
    assert classify_lung_rads_nodule(LungRadsNodule(7.0, S, GROW, juxtapleural=True)).category is C.C4A


def test_thin_walled_cyst_is_not_classified() -> None:
    assert classify_lung_rads_nodule(LungRadsNodule(20.0, S, BASE, cyst=CystWall.THIN_WALLED)).category is C.C1


def test_sizes_are_compared_at_one_decimal() -> None:
    # 5.96 mm is reported as 6.0 mm (note 4), which is category 3 at baseline.
    assert classify_lung_rads_nodule(LungRadsNodule(5.96, S, BASE)).category is C.C3
    assert classify_lung_rads_nodule(LungRadsNodule(5.94, S, BASE)).category is C.C2


def test_mean_diameter_rounds_half_up() -> None:
    assert mean_diameter_mm(7.4, 5.9) == 6.7
    assert mean_diameter_mm(10.0, 8.0) == 9.0


def test_growth_definition() -> None:
    assert is_growth(1.6, 12)
    assert not is_growth(1.5, 12)
    assert not is_growth(2.0, 13)


def test_part_solid_needs_solid_component() -> None:
    with pytest.raises(ValueError, match="solid_component_mm"):
        LungRadsNodule(8.0, PS, BASE)
    with pytest.raises(ValueError, match="solid_component_mm"):
        LungRadsNodule(8.0, PS, BASE, solid_component_mm=9.0)


def test_strings_convert_to_enums() -> None:
    nodule = LungRadsNodule(9.0, "solid", "baseline")
    assert nodule.texture is S
    assert classify_lung_rads_nodule(nodule).category is C.C4A


@pytest.mark.parametrize(
    ("category", "text"),
    [
        (C.C1, "12-month screening LDCT"),
        (C.C2, "12-month screening LDCT"),
        (C.C3, "6-month LDCT"),
        (C.C4A, "3-month LDCT; PET/CT may be considered"),
        (C.C4B, "diagnostic chest CT with or without contrast"),
        (C.C4X, "diagnostic chest CT with or without contrast"),
    ],
)
def test_management_text(category: LungRadsCategory, text: str) -> None:
    assert text in lung_rads_management(category)


def test_study_takes_most_suspicious_nodule() -> None:
    nodules = [LungRadsNodule(5.0, S, BASE), LungRadsNodule(9.0, S, BASE), LungRadsNodule(7.0, S, BASE)]
    result = classify_lung_rads_study(nodules)
    assert result.category is C.C4A
    assert result.dominant_index == 1
    assert result.management.startswith("3-month LDCT")
    assert [r.category for r in result.nodule_results] == [C.C2, C.C4A, C.C3]


def test_study_without_nodules_is_category_1() -> None:
    result = classify_lung_rads_study([])
    assert result.category is C.C1
    assert result.management == "12-month screening LDCT"
    assert result.dominant_index is None


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (IncompleteReason.PRIOR_BEING_LOCATED, "prior chest CT"),
        (IncompleteReason.LUNGS_NOT_EVALUABLE, "Additional lung cancer screening CT"),
        (IncompleteReason.INFECTIOUS_OR_INFLAMMATORY, "1-3 month LDCT"),
    ],
)
def test_category_0(reason: IncompleteReason, text: str) -> None:
    result = classify_lung_rads_study([LungRadsNodule(9.0, S, BASE)], incomplete_reason=reason)
    assert result.category is C.C0
    assert text in result.management
    assert result.nodule_results[0].category is C.C4A


def test_category_0_management_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="incomplete_reason"):
        lung_rads_management(C.C0)


def test_s_modifier() -> None:
    result = classify_lung_rads_study([LungRadsNodule(4.0, S, BASE)], significant_finding=True)
    assert result.label == "2S"
    assert "as appropriate to the specific finding" in result.management


def test_growing_needs_more_than_1_5_mm() -> None:
    with pytest.raises(ValueError, match="not growth"):
        LungRadsNodule(7.0, S, GROW, growth_mm=1.5)
    assert classify_lung_rads_nodule(LungRadsNodule(7.0, S, GROW, growth_mm=1.6)).category is C.C4A
