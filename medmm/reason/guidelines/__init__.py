"""Clinical guidelines for lung nodules: Lung-RADS v2022, Fleischner 2017, Brock (PanCan).

Each function is pure and cites its source in its module docstring:

* :func:`classify_lung_rads_study` / :func:`classify_lung_rads_nodule` -- ACR Lung-RADS v2022
  (screening CT);
* :func:`recommend_fleischner` -- Fleischner Society 2017 (incidental nodules, adults >= 35);
* :func:`brock_probability` -- Brock/PanCan full model with spiculation (McWilliams et al. 2013).
"""

from medmm.reason.guidelines.brock import (
    BROCK_COEFFICIENTS,
    BROCK_DEFAULTS,
    BrockInputs,
    BrockResult,
    Sex,
    brock_probability,
)
from medmm.reason.guidelines.fleischner import (
    FleischnerExclusion,
    FleischnerRecommendation,
    FollowUpWindow,
    PatientRisk,
    recommend_fleischner,
)
from medmm.reason.guidelines.lung_rads import (
    GROWTH_THRESHOLD_MM,
    AirwayLevel,
    CystChange,
    CystWall,
    IncompleteReason,
    LungRadsCategory,
    LungRadsNodule,
    LungRadsNoduleResult,
    LungRadsStudyResult,
    NoduleStatus,
    NoduleTexture,
    classify_lung_rads_nodule,
    classify_lung_rads_study,
    is_growth,
    lung_rads_management,
    mean_diameter_mm,
)

__all__ = [
    "BROCK_COEFFICIENTS",
    "BROCK_DEFAULTS",
    "GROWTH_THRESHOLD_MM",
    "AirwayLevel",
    "BrockInputs",
    "BrockResult",
    "CystChange",
    "CystWall",
    "FleischnerExclusion",
    "FleischnerRecommendation",
    "FollowUpWindow",
    "IncompleteReason",
    "LungRadsCategory",
    "LungRadsNodule",
    "LungRadsNoduleResult",
    "LungRadsStudyResult",
    "NoduleStatus",
    "NoduleTexture",
    "PatientRisk",
    "Sex",
    "brock_probability",
    "classify_lung_rads_nodule",
    "classify_lung_rads_study",
    "is_growth",
    "lung_rads_management",
    "mean_diameter_mm",
    "recommend_fleischner",
]
