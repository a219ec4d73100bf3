"""ACR Lung-RADS v2022: the category of a screening CT nodule and of the whole study.

Source: American College of Radiology, *Lung CT Screening Reporting & Data System
(Lung-RADS) v2022*, released November 2022 (assessment table and its numbered notes),
summarised with its evidence in Christensen J et al., "ACR Lung-RADS v2022: Assessment
Categories and Management Recommendations", Chest 2024;165(3):738-753 and J Am Coll
Radiol 2024;21(3):473-488.

How the table was checked (the ACR PDF itself was not in reach of this session):

* the solid, part-solid and non-solid size thresholds, the category 1/2/3/4A rows of
  version 1.1, and their management text were read in the NCBI Bookshelf copy of the
  Lung-RADS v1.1 table (NBK568579, appendix A table 2); v2022 did not change these
  thresholds (Christensen et al. 2024; Agrawal et al., Radiol Clin North Am 2025);
* the v2022 additions (juxtapleural nodules, airway nodules, atypical pulmonary cysts,
  stepped management, slow growth, growth = mean diameter increase > 1.5 mm within
  12 months) were read in the ACR common-data-element text of the table (RadElement set
  RDES267, "Lung-RADS categorization") and in two independent public transcriptions of
  the v2022 table; the growth definition and the infectious-findings note were also read
  in a copy of the v2022 notes.

Rows that could NOT be confirmed word for word, and what this module does there:

* a non-solid nodule >= 30 mm that grows faster than "slowly" on follow-up: the table
  names only ">= 30 mm at baseline or new" (3) and ">= 30 mm stable or slowly growing"
  (2); this module returns 3;
* a category 4B lesion that is merely stable on follow-up: the table returns 4B to 2 only
  when proven benign after work-up; this module keeps 4B;
* a new part-solid nodule < 6 mm total whose solid component is >= 4 mm: both "new < 6 mm
  total" (3) and "new solid component >= 4 mm" (4B) read on it; this module takes the
  more suspicious, 4B (note 1: code on the most suspicious finding);
* category 0 for infection (note 10) and 4X (note 14) need a reader's judgement; they are
  inputs here, not inferred.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from medmm.types import NoduleTexture

__all__ = [
    "GROWTH_THRESHOLD_MM",
    "AirwayLevel",
    "CystChange",
    "CystWall",
    "IncompleteReason",
    "LungRadsCategory",
    "LungRadsNodule",
    "LungRadsNoduleResult",
    "LungRadsStudyResult",
    "NoduleStatus",
    "NoduleTexture",
    "classify_lung_rads_nodule",
    "classify_lung_rads_study",
    "is_growth",
    "lung_rads_management",
    "mean_diameter_mm",
]

GROWTH_THRESHOLD_MM = 1.5
"""Growth: an increase in mean diameter of more than 1.5 mm within 12 months (Lung-RADS v2022, note 6)."""


class NoduleStatus(StrEnum):
    """When the nodule was seen: first screen, or compared with a prior screen."""

    BASELINE = "baseline"
    NEW = "new"
    GROWING = "growing"
    STABLE = "stable"


class AirwayLevel(StrEnum):
    """Where an airway (endobronchial) nodule sits (Lung-RADS v2022, note 11)."""

    SUBSEGMENTAL = "subsegmental"
    SEGMENTAL_OR_PROXIMAL = "segmental_or_proximal"


class CystWall(StrEnum):
    """Morphology of a cystic lesion (Lung-RADS v2022, note 12)."""

    THIN_WALLED = "thin_walled"
    THICK_WALLED = "thick_walled"
    MULTILOCULAR = "multilocular"


class CystChange(StrEnum):
    """What changed in an atypical pulmonary cyst since the prior screen (Lung-RADS v2022, note 12)."""

    NONE = "none"
    GROWING_CYSTIC_COMPONENT = "growing_cystic_component"
    BECAME_MULTILOCULAR = "became_multilocular"
    GROWING_WALL_OR_NODULARITY = "growing_wall_or_nodularity"
    GROWING_MULTILOCULAR = "growing_multilocular"
    INCREASED_LOCULATION_OR_OPACITY = "increased_loculation_or_opacity"


class IncompleteReason(StrEnum):
    """Why a screening study is category 0 (Lung-RADS v2022 category 0 row, notes 9 and 10)."""

    PRIOR_BEING_LOCATED = "prior_being_located"
    LUNGS_NOT_EVALUABLE = "lungs_not_evaluable"
    INFECTIOUS_OR_INFLAMMATORY = "infectious_or_inflammatory"


class LungRadsCategory(StrEnum):
    """Lung-RADS v2022 assessment categories, in increasing order of suspicion."""

    C0 = "0"
    C1 = "1"
    C2 = "2"
    C3 = "3"
    C4A = "4A"
    C4B = "4B"
    C4X = "4X"

    @property
    def rank(self) -> int:
        """Order of suspicion used to pick the study category (0 ranks below 1: it is overridden elsewhere)."""
        return _RANK[self]


_RANK = {
    LungRadsCategory.C0: 0,
    LungRadsCategory.C1: 1,
    LungRadsCategory.C2: 2,
    LungRadsCategory.C3: 3,
    LungRadsCategory.C4A: 4,
    LungRadsCategory.C4B: 5,
    LungRadsCategory.C4X: 6,
}

# Management column of the v2022 table (wording condensed, content as published).
_MANAGEMENT = {
    LungRadsCategory.C1: "12-month screening LDCT",
    LungRadsCategory.C2: "12-month screening LDCT",
    LungRadsCategory.C3: "6-month LDCT",
    LungRadsCategory.C4A: (
        "3-month LDCT; PET/CT may be considered if there is a >= 8 mm solid nodule or solid component"
    ),
    LungRadsCategory.C4B: (
        "Referral for further clinical evaluation: diagnostic chest CT with or without contrast; PET/CT may be "
        "considered if there is a >= 8 mm solid nodule or solid component; tissue sampling; and/or referral for "
        "further clinical evaluation. Management depends on clinical evaluation, patient preference and the "
        "probability of malignancy"
    ),
}
_MANAGEMENT[LungRadsCategory.C4X] = _MANAGEMENT[LungRadsCategory.C4B]
_MANAGEMENT_0 = {
    IncompleteReason.PRIOR_BEING_LOCATED: "Comparison to prior chest CT examination(s) being located",
    IncompleteReason.LUNGS_NOT_EVALUABLE: "Additional lung cancer screening CT imaging needed",
    IncompleteReason.INFECTIOUS_OR_INFLAMMATORY: "1-3 month LDCT",
}
_S_MANAGEMENT = "S: as appropriate to the specific finding"


@dataclass(frozen=True)
class LungRadsNodule:
    """One screening finding, as Lung-RADS v2022 reads it.

    Args:
        diameter_mm: Mean diameter (mean of long and short axis), mm; rounded here to one
            decimal place (note 4). For a cyst, its mean diameter.
        texture: Solid, part-solid or ground-glass (non-solid).
        status: Baseline (first screen), or new / growing / stable against a prior screen.
            ``GROWING`` means growth as defined in note 6 (see :func:`is_growth`); for a
            part-solid nodule it means the solid component is growing.
        solid_component_mm: Mean diameter of the solid component of a part-solid nodule, mm.
        benign_calcification_or_fat: Complete, central, popcorn or concentric-ring
            calcification, or fat (category 1).
        juxtapleural: Attached to the pleura or a fissure (perifissural included), solid,
            with smooth margins and an oval, lentiform or triangular shape (note 2).
        airway: Set for an airway (endobronchial) nodule: its level (note 11).
        cyst: Set for a cystic lesion: its wall (note 12). Thin-walled cysts are not classified.
        cyst_change: For a thick-walled or multilocular cyst on follow-up, what changed.
        prior_category: The category this finding had on the short-interval prior that
            prompted this exam; drives stepped management of stable findings.
        slow_growth: A solid or part-solid nodule that grows slowly over several screens
            without meeting note 6 in any 12 months (may be 4B, note 8).
        suspicious_features: Reader-judged features that raise suspicion (spiculation,
            lymphadenopathy, metastatic disease, a ground-glass nodule doubling in a year):
            a 3 or 4 finding becomes 4X (note 14).
        growth_mm: Increase in mean diameter within the last 12 months, mm, if known. With
            status ``GROWING`` it must exceed 1.5 mm (note 6). Reclassifying a nodule that
            crosses a size threshold without meeting note 6 (note 5) is not modelled here.

    Raises:
        ValueError: Inconsistent inputs (negative size, part-solid without a solid component,
            or ``GROWING`` with a growth that is not growth by note 6).
    """

    diameter_mm: float
    texture: NoduleTexture | str = NoduleTexture.SOLID
    status: NoduleStatus | str = NoduleStatus.BASELINE
    solid_component_mm: float | None = None
    benign_calcification_or_fat: bool = False
    juxtapleural: bool = False
    airway: AirwayLevel | str | None = None
    cyst: CystWall | str | None = None
    cyst_change: CystChange | str = CystChange.NONE
    prior_category: LungRadsCategory | str | None = None
    slow_growth: bool = False
    suspicious_features: bool = False
    growth_mm: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "texture", NoduleTexture(self.texture))
        object.__setattr__(self, "status", NoduleStatus(self.status))
        object.__setattr__(self, "cyst_change", CystChange(self.cyst_change))
        if self.airway is not None:
            object.__setattr__(self, "airway", AirwayLevel(self.airway))
        if self.cyst is not None:
            object.__setattr__(self, "cyst", CystWall(self.cyst))
        if self.prior_category is not None:
            object.__setattr__(self, "prior_category", LungRadsCategory(self.prior_category))
        if not self.diameter_mm >= 0:
            raise ValueError(f"diameter_mm must be >= 0, got {self.diameter_mm!r}")
        if (
            self.status is NoduleStatus.GROWING
            and self.growth_mm is not None
            and self.growth_mm <= GROWTH_THRESHOLD_MM
            and self.cyst is None
        ):
            raise ValueError(
                f"status is growing but growth_mm={self.growth_mm} is not growth: Lung-RADS v2022 note 6 needs "
                f"> {GROWTH_THRESHOLD_MM} mm within 12 months"
            )
        if self.texture is NoduleTexture.PART_SOLID:
            if self.solid_component_mm is None:
                raise ValueError("a part_solid nodule needs solid_component_mm (mean diameter of its solid part)")
            if not 0 <= self.solid_component_mm <= self.diameter_mm:
                raise ValueError(
                    f"solid_component_mm must lie in [0, diameter_mm={self.diameter_mm}], got {self.solid_component_mm}"
                )


@dataclass(frozen=True)
class LungRadsNoduleResult:
    """Category of one finding and the table row that gave it."""

    category: LungRadsCategory
    rule: str


@dataclass(frozen=True)
class LungRadsStudyResult:
    """Category of a screening study (its most suspicious finding) and its management.

    Attributes:
        category: The study category.
        management: The management text of the v2022 table for that category.
        significant_finding: True when the S modifier applies; ``label`` then ends in "S".
        dominant_index: Index of the finding that set the category, or None.
        nodule_results: Per-finding results, in input order.
    """

    category: LungRadsCategory
    management: str
    significant_finding: bool
    dominant_index: int | None
    nodule_results: tuple[LungRadsNoduleResult, ...]

    @property
    def label(self) -> str:
        """The category as written in a report, e.g. ``"4A"`` or ``"2S"``."""
        return f"{self.category.value}{'S' if self.significant_finding else ''}"


def mean_diameter_mm(long_axis_mm: float, short_axis_mm: float) -> float:
    """Mean of long and short axis, reported to one decimal (Lung-RADS v2022, note 4).

    Halves round up, as a reader does: (7.4 + 5.9) / 2 = 6.65 -> 6.7.
    """
    return _round1(Decimal(str(long_axis_mm)) + Decimal(str(short_axis_mm)), halve=True)


def is_growth(increase_mm: float, interval_months: float) -> bool:
    """Whether a mean-diameter increase is growth: > 1.5 mm within 12 months (Lung-RADS v2022, note 6)."""
    return interval_months <= 12 and increase_mm > GROWTH_THRESHOLD_MM


def lung_rads_management(
    category: LungRadsCategory | str, incomplete_reason: IncompleteReason | str | None = None
) -> str:
    """Management text of the Lung-RADS v2022 table for one category.

    Args:
        category: The category.
        incomplete_reason: For category 0, why the study is incomplete (the management differs).

    Raises:
        ValueError: Category 0 without a reason.
    """
    category = LungRadsCategory(category)
    if category is LungRadsCategory.C0:
        if incomplete_reason is None:
            raise ValueError("category 0 management depends on incomplete_reason; pass an IncompleteReason")
        return _MANAGEMENT_0[IncompleteReason(incomplete_reason)]
    return _MANAGEMENT[category]


def classify_lung_rads_nodule(nodule: LungRadsNodule) -> LungRadsNoduleResult:
    """Lung-RADS v2022 category of one finding (table rows 1-4B, notes 2, 5-8, 11, 12, 14).

    Args:
        nodule: The finding.

    Returns:
        The category and a short name of the table row applied.
    """
    category, rule = _base_category(nodule)
    if nodule.suspicious_features and category in (LungRadsCategory.C3, LungRadsCategory.C4A, LungRadsCategory.C4B):
        return LungRadsNoduleResult(LungRadsCategory.C4X, f"{rule}; additional suspicious features (note 14)")
    return LungRadsNoduleResult(category, rule)


def classify_lung_rads_study(
    nodules: Sequence[LungRadsNodule],
    *,
    incomplete_reason: IncompleteReason | str | None = None,
    significant_finding: bool = False,
) -> LungRadsStudyResult:
    """Lung-RADS v2022 category of a screening study: its most suspicious finding (note 1).

    Args:
        nodules: All findings; empty for a study without nodules (category 1).
        incomplete_reason: Set when the study is category 0 (prior being located, lungs not
            fully evaluable, or findings suggesting infection or inflammation); it overrides
            the nodules' categories, which are still returned.
        significant_finding: A clinically significant finding unrelated to lung cancer (the S
            modifier, note 15), added to categories 0-4.

    Returns:
        The study category, its management text and the per-finding results.
    """
    results = tuple(classify_lung_rads_nodule(n) for n in nodules)
    if incomplete_reason is not None:
        reason = IncompleteReason(incomplete_reason)
        management = lung_rads_management(LungRadsCategory.C0, reason)
        if significant_finding:
            management = f"{management}; {_S_MANAGEMENT}"
        return LungRadsStudyResult(LungRadsCategory.C0, management, significant_finding, None, results)
    if results:
        dominant = max(range(len(results)), key=lambda i: results[i].category.rank)
        category: LungRadsCategory = results[dominant].category
        dominant_index: int | None = dominant
    else:
        category, dominant_index = LungRadsCategory.C1, None
    management = lung_rads_management(category)
    if significant_finding:
        management = f"{management}; {_S_MANAGEMENT}"
    return LungRadsStudyResult(category, management, significant_finding, dominant_index, results)


def _base_category(n: LungRadsNodule) -> tuple[LungRadsCategory, str]:
    if n.benign_calcification_or_fat:
        return LungRadsCategory.C1, "benign calcification or fat"
    if n.cyst is not None:
        return _cyst_category(n)
    if n.airway is not None:
        return _airway_category(n)
    if n.status is NoduleStatus.STABLE:
        return _stable_category(n)
    diameter = _round1(Decimal(str(n.diameter_mm)))
    if (
        n.juxtapleural
        and n.texture is NoduleTexture.SOLID
        and n.status in (NoduleStatus.BASELINE, NoduleStatus.NEW)
        and diameter < 10
    ):
        return LungRadsCategory.C2, "juxtapleural solid < 10 mm, benign shape, baseline or new"
    if n.slow_growth and n.texture is not NoduleTexture.GROUND_GLASS:
        return LungRadsCategory.C4B, "slow-growing solid or part-solid nodule over multiple screens (note 8)"
    if n.texture is NoduleTexture.SOLID:
        return _solid_category(diameter, n.status)
    if n.texture is NoduleTexture.PART_SOLID:
        solid_mm = n.solid_component_mm if n.solid_component_mm is not None else 0.0  # required by LungRadsNodule
        return _part_solid_category(diameter, _round1(Decimal(str(solid_mm))), n.status)
    return _ground_glass_category(diameter, n.status)


def _solid_category(d: float, status: NoduleStatus) -> tuple[LungRadsCategory, str]:
    if status is NoduleStatus.BASELINE:
        if d < 6:
            return LungRadsCategory.C2, "solid < 6 mm at baseline"
        if d < 8:
            return LungRadsCategory.C3, "solid 6 to < 8 mm at baseline"
        if d < 15:
            return LungRadsCategory.C4A, "solid 8 to < 15 mm at baseline"
        return LungRadsCategory.C4B, "solid >= 15 mm at baseline"
    if status is NoduleStatus.NEW:
        if d < 4:
            return LungRadsCategory.C2, "new solid < 4 mm"
        if d < 6:
            return LungRadsCategory.C3, "new solid 4 to < 6 mm"
        if d < 8:
            return LungRadsCategory.C4A, "new solid 6 to < 8 mm"
        return LungRadsCategory.C4B, "new solid >= 8 mm"
    if d < 8:
        return LungRadsCategory.C4A, "growing solid < 8 mm"
    return LungRadsCategory.C4B, "growing solid >= 8 mm"


def _part_solid_category(d: float, solid: float, status: NoduleStatus) -> tuple[LungRadsCategory, str]:
    if status is NoduleStatus.BASELINE:
        if d < 6:
            return LungRadsCategory.C2, "part-solid < 6 mm total at baseline"
        if solid < 6:
            return LungRadsCategory.C3, "part-solid >= 6 mm total, solid component < 6 mm, at baseline"
        if solid < 8:
            return LungRadsCategory.C4A, "part-solid, solid component 6 to < 8 mm at baseline"
        return LungRadsCategory.C4B, "part-solid, solid component >= 8 mm at baseline"
    # New, or growing solid component.
    if solid >= 4:
        return LungRadsCategory.C4B, f"part-solid, {status.value} solid component >= 4 mm"
    if status is NoduleStatus.NEW and d < 6:
        return LungRadsCategory.C3, "new part-solid < 6 mm total"
    return LungRadsCategory.C4A, f"part-solid >= 6 mm total, {status.value} solid component < 4 mm"


def _ground_glass_category(d: float, status: NoduleStatus) -> tuple[LungRadsCategory, str]:
    if d < 30:
        return LungRadsCategory.C2, f"non-solid < 30 mm ({status.value})"
    if status is NoduleStatus.GROWING:
        return LungRadsCategory.C3, "non-solid >= 30 mm, growing (row not confirmed; see module docstring)"
    return LungRadsCategory.C3, f"non-solid >= 30 mm ({status.value})"


def _stable_category(n: LungRadsNodule) -> tuple[LungRadsCategory, str]:
    prior = n.prior_category
    if n.texture is NoduleTexture.GROUND_GLASS:
        return LungRadsCategory.C2, "non-solid, stable or slowly growing"
    if n.slow_growth:
        return LungRadsCategory.C4B, "slow-growing solid or part-solid nodule over multiple screens (note 8)"
    if prior is LungRadsCategory.C4A:
        return LungRadsCategory.C3, "category 4A stable or decreased at 3-month follow-up"
    if prior in (LungRadsCategory.C4B, LungRadsCategory.C4X):
        return LungRadsCategory.C4B, "category 4B stable: stays 4B until proven benign (row not confirmed)"
    if prior is LungRadsCategory.C3:
        return LungRadsCategory.C2, "category 3 stable or decreased at 6-month follow-up"
    return LungRadsCategory.C2, "stable nodule on annual screening"


def _airway_category(n: LungRadsNodule) -> tuple[LungRadsCategory, str]:
    if n.airway is AirwayLevel.SUBSEGMENTAL:
        return LungRadsCategory.C2, "subsegmental airway nodule (baseline, new or stable)"
    if n.status in (NoduleStatus.BASELINE, NoduleStatus.NEW):
        return LungRadsCategory.C4A, "segmental or more proximal airway nodule, baseline or new"
    return LungRadsCategory.C4B, "segmental or more proximal airway nodule, stable or growing at 3-month follow-up"


def _cyst_category(n: LungRadsNodule) -> tuple[LungRadsCategory, str]:
    change = n.cyst_change
    if change is CystChange.BECAME_MULTILOCULAR:
        return LungRadsCategory.C4A, "thin- or thick-walled cyst that became multilocular"
    if n.cyst is CystWall.THIN_WALLED:
        return LungRadsCategory.C1, "thin-walled cyst: not classified by Lung-RADS (note 12)"
    if n.cyst is CystWall.THICK_WALLED:
        if change is CystChange.GROWING_WALL_OR_NODULARITY:
            return LungRadsCategory.C4B, "thick-walled cyst with growing wall thickness or nodularity"
        if change is CystChange.GROWING_CYSTIC_COMPONENT:
            return LungRadsCategory.C3, "thick-walled cyst with growing cystic component"
    if n.cyst is CystWall.MULTILOCULAR and change in (
        CystChange.GROWING_MULTILOCULAR,
        CystChange.INCREASED_LOCULATION_OR_OPACITY,
    ):
        return LungRadsCategory.C4B, "multilocular cyst, growing or with increased loculation or opacity"
    if change is not CystChange.NONE:
        raise ValueError(f"cyst_change {change.value!r} does not apply to a {n.cyst.value} cyst")
    if n.status is NoduleStatus.STABLE and n.prior_category is LungRadsCategory.C4A:
        return LungRadsCategory.C3, "category 4A cyst stable at 3-month follow-up"
    return LungRadsCategory.C4A, f"{n.cyst.value.replace('_', '-')} cyst"


def _round1(value: Decimal, *, halve: bool = False) -> float:
    if halve:
        value = value / 2
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
