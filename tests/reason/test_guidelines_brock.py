"""Brock (PanCan) full model with spiculation (McWilliams et al., N Engl J Med 2013;369:910-919, model 2b).

No published worked example (input set with its printed probability) was found, so the three
examples below are computed by hand here, as plain arithmetic, from the coefficients as printed
to six or seven decimals in an independent public implementation of model 2b; the library uses
the four-decimal values of the paper's supplement. Agreement to 0.1 percentage points checks
the transform, the centring and the signs along a separate code path.
"""

from __future__ import annotations

import math

import pytest

from medmm.reason.guidelines import BROCK_DEFAULTS, BrockInputs, NoduleTexture, Sex, brock_probability

TOLERANCE = 0.001  # 0.1 percentage points


def _by_hand(
    age: float,
    female: int,
    family: int,
    emphysema: int,
    d_mm: float,
    part: int,
    non: int,
    upper: int,
    n: int,
    spic: int,
) -> float:
    size = (d_mm / 10) ** -0.5 - 1.58113883
    logit = (
        -6.78917
        + 0.0286687 * (age - 62)
        + 0.6011 * female
        + 0.296109 * family
        + 0.2953112 * emphysema
        - 5.385484 * size
        + 0.377 * part
        - 0.1276 * non
        + 0.6581383 * upper
        - 0.0824156 * (n - 4)
        + 0.7729335 * spic
    )
    return 1 / (1 + math.exp(-logit))


EXAMPLES = [
    pytest.param(
        BrockInputs(10.0, 62, Sex.FEMALE, False, False, NoduleTexture.SOLID, True, 1, True),
        _by_hand(62, 1, 0, 0, 10.0, 0, 0, 1, 1, 1),
        0.2010,
        id="62F-10mm-solid-upper-spiculated-single",
    ),
    pytest.param(
        BrockInputs(15.0, 70, Sex.MALE, True, True, NoduleTexture.PART_SOLID, True, 2, False),
        _by_hand(70, 0, 1, 1, 15.0, 1, 0, 1, 2, 0),
        0.3429,
        id="70M-15mm-partsolid-upper-emphysema-family-2nodules",
    ),
    pytest.param(
        BrockInputs(6.0, 55, Sex.FEMALE, False, False, NoduleTexture.GROUND_GLASS, False, 5, False),
        _by_hand(55, 1, 0, 0, 6.0, 0, 1, 0, 5, 0),
        0.0065,
        id="55F-6mm-nonsolid-lower-5nodules",
    ),
]


@pytest.mark.parametrize(("inputs", "by_hand", "pinned"), EXAMPLES)
def test_examples_by_hand(inputs: BrockInputs, by_hand: float, pinned: float) -> None:
    result = brock_probability(inputs)
    assert result.probability == pytest.approx(by_hand, abs=TOLERANCE)
    assert result.probability == pytest.approx(pinned, abs=TOLERANCE)
    assert result.assumed == ()


def test_missing_inputs_are_assumed_and_listed() -> None:
    result = brock_probability(BrockInputs(diameter_mm=8.0, age_years=70, upper_lobe=True))
    assert result.assumed == ("sex", "family_history", "emphysema", "texture", "nodule_count", "spiculation")
    explicit = brock_probability(
        BrockInputs(8.0, 70, BROCK_DEFAULTS["sex"], False, False, NoduleTexture.SOLID, True, 1, False)  # type: ignore[arg-type]
    )
    assert result.probability == explicit.probability
    assert result.inputs.sex is Sex.FEMALE
    assert result.inputs.nodule_count == 1


def test_everything_assumed_but_size() -> None:
    result = brock_probability(BrockInputs(diameter_mm=4.0))
    assert set(result.assumed) == set(BROCK_DEFAULTS)
    # At the centring values (age 62, 4 mm, 4 nodules) only intercept, female and the count term remain.
    expected = 1 / (1 + math.exp(-(-6.7892 + 0.6011 - 0.0824 * (1 - 4))))
    assert result.probability == pytest.approx(expected, rel=1e-9)


def test_monotone_in_size_and_spiculation() -> None:
    small = brock_probability(BrockInputs(5.0, 65, "male"))
    large = brock_probability(BrockInputs(20.0, 65, "male"))
    spiculated = brock_probability(BrockInputs(20.0, 65, "male", spiculation=True))
    assert small.probability < large.probability < spiculated.probability
    assert 0.0 < small.probability < 1.0


@pytest.mark.parametrize("kwargs", [{"diameter_mm": 0.0}, {"diameter_mm": 5.0, "nodule_count": 0}])
def test_invalid_inputs(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        BrockInputs(**kwargs)  # type: ignore[arg-type]
