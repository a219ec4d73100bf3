"""Binary decisions: sensitivity, specificity, PPV, NPV with Wilson intervals; ROC and AUC.

Conventions:

* **Wilson score interval** (Wilson, J. Am. Stat. Assoc. 22:209, 1927; method 3 of
  Newcombe, Stat. Med. 17:857, 1998) for every proportion, with
  ``z = Phi^-1(1 - (1 - confidence) / 2)`` (1.959964 for 95 %). It stays inside [0, 1]
  and is sensible at 0/n and n/n, where the Wald interval is not. A proportion over 0
  cases is undefined: value and bounds are None, never 0.
* **Decision rule.** A case is called positive when its score is ``>= threshold``.
* **ROC** over the distinct scores from high to low (tied scores make one step, hence a
  diagonal segment), starting at (0, 0). **AUC** is the trapezoidal area under it, which
  equals the Mann-Whitney probability that a positive outscores a negative with ties
  counted one half (what ``sklearn.metrics.roc_auc_score`` computes). It is undefined
  when one class is absent.
* **Bootstrap CI of the AUC and the ROC band**: cases resampled with replacement,
  :func:`medmm.evaluate.bootstrap.resample_counts`; replicates missing a class are left
  out and counted; the bounds are the LUNA16 script's percentile rule
  (:func:`medmm.evaluate.bootstrap.percentile_interval`). The band gives, at each FPR of a
  0.01 grid, the interval of the TPR read off each replicate's curve (top of a
  vertical step at an exact hit, linear between points).

Example:
    >>> wilson_interval(8, 10)           # doctest: +ELLIPSIS
    (0.49016..., 0.94331...)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from medmm.evaluate.bootstrap import percentile_bounds, percentile_interval, resample_counts
from medmm.evaluate.froc import sensitivity_at

__all__ = [
    "BinaryMetrics",
    "Proportion",
    "RocResult",
    "binary_metrics",
    "compute_roc",
    "proportion",
    "roc_auc",
    "roc_points",
    "wilson_interval",
]


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def wilson_interval(successes: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``successes / total``.

    Raises:
        ValueError: ``total`` is 0 (the proportion is undefined) or counts are inconsistent.
    """
    if total <= 0:
        raise ValueError("a proportion over 0 cases has no interval")
    if not 0 <= successes <= total:
        raise ValueError(f"successes must be in [0, total], got {successes}/{total}")
    z = _z(confidence)
    p = successes / total
    z2n = z * z / total
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / total + z * z / (4.0 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Proportion:
    """A proportion with its Wilson interval (None throughout when ``total`` is 0)."""

    successes: int
    total: int
    value: float | None
    ci_low: float | None
    ci_high: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "successes": self.successes,
            "total": self.total,
        }

    def __str__(self) -> str:
        if self.value is None:
            return f"undefined (0/{self.total})"
        return f"{self.value:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}] ({self.successes}/{self.total})"


def proportion(successes: int, total: int, confidence: float = 0.95) -> Proportion:
    """``successes / total`` with its Wilson interval."""
    if total == 0:
        return Proportion(0, 0, None, None, None)
    lo, hi = wilson_interval(successes, total, confidence)
    return Proportion(int(successes), int(total), successes / total, lo, hi)


