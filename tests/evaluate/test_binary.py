"""Sensitivity/specificity, Wilson intervals, ROC and AUC."""

from __future__ import annotations

import numpy as np
import pytest

from medmm.evaluate import (
    binary_metrics,
    compute_roc,
    percentile_interval,
    proportion,
    resample_counts,
    roc_auc,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    # Newcombe, Stat. Med. 17:857 (1998), Table I, method 3 (Wilson score, no continuity correction).
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_matches_newcombe_1998(x: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(x, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_wilson_by_hand() -> None:
    # 2/3 at 95 %: z = 1.959964, z^2 = 3.841459; centre = (2/3 + z^2/6) / (1 + z^2/3) = 0.573084;
    # half = z / (1 + z^2/3) * sqrt((2/3)(1/3)/3 + z^2/36) = 0.365424.
    lo, hi = wilson_interval(2, 3)
    assert lo == pytest.approx(0.573084 - 0.365424, abs=2e-6) and hi == pytest.approx(0.573084 + 0.365424, abs=2e-6)
    assert wilson_interval(5, 5)[1] == 1.0 and wilson_interval(0, 5)[0] == 0.0
    lo90, hi90 = wilson_interval(2, 3, confidence=0.90)
    assert lo < lo90 < hi90 < hi


def test_proportion_over_nothing_is_undefined_not_zero() -> None:
    p = proportion(0, 0)
    assert p.value is None and p.ci_low is None and "undefined" in str(p)
    with pytest.raises(ValueError, match="0 cases"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match=r"\[0, total\]"):
        wilson_interval(4, 3)


def test_binary_metrics_by_hand() -> None:
    truth = np.array([1, 1, 1, 0, 0, 0, 0], bool)
    scores = np.array([0.9, 0.5, 0.2, 0.6, 0.1, 0.3, -np.inf])
    m = binary_metrics(truth, scores, threshold=0.5)  # >= 0.5 is positive: 0.9, 0.5, 0.6
    assert (m.tp, m.fn, m.fp, m.tn) == (2, 1, 1, 3)
    assert m.sensitivity.value == pytest.approx(2 / 3) and m.specificity.value == pytest.approx(3 / 4)
    assert m.ppv.value == pytest.approx(2 / 3) and m.npv.value == pytest.approx(3 / 4)
    assert m.accuracy.value == pytest.approx(5 / 7)
    assert (m.sensitivity.ci_low, m.sensitivity.ci_high) == pytest.approx(wilson_interval(2, 3))
    assert (m.specificity.ci_low, m.specificity.ci_high) == pytest.approx(wilson_interval(3, 4))
    d = m.to_dict()
    assert d["sensitivity"]["successes"] == 2 and d["npv"]["total"] == 4


@pytest.mark.parametrize("seed", range(10))
def test_auc_matches_scikit_learn(seed: int) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    y = rng.random(n) < rng.uniform(0.1, 0.9)
    y[0], y[1] = True, False
    s = np.round(rng.normal(y * rng.uniform(0, 2), 1.0), int(rng.integers(0, 3)))  # rounding makes ties
    s[rng.random(n) < 0.1] = -np.inf  # scans without marks
    finite = np.where(np.isinf(s), s[np.isfinite(s)].min() - 1.0, s)
    assert roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, finite), abs=1e-9)
    roc = compute_roc(y, s, n_bootstrap=0)
    fpr, tpr, _ = metrics.roc_curve(y, finite, drop_intermediate=False)
    np.testing.assert_allclose(roc.fpr, fpr, atol=1e-12)
    np.testing.assert_allclose(roc.tpr, tpr, atol=1e-12)


def test_auc_bootstrap_matches_naive_resampling() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    y = rng.random(40) < 0.4
    s = np.round(rng.normal(y * 1.0, 1.0), 1)
    roc = compute_roc(y, s, n_bootstrap=300, seed=9)
    draws = np.random.default_rng(9).integers(0, 40, size=(300, 40))
    aucs = [metrics.roc_auc_score(y[d], s[d]) for d in draws if 0 < y[d].sum() < 40]
    assert roc.n_undefined == 300 - len(aucs)
    assert roc.auc_ci == pytest.approx(percentile_interval(np.array(aucs)), abs=1e-9)
    assert roc.auc_ci[0] <= roc.auc <= roc.auc_ci[1]  # type: ignore[index]
    assert roc.band_tpr_low is not None and np.all(roc.band_tpr_low <= roc.band_tpr_high)


def test_auc_undefined_with_one_class() -> None:
    roc = compute_roc(np.ones(4, bool), np.arange(4.0), n_bootstrap=10)
    assert roc.auc is None and roc.auc_ci is None and roc.n_negative == 0


def test_percentile_interval_uses_the_luna16_indices() -> None:
    values = np.arange(1000.0)[::-1]
    assert percentile_interval(values, 0.95) == (25.0, 975.0)
    assert resample_counts(3, 0, 0).shape == (0, 3)
