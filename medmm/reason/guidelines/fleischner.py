"""Fleischner Society 2017 recommendations for incidental pulmonary nodules.

Source: MacMahon H, Naidich DP, Goo JM, et al. "Guidelines for Management of Incidental
Pulmonary Nodules Detected on CT Images: From the Fleischner Society 2017".
Radiology 2017;284(1):228-243, doi:10.1148/radiol.2017161659, Table 1.

The table cells were read in three independent public transcriptions of Table 1
(Radiopaedia "Fleischner Society pulmonary nodule recommendations"; radiology.ae/fleischner;
University of Washington trauma radiology reference) and agree cell for cell. Scope (table
header): adults aged >= 35 years with incidentally detected nodules; not lung cancer
screening, not patients with a known primary cancer, not immunocompromised patients.
Size: the average of long and short axes, rounded to the nearest millimetre (Table 1
footnote; Bankier AA et al., Radiology 2017;285:584-600), so "6-8 mm" covers 5.5 to < 8.5 mm.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from medmm.types import NoduleTexture

__all__ = [
    "FleischnerExclusion",
    "FleischnerRecommendation",
    "FollowUpWindow",
    "PatientRisk",
    "recommend_fleischner",
]

MIN_AGE_YEARS = 35
"""The guideline applies to patients aged 35 years or older (MacMahon et al. 2017, Table 1 header)."""


class PatientRisk(StrEnum):
    """Clinical risk of lung cancer (MacMahon et al. 2017: ACCP criteria, e.g. smoking, age, family history)."""

    LOW = "low"
    HIGH = "high"


class FleischnerExclusion(StrEnum):
    """Why the Fleischner recommendations do not apply (MacMahon et al. 2017, Table 1 header)."""

    AGE_UNDER_35 = "age_under_35"
    KNOWN_CANCER = "known_cancer"
    IMMUNOSUPPRESSED = "immunosuppressed"
    SCREENING = "screening"


_EXCLUSION_TEXT = {
    FleischnerExclusion.AGE_UNDER_35: "Fleischner 2017 does not apply to patients younger than 35 years.",
    FleischnerExclusion.KNOWN_CANCER: "Fleischner 2017 does not apply to patients with a known primary cancer.",
    FleischnerExclusion.IMMUNOSUPPRESSED: "Fleischner 2017 does not apply to immunocompromised patients.",
    FleischnerExclusion.SCREENING: "Fleischner 2017 does not apply to lung cancer screening: use Lung-RADS.",
}


@dataclass(frozen=True)
class FollowUpWindow:
    """One follow-up CT, as a window in months from the current CT.

    Attributes:
        earliest_months: Start of the window.
        latest_months: End of the window (equal to the start for a single time point).
        optional: True for "consider" / "optional" follow-up.
    """

    earliest_months: int
    latest_months: int
    optional: bool = False


@dataclass(frozen=True)
class FleischnerRecommendation:
    """A cell of the Fleischner 2017 table, or the reason none applies.

    Attributes:
        text: The recommendation (or the exclusion) in words.
        follow_up: The follow-up CTs in order; empty for "no routine follow-up" and for exclusions.
        repeat_every_months: For surveillance beyond the windows, the interval ("every 2 years", "annual").
        repeat_until_months: Surveillance ends this many months after the current CT ("until 5 years").
        exclusion: Set when the guideline does not apply; everything else is then empty.
        cell: Short name of the table cell, for logs and tests.
    """

    text: str
    follow_up: tuple[FollowUpWindow, ...] = ()
    repeat_every_months: int | None = None
    repeat_until_months: int | None = None
    exclusion: FleischnerExclusion | None = None
    cell: str = ""

    @property
    def applicable(self) -> bool:
        """False when the patient falls outside the guideline's scope."""
        return self.exclusion is None


