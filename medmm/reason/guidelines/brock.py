"""Brock University (PanCan) probability that a screen-detected nodule is cancer.

Source: McWilliams A, Tammemagi MC, Mayo JR, et al. "Probability of Cancer in Pulmonary
Nodules Detected on First Screening CT". N Engl J Med 2013;369(10):910-919,
doi:10.1056/NEJMoa1214726; the full model with spiculation ("model 2b") of its
Supplementary Appendix. The model is a logistic regression

    logit = -6.7892 + 0.0287 (age - 62) + 0.6011 female + 0.2961 family history
            + 0.2953 emphysema - 5.3854 [(diameter / 10) ** -0.5 - 1.58113883]
            + 0.377 part-solid - 0.1276 non-solid + 0.6581 upper lobe
            - 0.0824 (nodule count - 4) + 0.7729 spiculation

with diameter in mm (1.58113883 = (4 / 10) ** -0.5 centres the size term on 4 mm) and
probability = 1 / (1 + exp(-logit)). The supplement itself was not in reach of this
session; the coefficients were read in two independent public implementations that cite
model 2b of the paper (one giving them to four decimals, the other to six or seven:
0.0286687, 0.296109, 0.2953112, -5.385484, 0.6581383, 0.7729335, -0.0824156, -6.78917),
which agree to the published four-decimal values used here.

Inputs the caller does not know are filled with stated assumptions and listed in
:attr:`BrockResult.assumed`, so a report can say "assumed". The defaults:

* age 62 years: the centring value of the model (PanCan cohort);
* female sex: the sex with the higher risk in the model, so an unknown sex never lowers the estimate;
* no family history of lung cancer, no emphysema, no spiculation: absent unless reported;
* not in an upper lobe: absent unless the location is known;
* nodule count 1: the count with the highest risk in the model (fewer nodules, higher risk);
* solid texture.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from medmm.types import NoduleTexture

__all__ = [
    "BROCK_COEFFICIENTS",
    "BROCK_DEFAULTS",
    "BrockInputs",
    "BrockResult",
    "Sex",
    "brock_probability",
]


class Sex(StrEnum):
    """Patient sex as the Brock model codes it."""

    FEMALE = "female"
    MALE = "male"


@dataclass(frozen=True)
class _Coefficients:
    intercept: float = -6.7892
    age_per_year: float = 0.0287
    age_centre_years: float = 62.0
    female: float = 0.6011
    family_history: float = 0.2961
    emphysema: float = 0.2953
    size: float = -5.3854
    size_centre: float = 1.58113883  # (4 mm / 10) ** -0.5
    part_solid: float = 0.377
    non_solid: float = -0.1276
    upper_lobe: float = 0.6581
    count_per_nodule: float = -0.0824
    count_centre: float = 4.0
    spiculation: float = 0.7729


BROCK_COEFFICIENTS = _Coefficients()
"""Full model with spiculation (McWilliams et al. 2013, Supplementary Appendix, model 2b)."""

_AGE_DEFAULT_YEARS = 62.0
_SEX_DEFAULT = Sex.FEMALE
_TEXTURE_DEFAULT = NoduleTexture.SOLID
_COUNT_DEFAULT = 1

BROCK_DEFAULTS: Mapping[str, object] = MappingProxyType(
    {
        "age_years": _AGE_DEFAULT_YEARS,
        "sex": _SEX_DEFAULT,
        "family_history": False,
        "emphysema": False,
        "texture": _TEXTURE_DEFAULT,
        "upper_lobe": False,
        "nodule_count": _COUNT_DEFAULT,
        "spiculation": False,
    }
)
"""Values assumed for inputs the caller leaves as None (see the module docstring for why)."""


@dataclass(frozen=True)
class BrockInputs:
    """Inputs of the Brock model; None means "not known" and is filled from :data:`BROCK_DEFAULTS`.

    Args:
        diameter_mm: Nodule size, mm (the paper: maximum diameter on the axial image). Required.
        age_years: Patient age.
        sex: Patient sex.
        family_history: Lung cancer in a first-degree relative.
        emphysema: Emphysema on CT.
        texture: Solid, part-solid or non-solid (ground-glass).
        upper_lobe: Nodule in an upper lobe (the paper does not say how the lingula was coded;
            pass what the reader decides).
        nodule_count: Number of nodules in the patient's scan.
        spiculation: Spiculated margin.
    """

    diameter_mm: float
    age_years: float | None = None
    sex: Sex | str | None = None
    family_history: bool | None = None
    emphysema: bool | None = None
    texture: NoduleTexture | str | None = None
    upper_lobe: bool | None = None
    nodule_count: int | None = None
    spiculation: bool | None = None

    def __post_init__(self) -> None:
        if self.sex is not None:
            object.__setattr__(self, "sex", Sex(self.sex))
        if self.texture is not None:
            object.__setattr__(self, "texture", NoduleTexture(self.texture))
        if not self.diameter_mm > 0:
            raise ValueError(f"diameter_mm must be > 0 (the size term is diameter ** -0.5), got {self.diameter_mm!r}")
        if self.nodule_count is not None and self.nodule_count < 1:
            raise ValueError(f"nodule_count must be >= 1, got {self.nodule_count!r}")


@dataclass(frozen=True)
class BrockResult:
    """Brock probability of cancer and what it assumed.

    Attributes:
        probability: Probability that the nodule is cancer, 0-1.
        logit: The linear predictor.
        assumed: Names of the inputs filled from :data:`BROCK_DEFAULTS`, in field order.
        inputs: The inputs actually used, defaults filled in.
    """

    probability: float
    logit: float
    assumed: tuple[str, ...]
    inputs: BrockInputs


def brock_probability(inputs: BrockInputs) -> BrockResult:
    """Probability of cancer by the Brock full model with spiculation (McWilliams et al. 2013, model 2b).

    Args:
        inputs: The nodule and patient; unknown fields as None.

    Returns:
        The probability, the logit, and the list of assumed inputs.
    """
    assumed = tuple(name for name in BROCK_DEFAULTS if getattr(inputs, name) is None)
    full = BrockInputs(
        diameter_mm=inputs.diameter_mm,
        age_years=_AGE_DEFAULT_YEARS if inputs.age_years is None else inputs.age_years,
        sex=_SEX_DEFAULT if inputs.sex is None else inputs.sex,
        family_history=bool(inputs.family_history),
        emphysema=bool(inputs.emphysema),
        texture=_TEXTURE_DEFAULT if inputs.texture is None else inputs.texture,
        upper_lobe=bool(inputs.upper_lobe),
        nodule_count=_COUNT_DEFAULT if inputs.nodule_count is None else inputs.nodule_count,
        spiculation=bool(inputs.spiculation),
    )
    age_years = _AGE_DEFAULT_YEARS if full.age_years is None else full.age_years
    nodule_count = _COUNT_DEFAULT if full.nodule_count is None else full.nodule_count
    c = BROCK_COEFFICIENTS
    logit = (
        c.intercept
        + c.age_per_year * (age_years - c.age_centre_years)
        + (c.female if full.sex is Sex.FEMALE else 0.0)
        + (c.family_history if full.family_history else 0.0)
        + (c.emphysema if full.emphysema else 0.0)
        + c.size * ((full.diameter_mm / 10.0) ** -0.5 - c.size_centre)
        + (c.part_solid if full.texture is NoduleTexture.PART_SOLID else 0.0)
        + (c.non_solid if full.texture is NoduleTexture.GROUND_GLASS else 0.0)
        + (c.upper_lobe if full.upper_lobe else 0.0)
        + c.count_per_nodule * (nodule_count - c.count_centre)
        + (c.spiculation if full.spiculation else 0.0)
    )
    probability = 1.0 / (1.0 + math.exp(-logit))
    return BrockResult(probability=probability, logit=logit, assumed=assumed, inputs=full)
