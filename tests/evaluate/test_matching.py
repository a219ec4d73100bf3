"""The LUNA16 matching rules, case by case."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from medmm.evaluate import CandidateStatus, DetectionMatch, PredictionSet, ReferenceSet, match_detections
from medmm.types import ReferenceNodule


def _match(
    marks: list[tuple[str, float, float, float, float]],
    included: list[tuple[str, tuple[float, float, float], float | None]],
    excluded: Sequence[tuple[str, tuple[float, float, float], float | None]] = (),
    series: Sequence[str] = ("s",),
    cap: int | None = 100,
) -> DetectionMatch:
    ref = ReferenceSet(
        tuple(ReferenceNodule(u, c, d) for u, c, d in included),
        tuple(ReferenceNodule(u, c, d) for u, c, d in excluded),
        tuple(series),
        complete=True,
    )
    return match_detections(PredictionSet.from_records(marks), ref, series, max_candidates_per_scan=cap)


def test_hit_needs_distance_strictly_below_the_radius() -> None:
    m = _match([("s", 5.0, 0, 0, 0.9), ("s", 4.999, 0, 0, 0.8)], [("s", (0.0, 0.0, 0.0), 10.0)])
    assert [m.status(i) for i in range(2)] == [CandidateStatus.FALSE_POSITIVE, CandidateStatus.HIT]
    assert m.nodule_best_score[0] == 0.8


def test_unknown_diameter_is_10_mm() -> None:
    m = _match([("s", 4.9, 0, 0, 0.9), ("s", 5.1, 0, 0, 0.8)], [], [("s", (0.0, 0.0, 0.0), None)])
    assert [m.status(i).value for i in range(2)] == ["ignored_excluded", "false_positive"]
    m = _match([("s", 4.9, 0, 0, 0.9)], [("s", (0.0, 0.0, 0.0), None)])
    assert m.status(0) is CandidateStatus.HIT


def test_several_marks_on_one_nodule_count_once_at_the_best_score() -> None:
    m = _match(
        [("s", 0, 0, 0, 0.2), ("s", 1, 0, 0, 0.7), ("s", 0, 1, 0, 0.7), ("s", 0, 0, 1, 0.1)],
        [("s", (0.0, 0.0, 0.0), 6.0)],
    )
    assert m.count("hit") == 4 and m.count("false_positive") == 0
    assert m.nodule_best_score[0] == 0.7 and m.nodule_best_candidate[0] == 1  # earlier row wins the tie
    assert m.nodule_hits[0] == 4


def test_a_mark_between_two_nodules_detects_both() -> None:
    m = _match([("s", 0, 0, 0, 0.5)], [("s", (-2.0, 0.0, 0.0), 6.0), ("s", (2.5, 0.0, 0.0), 6.0)])
    assert m.nodules_hit[0] == 2 and m.detected.all()
    assert m.nodule_index[0] == 0  # the nearer one, for the audit table


def test_included_wins_over_excluded() -> None:
    m = _match(
        [("s", 0, 0, 0, 0.5), ("s", 30, 0, 0, 0.4)],
        [("s", (0.0, 0.0, 0.0), 6.0)],
        [("s", (0.0, 0.0, 0.0), 20.0), ("s", (30.0, 0.0, 0.0), 3.0)],
    )
    assert [m.status(i).value for i in range(2)] == ["hit", "ignored_excluded"]


def test_findings_only_match_marks_of_their_own_scan() -> None:
    m = _match(
        [("a", 0, 0, 0, 0.5), ("b", 0, 0, 0, 0.5), ("x", 0, 0, 0, 0.5)],
        [("a", (0.0, 0.0, 0.0), 6.0)],
        series=("a", "b"),
    )
    assert [m.status(i).value for i in range(3)] == ["hit", "false_positive", "unknown_series"]
    assert m.scan_index.tolist() == [0, 1, -1]


def test_distance_to_the_nearest_nodule_is_recorded() -> None:
    m = _match([("s", 3, 4, 0, 0.5)], [("s", (0.0, 0.0, 0.0), 4.0)])
    assert m.distance_mm[0] == pytest.approx(5.0) and m.status(0) is CandidateStatus.FALSE_POSITIVE
    m = _match([("s", 3, 4, 0, 0.5)], [], series=("s",))
    assert np.isnan(m.distance_mm[0])


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="unique"):
        _match([], [], series=("a", "a"))
    with pytest.raises(ValueError, match="max_candidates"):
        _match([], [], cap=0)