def recommend_fleischner(
    diameter_mm: float,
    texture: NoduleTexture | str = NoduleTexture.SOLID,
    *,
    multiple: bool = False,
    risk: PatientRisk | str = PatientRisk.HIGH,
    solid_component_mm: float | None = None,
    age_years: float | None = None,
    known_cancer: bool = False,
    immunosuppressed: bool = False,
    screening: bool = False,
) -> FleischnerRecommendation:
    """Fleischner Society 2017 recommendation for an incidental pulmonary nodule.

    For multiple nodules pass the size of the largest (solid) or, as the table says, use the
    most suspicious nodule to guide management.

    Args:
        diameter_mm: Average of long and short axis, mm (rounded to the nearest mm here).
        texture: Solid, part-solid or ground-glass.
        multiple: More than one nodule.
        risk: Clinical risk; used for solid nodules only. Defaults to high, the more
            cautious branch, when the caller does not know.
        solid_component_mm: Solid component of a part-solid nodule, mm; a persistent
            component >= 6 mm is highly suspicious (Table 1 comment).
        age_years: Patient age; under 35 is outside the guideline.
        known_cancer: Known primary cancer (outside the guideline).
        immunosuppressed: Immunocompromised patient (outside the guideline).
        screening: Found at lung cancer screening (outside the guideline; use Lung-RADS).

    Returns:
        The recommendation, with ``exclusion`` set if the guideline does not apply.

    Raises:
        ValueError: A negative diameter.
    """
    if not diameter_mm >= 0:
        raise ValueError(f"diameter_mm must be >= 0, got {diameter_mm!r}")
    exclusion = _exclusion(age_years, known_cancer, immunosuppressed, screening)
    if exclusion is not None:
        return FleischnerRecommendation(_EXCLUSION_TEXT[exclusion], exclusion=exclusion, cell="excluded")
    texture = NoduleTexture(texture)
    risk = PatientRisk(risk)
    size_mm = int(Decimal(str(diameter_mm)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if texture is NoduleTexture.SOLID:
        return _solid(size_mm, multiple, risk)
    return _subsolid(size_mm, texture, multiple, solid_component_mm)


def _exclusion(
    age_years: float | None, known_cancer: bool, immunosuppressed: bool, screening: bool
) -> FleischnerExclusion | None:
    if screening:
        return FleischnerExclusion.SCREENING
    if age_years is not None and age_years < MIN_AGE_YEARS:
        return FleischnerExclusion.AGE_UNDER_35
    if known_cancer:
        return FleischnerExclusion.KNOWN_CANCER
    if immunosuppressed:
        return FleischnerExclusion.IMMUNOSUPPRESSED
    return None


_NO_FOLLOW_UP = "No routine follow-up."
_OPTIONAL_12 = "Optional CT at 12 months."


def _solid(size_mm: int, multiple: bool, risk: PatientRisk) -> FleischnerRecommendation:
    high = risk is PatientRisk.HIGH
    kind = "multiple" if multiple else "single"
    band = "<6" if size_mm < 6 else ("6-8" if size_mm <= 8 else ">8")
    cell = f"solid {kind} {band} mm {risk.value} risk"
    if band == "<6":
        if high:
            return FleischnerRecommendation(_OPTIONAL_12, (FollowUpWindow(12, 12, optional=True),), cell=cell)
        return FleischnerRecommendation(_NO_FOLLOW_UP, cell=cell)
    if not multiple and band == ">8":
        return FleischnerRecommendation(
            "Consider CT at 3 months, PET/CT, or tissue sampling.", (FollowUpWindow(3, 3, optional=True),), cell=cell
        )
    first = FollowUpWindow(3, 6) if multiple else FollowUpWindow(6, 12)
    second = FollowUpWindow(18, 24, optional=not high)
    then = "then CT at 18-24 months." if high else "then consider CT at 18-24 months."
    text = f"CT at {first.earliest_months}-{first.latest_months} months, {then}"
    return FleischnerRecommendation(text, (first, second), cell=cell)


def _subsolid(
    size_mm: int, texture: NoduleTexture, multiple: bool, solid_component_mm: float | None
) -> FleischnerRecommendation:
    small = size_mm < 6
    if multiple:
        if small:
            return FleischnerRecommendation(
                "CT at 3-6 months. If stable, consider CT at 2 and 4 years.",
                (FollowUpWindow(3, 6), FollowUpWindow(24, 24, optional=True), FollowUpWindow(48, 48, optional=True)),
                cell="subsolid multiple <6 mm",
            )
        return FleischnerRecommendation(
            "CT at 3-6 months. Subsequent management based on the most suspicious nodule(s).",
            (FollowUpWindow(3, 6),),
            cell="subsolid multiple >=6 mm",
        )
    if texture is NoduleTexture.GROUND_GLASS:
        if small:
            return FleischnerRecommendation(_NO_FOLLOW_UP, cell="ground-glass single <6 mm")
        return FleischnerRecommendation(
            "CT at 6-12 months to confirm persistence, then CT every 2 years until 5 years.",
            (FollowUpWindow(6, 12),),
            repeat_every_months=24,
            repeat_until_months=60,
            cell="ground-glass single >=6 mm",
        )
    if small:
        return FleischnerRecommendation(_NO_FOLLOW_UP, cell="part-solid single <6 mm")
    text = (
        "CT at 3-6 months to confirm persistence. If unchanged and solid component remains <6 mm, "
        "annual CT should be performed for 5 years."
    )
    if solid_component_mm is not None and solid_component_mm >= 6:
        text += " A persistent part-solid nodule with a solid component >= 6 mm is highly suspicious."
    return FleischnerRecommendation(
        text,
        (FollowUpWindow(3, 6),),
        repeat_every_months=12,
        repeat_until_months=60,
        cell="part-solid single >=6 mm",
    )
