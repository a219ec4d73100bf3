"""The guidelines stage feeds measured nodules to Lung-RADS, Fleischner and Brock and states its assumptions."""

from __future__ import annotations

import numpy as np
import pytest

from medmm.reason.guidance import apply_guidelines, solid_component_mm
from medmm.types import DetectedNodule, NoduleTexture, SeriesInfo


def _nodule(diameter: float, texture: str = "solid", lobe: str = "RUL", calcified: bool = False) -> DetectedNodule:
    return DetectedNodule(
        center_lps_mm=(0.0, 0.0, 0.0),
        voxel_index=(0, 0, 0),
        diameter_mm=diameter,
        volume_mm3=diameter**3 * 0.52,
        probability=0.9,
        texture=NoduleTexture(texture),
        texture_probabilities={"solid": 1.0, "part_solid": 0.0, "ground_glass": 0.0},
        calcification="calcified" if calcified else "none",
        calcification_probability=0.9 if calcified else 0.1,
        lobe=lobe,
    )


SERIES = SeriesInfo(series_uid="1.2.3", patient_age_years=62.0, patient_sex="F")


def _apply(nodules, contact=None, solid=None, series=SERIES):  # type: ignore[no-untyped-def]
    return apply_guidelines(
        nodules,
        pleural_contact=contact or [False] * len(nodules),
        solid_components_mm=solid or [None] * len(nodules),
        series=series,
    )


def test_no_nodule_is_lung_rads_1_without_fleischner() -> None:
    g = _apply([])
    assert g.lung_rads == "1" and g.fleischner == "" and g.nodules == ()


@pytest.mark.parametrize(
    ("nodule", "contact", "solid", "category"),
    [
        (_nodule(5.0), False, None, "2"),  # solid < 6 mm at baseline
        (_nodule(7.0), False, None, "3"),  # solid 6 to < 8 mm
        (_nodule(9.0), False, None, "4A"),  # solid 8 to < 15 mm
        (_nodule(16.0), False, None, "4B"),  # solid >= 15 mm
        (_nodule(8.0), True, None, "2"),  # juxtapleural solid < 10 mm (note 2)
        (_nodule(12.0, calcified=True), False, None, "1"),  # benign calcification
        (_nodule(10.0, "part_solid"), False, 5.0, "3"),  # part-solid >= 6 mm, solid component < 6 mm
        (_nodule(10.0, "part_solid"), False, 7.0, "4A"),  # solid component 6 to < 8 mm
        (_nodule(25.0, "ground_glass"), False, None, "2"),  # ground glass < 30 mm
    ],
)
def test_per_nodule_lung_rads(nodule: DetectedNodule, contact: bool, solid: float | None, category: str) -> None:
    g = _apply([nodule], [contact], [solid])
    assert g.nodules[0].lung_rads == category, g.nodules[0].lung_rads_rule
    assert g.lung_rads == category
    assert 0.0 < g.nodules[0].brock_probability < 1.0


def test_study_takes_the_worst_nodule_and_states_assumptions() -> None:
    g = _apply([_nodule(5.0), _nodule(9.0, lobe="LLL"), _nodule(12.0, calcified=True)])
    assert g.lung_rads == "4A"
    # Fleischner follows the most suspicious nodule; a calcified (benign) one is not it.
    assert g.fleischner.startswith("nodule 2:") and "multiple" in g.fleischner_cell
    assert _apply([_nodule(12.0, calcified=True)]).fleischner == ""
    text = " ".join(g.assumptions)
    assert "baseline screen" in text and "high-risk branch" in text and "calcified" in text
    assert "family_history" in text and "age_years" not in text  # the header gave age and sex
    unknown = _apply([_nodule(9.0)], series=SeriesInfo(series_uid="1"))
    assert "age_years" in " ".join(unknown.assumptions)
    # Brock: upper lobe scores higher than lower lobe, all else equal.
    upper, lower = _apply([_nodule(9.0, lobe="RUL")]), _apply([_nodule(9.0, lobe="RLL")])
    assert upper.nodules[0].brock_probability > lower.nodules[0].brock_probability


def test_solid_component_is_volume_equivalent_and_capped() -> None:
    hu = np.array([-600.0] * 400 + [50.0] * 100)  # 100 solid voxels of 1 mm3
    assert solid_component_mm(hu, 1.0, 20.0) == pytest.approx((6 * 100 / np.pi) ** (1 / 3), abs=0.05)
    assert solid_component_mm(np.full(10_000, 40.0), 1.0, 8.0) == 8.0
