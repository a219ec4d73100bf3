"""medmm's LUNA16 FROC/CPM against the independent oracle (tests/evaluate/luna16_oracle.py)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from medmm.errors import InputError
from medmm.evaluate import (
    LUNA16_FP_RATES,
    FrocResult,
    FrocSamples,
    PredictionSet,
    ReferenceSet,
    compute_froc,
    match_detections,
    read_luna16_reference,
    resample_counts,
    sensitivity_at,
)
from tests.conftest import LIDC_DIR, require_shared
from tests.evaluate import luna16_oracle as oracle
from tests.evaluate.conftest import RandomCase, add_random_marks, random_case

TOL = 1e-6


def medmm_froc(case: RandomCase, n_bootstrap: int = 0, seed: int = 0, cap: int | None = 100) -> FrocResult:
    match = match_detections(case.predictions(), case.reference(), case.series, max_candidates_per_scan=cap)
    return compute_froc(FrocSamples.from_match(match), n_bootstrap=n_bootstrap, seed=seed)


def assert_agrees(case: RandomCase, cap: int | None = 100) -> None:
    sens, cpm = oracle.froc(case.marks, case.included, case.excluded, case.series, cap)
    froc = medmm_froc(case, cap=cap)
    got = [p.sensitivity for p in froc.operating_points]
    np.testing.assert_allclose(got, sens, atol=TOL, rtol=0)
    assert abs(froc.cpm - cpm) < TOL


@pytest.mark.parametrize("seed", range(40))
def test_cpm_agrees_with_oracle_on_random_synthetic_sets(seed: int) -> None:
    case = random_case(seed)
    if not case.included:
        case.included.append((case.series[0], 0.0, 0.0, 0.0, 8.0))
    assert_agrees(case)


def test_cpm_agrees_without_cap_and_with_small_cap() -> None:
    case = random_case(101, n_scans=12)
    case.included.append((case.series[0], 1.0, 2.0, 3.0, 9.0))
    for cap in (None, 5, 100):
        assert_agrees(case, cap)


@pytest.mark.realdata
@pytest.mark.parametrize("seed", range(12))
def test_cpm_agrees_with_oracle_on_the_real_luna16_reference(seed: int) -> None:
    ann = require_shared(LIDC_DIR / "luna16_annotations.csv")
    ref = read_luna16_reference(ann, LIDC_DIR / "luna16_annotations_excluded.csv")
    real_uid = ref.nodules[0].series_uid
    as_tuple = [(n.series_uid, *n.center_lps_mm, n.diameter_mm) for n in ref.nodules]
    excluded = [(n.series_uid, *n.center_lps_mm, n.diameter_mm) for n in ref.excluded]
    rng = np.random.default_rng(seed)
    # The real scan plus nodule-free scans, so that FP rates spread over the 1/8..8 range.
    series = [real_uid] + [f"2.25.{seed}.{i}" for i in range(int(rng.integers(0, 12)))]
    case = RandomCase([], as_tuple, excluded, series)
    for uid in series:
        add_random_marks(rng, case, uid, int(rng.choice([0, 2, 8, 30, 120])), float(rng.choice([0.0, 0.1])))
    assert_agrees(case)


def test_hand_built_curve_and_operating_points() -> None:
    # 4 scans, 2 nodules. Marks: nodule A at 0.9 (and a weaker duplicate 0.3), FP 0.8,
    # FP 0.7 tied with nodule B at 0.7, FP 0.2, and a mark on an excluded finding (0.95).
    s = ["a", "b", "c", "d"]
    case = RandomCase(
        marks=[
            ("a", 0, 0, 0, 0.9),
            ("a", 1, 0, 0, 0.3),
            ("a", 50, 0, 0, 0.8),
            ("b", 0, 0, 0, 0.7),
            ("c", 50, 50, 50, 0.7),
            ("d", 9, 9, 9, 0.2),
            ("d", 80, 0, 0, 0.95),
        ],
        included=[("a", 0, 0, 0, 6.0), ("b", 0.5, 0, 0, 6.0)],
        excluded=[("d", 80, 0, 0, None)],
        series=s,
    )
    froc = medmm_froc(case)
    # Points: (0,0) -> 0.9:(0,1/2) -> 0.8:(1/4,1/2) -> 0.7:(2/4,2/2) -> 0.3 is a hit already counted
    # (no sample) -> 0.2:(3/4,1).
    np.testing.assert_allclose(froc.fps_per_scan, [0, 0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(froc.sensitivity, [0, 0.5, 0.5, 1.0, 1.0])
    # 1/8: halfway between (0, 1/2) and (1/4, 1/2) -> 1/2; 1/4 -> 1/2; 1/2 and beyond -> 1.
    assert [p.sensitivity for p in froc.operating_points] == pytest.approx([0.5, 0.5, 1, 1, 1, 1, 1])
    assert froc.cpm == pytest.approx(6 / 7)
    assert (froc.n_detected, froc.n_false_positives, froc.n_nodules) == (2, 3, 2)


def test_vertical_step_at_an_operating_point_reads_its_top() -> None:
    # 8 scans; one FP at 0.9 (1/8 FP per scan exactly), then a nodule at 0.8: the curve is
    # vertical at x = 1/8 from 0 to 1/2; numpy.interp (and the script) read the top.
    series = [f"s{i}" for i in range(8)]
    case = RandomCase(
        marks=[("s0", 99, 99, 99, 0.9), ("s1", 0, 0, 0, 0.8)],
        included=[("s1", 0, 0, 0, 10.0), ("s2", 0, 0, 0, 10.0)],
        excluded=[],
        series=series,
    )
    froc = medmm_froc(case)
    assert froc.operating_points[0].sensitivity == 0.5
    assert np.interp(0.125, froc.fps_per_scan, froc.sensitivity) == 0.5


def test_sensitivity_at_follows_numpy_interp() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        x = np.sort(rng.integers(0, 10, 12)) / 4.0  # repeated values: vertical steps
        y = np.sort(rng.random(12))
        q = np.r_[rng.uniform(-1, 4, 20), x]
        np.testing.assert_allclose(sensitivity_at(x, y, q), np.interp(q, x, y), atol=1e-12)


def test_cap_keeps_marks_strictly_above_the_101st_score() -> None:
    uid = "s"
    marks = [(uid, 200.0 + i, 0.0, 0.0, 1.0 - i / 1000) for i in range(99)]
    marks += [(uid, 500.0, 0.0, 0.0, 0.5), (uid, 0.0, 0.0, 0.0, 0.5), (uid, 600.0, 0.0, 0.0, 0.5)]  # 100th-102nd
    case = RandomCase(marks, [(uid, 0.0, 0.0, 0.0, 5.0)], [], [uid])
    match = match_detections(case.predictions(), case.reference(), [uid])
    assert match.count("not_scored") == 3  # the tie across the cut drops the whole tied group
    assert not match.detected[0]
    assert_agrees(case)
    case.marks = case.marks[:-1]  # 101 marks: the 101st (0.5) sets the cut, the 100th (0.5) is tied -> both out
    assert match_detections(case.predictions(), case.reference(), [uid]).count("not_scored") == 2


def test_no_false_positive_gives_final_sensitivity_everywhere() -> None:
    case = RandomCase([("a", 0, 0, 0, 0.4)], [("a", 0, 0, 0, 5.0), ("b", 0, 0, 0, 5.0)], [], ["a", "b"])
    froc = medmm_froc(case)
    assert [p.sensitivity for p in froc.operating_points] == [0.5] * 7
    assert_agrees(case)


def test_nothing_detected_is_zero_not_nan() -> None:
    case = RandomCase([("a", 50, 0, 0, 0.4)], [("a", 0, 0, 0, 5.0)], [], ["a"])
    froc = medmm_froc(case)
    assert froc.cpm == 0.0 and all(p.sensitivity == 0.0 for p in froc.operating_points)


def test_no_nodule_is_refused() -> None:
    case = RandomCase([("a", 50, 0, 0, 0.4)], [], [], ["a"])
    with pytest.raises(InputError, match="undefined"):
        medmm_froc(case)


@pytest.mark.parametrize(("case_seed", "distinct"), [(4, False), (7, False), (10, True)])
def test_bootstrap_matches_a_naive_scan_resampling(case_seed: int, distinct: bool) -> None:
    case = random_case(case_seed, n_scans=15)
    if distinct:  # no tied scores at all: medmm's in-place accumulation path
        seen: set[float] = set()
        case.marks = [m for m in case.marks if not (m[4] in seen or seen.add(m[4]))]  # type: ignore[func-returns-value]
    b, seed = 200, 11
    froc = medmm_froc(case, n_bootstrap=b, seed=seed)
    scans = oracle.per_scan(case.marks, case.included, case.excluded, case.series)
    # The same draws as medmm documents, pooled scan by scan as the LUNA16 script does.
    draws = np.random.default_rng(seed).integers(0, len(case.series), size=(b, len(case.series)))
    values = [oracle.cpm_of_scans([scans[case.series[i]] for i in row]) for row in draws]
    defined = sorted(float(v) for v in values if v is not None)
    lo, hi = defined[int(0.025 * len(defined))], defined[int(0.975 * len(defined))]
    assert froc.bootstrap is not None
    assert froc.bootstrap.n_undefined == sum(v is None for v in values)
    assert froc.cpm_ci == pytest.approx((lo, hi), abs=1e-9)
    assert froc.bootstrap.cpm_mean == pytest.approx(float(np.mean(defined)), abs=1e-9)
    # Per-rate interval at 1 FP per scan, the same way.
    k = LUNA16_FP_RATES.index(1.0)
    per_rate = []
    for row in draws:
        pooled = [scans[case.series[i]] for i in row]
        n_nod = sum(s[1] for s in pooled)
        if n_nod:
            pts = oracle.curve([e for s in pooled for e in s[0]], len(pooled), n_nod)
            per_rate.append(float(oracle.read_at(pts, Fraction(1))))
    per_rate.sort()
    point = froc.operating_points[k]
    assert (point.ci_low, point.ci_high) == pytest.approx(
        (per_rate[int(0.025 * len(per_rate))], per_rate[int(0.975 * len(per_rate))]), abs=1e-9
    )


def test_resample_counts_are_the_documented_draws() -> None:
    counts = resample_counts(6, 4, seed=5)
    draws = np.random.default_rng(5).integers(0, 6, size=(4, 6))
    for row, d in zip(counts, draws, strict=True):
        assert row.tolist() == np.bincount(d, minlength=6).tolist()


def test_bootstrap_is_reproducible_and_brackets_the_estimate() -> None:
    case = random_case(3, n_scans=20)
    case.included.append((case.series[0], 0.0, 0.0, 0.0, 8.0))
    a = medmm_froc(case, n_bootstrap=300, seed=1)
    b = medmm_froc(case, n_bootstrap=300, seed=1)
    assert a.cpm_ci == b.cpm_ci and a.cpm_ci is not None
    assert a.cpm_ci[0] <= a.bootstrap.cpm_mean <= a.cpm_ci[1]  # type: ignore[union-attr]


def test_empty_prediction_set_scores_zero() -> None:
    ref = ReferenceSet((), (), ("a",), complete=True)
    match = match_detections(PredictionSet.empty(), ref, ["a"])
    assert len(match.status_code) == 0