@dataclass(frozen=True)
class BinaryMetrics:
    """Confusion counts at a threshold and the proportions derived from them."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: Proportion
    specificity: Proportion
    ppv: Proportion
    npv: Proportion
    accuracy: Proportion

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {"threshold": self.threshold, "tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn}
        for name in ("sensitivity", "specificity", "ppv", "npv", "accuracy"):
            out[name] = getattr(self, name).to_dict()
        return out


def binary_metrics(truth: np.ndarray, scores: np.ndarray, threshold: float, confidence: float = 0.95) -> BinaryMetrics:
    """Sensitivity, specificity, PPV, NPV and accuracy of ``score >= threshold``.

    Shapes:
        truth, scores: ``(n,)``; truth boolean.
    """
    y = np.asarray(truth, bool)
    called = np.asarray(scores, np.float64) >= threshold
    tp = int(np.count_nonzero(y & called))
    fp = int(np.count_nonzero(~y & called))
    tn = int(np.count_nonzero(~y & ~called))
    fn = int(np.count_nonzero(y & ~called))
    return BinaryMetrics(
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        sensitivity=proportion(tp, tp + fn, confidence),
        specificity=proportion(tn, tn + fp, confidence),
        ppv=proportion(tp, tp + fp, confidence),
        npv=proportion(tn, tn + fn, confidence),
        accuracy=proportion(tp + tn, len(y), confidence),
    )


def roc_points(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (negatives, positives) called at each distinct score, from (0, 0).

    Returns:
        ``(fp_counts, tp_counts, thresholds)``; thresholds start with ``inf``.
    """
    y = np.asarray(truth, bool)
    s = np.asarray(scores, np.float64)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True]) if len(s) else np.zeros(0, np.int64)
    tp = np.r_[0, np.cumsum(y, dtype=np.int64)[last]]
    fp = np.r_[0, np.cumsum(~y, dtype=np.int64)[last]]
    return fp, tp, np.r_[np.inf, s[last]]


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count one half); None when a class is absent."""
    fp, tp, _ = roc_points(truth, scores)
    if fp[-1] == 0 or tp[-1] == 0:
        return None
    area2 = np.sum((fp[1:] - fp[:-1]) * (tp[1:] + tp[:-1]), dtype=np.float64)  # exact in integers
    return float(area2 / (2.0 * fp[-1] * tp[-1]))


@dataclass(frozen=True, eq=False)
class RocResult:
    """ROC analysis of per-case scores.

    Attributes:
        fpr: False-positive rate at each point (from 0; all 0 without negatives).
        tpr: True-positive rate at each point (all 0 without positives).
        thresholds: Score at each point (``inf`` for the origin): cases scoring
            ``>= threshold`` are called positive.
        fp_counts: Negatives called positive at each point.
        tp_counts: Positives called positive at each point.
        auc: Area under the curve (None: one class absent).
        auc_ci: Bootstrap interval of the AUC (None without bootstrap or AUC).
        n_positive: Positive cases.
        n_negative: Negative cases.
        n_bootstrap: Replicates drawn (0: none).
        n_undefined: Replicates missing a class (left out).
        band_fpr: FPR grid of the band (empty without bootstrap).
        band_tpr_low: Lower TPR bound at each grid FPR.
        band_tpr_high: Upper TPR bound at each grid FPR.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    fp_counts: np.ndarray
    tp_counts: np.ndarray
    auc: float | None
    auc_ci: tuple[float, float] | None
    n_positive: int
    n_negative: int
    n_bootstrap: int = 0
    n_undefined: int = 0
    band_fpr: np.ndarray | None = None
    band_tpr_low: np.ndarray | None = None
    band_tpr_high: np.ndarray | None = None


def compute_roc(
    truth: np.ndarray,
    scores: np.ndarray,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> RocResult:
    """ROC curve, AUC and (optionally) their bootstrap over cases.

    Args:
        truth: Case labels.
        scores: Case scores (``-inf`` allowed: never called positive).
        n_bootstrap: Replicates (0: none).
        seed: Seed of the draws.
        confidence: Confidence level.

    Shapes:
        truth, scores: ``(n,)``
    """
    y = np.asarray(truth, bool)
    s = np.asarray(scores, np.float64)
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    fp, tp, thr = roc_points(y, s)
    n_pos, n_neg = int(tp[-1]), int(fp[-1])
    auc = roc_auc(y, s)
    fpr = fp / n_neg if n_neg else np.zeros(len(fp))
    tpr = tp / n_pos if n_pos else np.zeros(len(tp))
    if n_bootstrap <= 0 or auc is None:
        return RocResult(fpr, tpr, thr, fp, tp, auc, None, n_pos, n_neg)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    last = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    grid = np.round(np.linspace(0.0, 1.0, 101), 10)
    aucs = np.full(n_bootstrap, np.nan)
    band = np.full((n_bootstrap, len(grid)), np.nan)
    weights = resample_counts(len(y), n_bootstrap, seed)[:, order]
    cum_tp = np.hstack([np.zeros((n_bootstrap, 1), np.int64), np.cumsum(weights * y_sorted, axis=1)[:, last]])
    cum_fp = np.hstack([np.zeros((n_bootstrap, 1), np.int64), np.cumsum(weights * ~y_sorted, axis=1)[:, last]])
    for r in range(n_bootstrap):
        p, q = cum_tp[r, -1], cum_fp[r, -1]
        if p == 0 or q == 0:
            continue
        area2 = np.sum((cum_fp[r, 1:] - cum_fp[r, :-1]) * (cum_tp[r, 1:] + cum_tp[r, :-1]), dtype=np.float64)
        aucs[r] = area2 / (2.0 * p * q)
        band[r] = sensitivity_at(cum_fp[r] / q, cum_tp[r] / p, grid)
    ok = np.isfinite(aucs)
    if not ok.any():
        return RocResult(fpr, tpr, thr, fp, tp, auc, None, n_pos, n_neg, n_bootstrap, n_bootstrap)
    low, high = percentile_bounds(band[ok], confidence)
    return RocResult(
        fpr,
        tpr,
        thr,
        fp,
        tp,
        auc,
        percentile_interval(aucs[ok], confidence),
        n_pos,
        n_neg,
        n_bootstrap,
        int((~ok).sum()),
        grid,
        low,
        high,
    )
