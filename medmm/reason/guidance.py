"""The guidelines stage: Lung-RADS v2022, Fleischner 2017 and Brock applied to detected nodules.

The guideline functions (:mod:`medmm.reason.guidelines`) are pure and cite their sources;
this module feeds them what the image analysis measured and *says what it assumed* for
everything else, in :attr:`~medmm.types.GuidelineSummary.assumptions`:

* a single CT: Lung-RADS reads it as a baseline screen (no prior); Fleischner as an
  incidental finding; both are given, since medmm does not know which applies;
* the detector's diameter is taken as the mean diameter Lung-RADS and Fleischner ask for;
* a nodule the CNN calls calcified is taken as benign calcification (Lung-RADS category 1);
  the CNN does not tell calcification patterns apart;
* a solid nodule touching the pleura or a fissure is read as juxtapleural/perifissural
  (Lung-RADS note 2), though margin and shape are not checked;
* the solid component of a part-solid nodule is the volume-equivalent diameter of its
  voxels above -300 HU (medmm's measurement, not a guideline definition);
* Fleischner's clinical risk is "high" (the cautious branch) unless given; Brock inputs the
  header does not hold (family history, emphysema, spiculation) take the model's defaults,
  listed by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medmm.reason.guidelines import (
    BrockInputs,
    LungRadsNodule,
    PatientRisk,
    brock_probability,
    classify_lung_rads_study,
    recommend_fleischner,
)
from medmm.types import DetectedNodule, GuidelineSummary, NoduleGuidance, NoduleTexture, SeriesInfo

__all__ = ["SOLID_COMPONENT_HU", "apply_guidelines", "solid_component_mm"]

SOLID_COMPONENT_HU = -300.0


def solid_component_mm(hu_inside_nodule: np.ndarray, voxel_mm3: float, diameter_mm: float) -> float:
    """Volume-equivalent diameter of a nodule's voxels above -300 HU, at most its diameter.

    Args:
        hu_inside_nodule: HU values of the nodule's voxels.
        voxel_mm3: Volume of one voxel.
        diameter_mm: The nodule's diameter (upper bound).
    """
    volume = float((hu_inside_nodule > SOLID_COMPONENT_HU).sum()) * voxel_mm3
    return round(min(float(diameter_mm), (6.0 * volume / np.pi) ** (1.0 / 3.0)), 1)


def apply_guidelines(
    nodules: Sequence[DetectedNodule],
    *,
    pleural_contact: Sequence[bool],
    solid_components_mm: Sequence[float | None],
    series: SeriesInfo,
    risk: PatientRisk | str | None = None,
) -> GuidelineSummary:
    """Lung-RADS (study and per nodule), Fleischner (most suspicious nodule) and Brock (per nodule).

    Args:
        nodules: Reported nodules, most probable first.
        pleural_contact: Per nodule: touches the pleura or a fissure.
        solid_components_mm: Per nodule: solid-component diameter (used for part-solid ones).
        series: Series metadata (patient age and sex, when the header has them).
        risk: Fleischner clinical risk if known; default high, and said so.

    Returns:
        The summary with every assumption spelled out.
    """
    assumptions = [
        "Lung-RADS: read as a baseline screen (no prior CT compared)",
        "Fleischner: read as an incidental finding; clinical risk "
        + (f"given as {PatientRisk(risk).value}" if risk else "unknown, the high-risk branch used"),
        "size: the detector's diameter taken as the mean diameter",
    ]
    lr_nodules = []
    for nod, contact, solid in zip(nodules, pleural_contact, solid_components_mm, strict=True):
        texture = NoduleTexture(nod.texture)
        lr_nodules.append(
            LungRadsNodule(
                diameter_mm=nod.diameter_mm,
                texture=texture,
                solid_component_mm=solid if texture is NoduleTexture.PART_SOLID else None,
                benign_calcification_or_fat=nod.calcification == "calcified",
                juxtapleural=bool(contact) and texture is NoduleTexture.SOLID,
            )
        )
    if any(n.calcification == "calcified" for n in nodules):
        assumptions.append("a nodule the CNN calls calcified is taken as benign calcification (category 1)")
    if any(
        c and NoduleTexture(n.texture) is NoduleTexture.SOLID for n, c in zip(nodules, pleural_contact, strict=True)
    ):
        assumptions.append("a solid nodule touching pleura or fissure is read as juxtapleural (margins not checked)")
    if any(NoduleTexture(n.texture) is NoduleTexture.PART_SOLID for n in nodules):
        assumptions.append(f"solid component: volume-equivalent diameter of voxels above {SOLID_COMPONENT_HU:.0f} HU")
    study = classify_lung_rads_study(lr_nodules)
    fleischner, cell = "", ""
    candidates = [i for i, n in enumerate(nodules) if n.calcification != "calcified"]  # benign ones need no follow-up
    if candidates:
        rank = {NoduleTexture.SOLID: 2, NoduleTexture.PART_SOLID: 3, NoduleTexture.GROUND_GLASS: 1}
        worst = max(candidates, key=lambda i: (rank[NoduleTexture(nodules[i].texture)], nodules[i].diameter_mm))
        w = nodules[worst]
        rec = recommend_fleischner(
            w.diameter_mm,
            w.texture,
            multiple=len(nodules) > 1,
            risk=risk or PatientRisk.HIGH,
            solid_component_mm=solid_components_mm[worst],
            age_years=series.patient_age_years,
        )
        fleischner, cell = f"nodule {worst + 1}: {rec.text}", rec.cell
    sex = {"F": "female", "M": "male"}.get(series.patient_sex)
    per_nodule = []
    brock_assumed: set[str] = set()
    for nod, lr, solid in zip(nodules, study.nodule_results, solid_components_mm, strict=True):
        brock = brock_probability(
            BrockInputs(
                diameter_mm=max(nod.diameter_mm, 0.1),
                age_years=series.patient_age_years,
                sex=sex,
                texture=nod.texture,
                upper_lobe=nod.lobe in ("RUL", "LUL") if nod.lobe else None,
                nodule_count=len(nodules),
            )
        )
        brock_assumed.update(brock.assumed)
        per_nodule.append(
            NoduleGuidance(
                lung_rads=lr.category.value,
                lung_rads_rule=lr.rule,
                brock_probability=round(brock.probability, 4),
                solid_component_mm=solid if NoduleTexture(nod.texture) is NoduleTexture.PART_SOLID else None,
            )
        )
    if brock_assumed:
        assumptions.append("Brock: model defaults assumed for " + ", ".join(sorted(brock_assumed)))
    return GuidelineSummary(
        lung_rads=study.label,
        lung_rads_management=study.management,
        fleischner=fleischner,
        fleischner_cell=cell,
        nodules=tuple(per_nodule),
        assumptions=tuple(assumptions),
    )
