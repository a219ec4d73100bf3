"""One detection per stated nodule: medmm.fusion.claims and its use in the size prior."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from medmm.fusion.claims import claimed_elsewhere, finding_groups
from medmm.fusion.size import CLAIMED_WEIGHT, SIZE_FLOOR, size_prior

REPORT = (
    "FINDINGS:\n"
    "Lungs: There is a 1.0 cm smooth nodule in the right upper lobe. "
    "Right upper lobe: round solid nodule measuring 9 x 8 mm. No consolidation.\n\n"
    "IMPRESSION:\n"
    "1. 1.0 cm RUL nodule, likely benign.\n"
)


def _spans(*needles: str) -> list[tuple[int, int]]:
    from medmm.text.mentions import split_sentences

    sentences = split_sentences(REPORT)
    out = []
    for needle in needles:
        at = REPORT.index(needle)
        out.append(next((a, b) for a, b, _ in sentences if a <= at < b))
    return out


def _tokens(lobe_columns: list[int]) -> SimpleNamespace:
    """One token per detection, at its centre, wholly in the given lobe column."""
    pos = torch.tensor([[50.0 * i, 0.0, 0.0] for i in range(len(lobe_columns))])
    lobes = torch.zeros(len(lobe_columns), 5)
    for i, c in enumerate(lobe_columns):
        lobes[i, c] = 1.0
    return SimpleNamespace(positions_lps_mm=pos, lobes=lobes)


# detections 0 (9.5 mm, RUL), 1 (10.0 mm, RUL), 2 (15 mm, RLL)
DETECTIONS = [
    {"center_lps_mm": [0.0, 0.0, 0.0], "diameter_mm": 9.5, "probability": 0.99},
    {"center_lps_mm": [50.0, 0.0, 0.0], "diameter_mm": 10.0, "probability": 0.95},
    {"center_lps_mm": [100.0, 0.0, 0.0], "diameter_mm": 15.0, "probability": 0.99},
]


def test_two_same_lobe_nodules_claim_one_detection_each() -> None:
    spans = _spans("1.0 cm smooth", "9 x 8 mm", "1.0 cm RUL")
    claims = claimed_elsewhere(REPORT, spans, DETECTIONS, _tokens([0, 0, 2]))  # type: ignore[arg-type]
    # the 10 mm sentence (and its repeat in the impression) must not take the 9.5 mm detection,
    # the 9 mm sentence not the 10.0 mm one; the RLL detection is nobody's
    assert claims == [frozenset({0}), frozenset({1}), frozenset({0})]


def test_a_sentence_given_once_per_mention_is_one_sentence() -> None:
    one, two = _spans("1.0 cm smooth", "9 x 8 mm")
    claims = claimed_elsewhere(REPORT, [one, one, two], DETECTIONS, _tokens([0, 0, 2]))  # type: ignore[arg-type]
    assert claims == [frozenset({0}), frozenset({0}), frozenset({1})]


def test_one_finding_claims_nothing_and_no_detection_fits_claims_nothing() -> None:
    one, _, repeat = _spans("1.0 cm smooth", "9 x 8 mm", "1.0 cm RUL")
    assert claimed_elsewhere(REPORT, [one, repeat], DETECTIONS, _tokens([0, 0, 2])) == [frozenset(), frozenset()]  # type: ignore[arg-type]
    # every detection in another lobe: no pair reaches the claim score
    far = claimed_elsewhere(REPORT, _spans("1.0 cm smooth", "9 x 8 mm"), DETECTIONS, _tokens([3, 3, 3]))  # type: ignore[arg-type]
    assert far == [frozenset(), frozenset()]


def test_finding_groups_split_within_a_section_and_merge_across() -> None:
    assert finding_groups([("RUL", 10.0), ("RUL", 9.0), ("RUL", 10.0), (None, 6.0)], ["F", "F", "I", "F"]) == [
        0,
        1,
        0,
        None,
    ]
    # the same size twice in one section is two nodules
    assert finding_groups([("LLL", 6.0), ("LLL", 6.0)], ["F", "F"]) == [0, 1]


def test_a_claimed_detection_keeps_a_tenth_of_its_size_match() -> None:
    pos = np.array([[0.0, 0.0, 0.0], [50.0, 0.0, 0.0]])
    free = size_prior(pos, DETECTIONS[:2], 10.0)
    held = size_prior(pos, DETECTIONS[:2], 10.0, claimed=frozenset({1}))
    assert free is not None and held is not None
    assert held[0] == free[0]
    assert np.isclose(held[1] - SIZE_FLOOR, CLAIMED_WEIGHT * (free[1] - SIZE_FLOOR))
    assert held[1] < held[0] < free[1]
