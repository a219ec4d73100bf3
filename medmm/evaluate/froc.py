"""FROC curve, the LUNA16 competition performance metric (CPM), and its bootstrap CI.

Conventions (LUNA16 evaluation script ``noduleCADEvaluationLUNA16.py``; Setio et al.,
Med. Image Anal. 42:1-13, 2017, section 2.3; CPM: Niemeijer et al., IEEE Trans. Med.
Imaging 30:215, 2011), implemented independently:

* **What is scored.** One sample per detected included nodule, at the highest score of
  the marks hitting it, and one per false-positive mark (see
  :mod:`medmm.evaluate.matching`). A missed nodule has no sample but counts in the
  denominator of the sensitivity; ignored marks count nowhere.
* **The curve** is the ROC of those samples: going down the distinct scores (ties form
  one step, so a tie between a nodule and a false positive gives a diagonal segment),
  each point is (false positives so far / number of scans, nodules detected so far /
  all included nodules). It starts at (0, 0). The number of scans is the length of the
  evaluated list, scans without nodules or marks included.
* **Operating points.** Sensitivity at 1/8, 1/4, 1/2, 1, 2, 4 and 8 FPs per scan is
  read off the curve by linear interpolation between its points, as the script does
  with ``numpy.interp``: where the curve is vertical at exactly the requested rate, the
  top of the vertical step is taken; beyond the last point the last sensitivity holds.
  medmm interpolates in exact counts (a requested rate times the number of scans
  against integer FP counts). The script computes the FP rate as
  ``FPR * (#negatives) / #scans``, whose rounding can put a point a hair either side of
  an operating point that it hits exactly; then the script can read the bottom of a
  vertical step instead of its top. medmm reads the exact value.
* **CPM** is the mean of the seven sensitivities.
* **No false positives** gives the final sensitivity at every rate (the script's special
  case). **No detected nodule** gives 0 (the script gets NaN from an undefined TPR).
  **No included nodule** leaves sensitivity undefined: :func:`compute_froc` refuses.
* **Bootstrap** (as the script): resample the scans with replacement, as many as there
  are, and recompute the curve on the pooled samples of the drawn scans (a scan drawn
  twice contributes twice, the number of scans stays the same). The CI bounds are the
  sorted replicate values at ``floor(a * B)`` and ``floor((1 - a) * B)`` with
  ``a = (1 - confidence) / 2`` (for 1,000 replicates and 95 %: the 26th and 976th
  values). Replicates without any nodule have no sensitivity; they are left out and
  counted. The CPM CI is taken over the replicates' CPMs (the script only bands the
  curve). Draws: :func:`medmm.evaluate.bootstrap.resample_counts`.

Example:
    >>> froc = compute_froc(FrocSamples.from_match(match), n_bootstrap=1000, seed=0)  # doctest: +SKIP
    >>> froc.cpm, froc.cpm_ci                                                          # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medmm.errors import InputError
from medmm.evaluate.bootstrap import percentile_bounds, percentile_interval, resample_counts
from medmm.evaluate.matching import CandidateStatus, DetectionMatch

__all__ = [
    "LUNA16_FP_RATES",
    "FrocBootstrap",
    "FrocResult",
    "FrocSamples",
    "OperatingPoint",
    "compute_froc",
    "sensitivity_at",
]

LUNA16_FP_RATES: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)

# Bootstrap replicates processed per block. Small blocks keep the (block x samples)
# temporaries near the CPU caches: 8 was twice as fast as 64 on 888 scans x 100 marks.
_BLOCK = 8


@dataclass(frozen=True, eq=False)
class FrocSamples:
    """What the FROC scores: detected nodules and false positives, per scan.

    Attributes:
        scan_index: Scan of each sample.
        scores: Score of each sample.
        is_nodule: True for a detected nodule (at its best score), False for a false positive.
        nodules_per_scan: Included nodules of each scan, detected or not.

    Shapes:
        - scan_index, scores, is_nodule: ``(M,)``
        - nodules_per_scan: ``(S,)``, S = number of evaluated scans
    """

    scan_index: np.ndarray
    scores: np.ndarray
    is_nodule: np.ndarray
    nodules_per_scan: np.ndarray

    @property
    def n_scans(self) -> int:
        """Number of evaluated scans."""
        return len(self.nodules_per_scan)

    @property
    def n_nodules(self) -> int:
        """Included nodules on the evaluated scans."""
        return int(self.nodules_per_scan.sum())

    @classmethod
    def from_match(cls, match: DetectionMatch) -> FrocSamples:
        """The samples of a LUNA16 match (best score per detected nodule, and every FP)."""
        evaluated = match.evaluated_nodules
        found = evaluated & match.detected
        fp = match.is_status(CandidateStatus.FALSE_POSITIVE)
        scan = np.concatenate([match.nodule_scan_index[found], match.scan_index[fp]])
        scores = np.concatenate([match.nodule_best_score[found], match.predictions.scores[fp]])
        is_nodule = np.concatenate([np.ones(int(found.sum()), bool), np.zeros(int(fp.sum()), bool)])
        per_scan = np.bincount(match.nodule_scan_index[evaluated], minlength=match.n_scans)
        return cls(scan, scores, is_nodule, per_scan)


@dataclass(frozen=True)
class OperatingPoint:
    """Sensitivity at one FP rate, with its bootstrap interval when computed."""

    fps_per_scan: float
    sensitivity: float
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass(frozen=True, eq=False)
class FrocBootstrap:
    """Bootstrap of the FROC over scans.

    Attributes:
        n_replicates: Replicates drawn.
        n_undefined: Replicates without any nodule (left out).
        seed: Seed of the draws.
        confidence: Confidence level of the intervals.
        cpm_mean: Mean CPM over the defined replicates.
        cpm_ci: Percentile interval of the CPM.
        grid_fps_per_scan: FP rates of the band (log-spaced 1/8..8, the seven points included).
        sensitivity_mean: Mean sensitivity at each grid rate.
        sensitivity_low: Lower bound at each grid rate.
        sensitivity_high: Upper bound at each grid rate.
    """

    n_replicates: int
    n_undefined: int
    seed: int
    confidence: float
    cpm_mean: float
    cpm_ci: tuple[float, float]
    grid_fps_per_scan: np.ndarray
    sensitivity_mean: np.ndarray
    sensitivity_low: np.ndarray
    sensitivity_high: np.ndarray


@dataclass(frozen=True, eq=False)
class FrocResult:
    """A FROC analysis.

    Attributes:
        fps_per_scan: Curve abscissae, from 0.
        sensitivity: Curve ordinates.
        thresholds: Score at each point (``inf`` for the origin).
        operating_points: Sensitivity at each requested FP rate.
        cpm: Mean of the operating-point sensitivities.
        cpm_ci: Bootstrap interval of the CPM (None without bootstrap).
        n_scans: Scans evaluated (the FP-rate divisor).
        n_nodules: Included nodules on them.
        n_detected: Nodules hit by a scored mark.
        n_false_positives: False-positive marks.
        bootstrap: The bootstrap details (None without bootstrap).
    """

    fps_per_scan: np.ndarray
    sensitivity: np.ndarray
    thresholds: np.ndarray
    operating_points: tuple[OperatingPoint, ...]
    cpm: float
    cpm_ci: tuple[float, float] | None
    n_scans: int
    n_nodules: int
    n_detected: int
    n_false_positives: int
    bootstrap: FrocBootstrap | None = None


def sensitivity_at(fps_per_scan: np.ndarray, sensitivity: np.ndarray, fp_rates: Sequence[float]) -> np.ndarray:
    """Read a FROC curve at FP rates by linear interpolation between its points.

    Same rule as ``numpy.interp`` on a non-decreasing abscissa: at a rate equal to a
    vertical step the top of the step, before the first point the first value, beyond
    the last point the last value.
    """
    x = np.asarray(fps_per_scan, np.float64)
    y = np.asarray(sensitivity, np.float64)
    q = np.asarray(fp_rates, np.float64)
    j = np.searchsorted(x, q, side="right") - 1
    j = np.clip(j, 0, len(x) - 1)
    nxt = np.minimum(j + 1, len(x) - 1)
    dx = x[nxt] - x[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        step = np.where(dx > 0, np.maximum(q - x[j], 0.0) * (y[nxt] - y[j]) / np.where(dx > 0, dx, 1.0), 0.0)
    return y[j] + step


class _SortedSamples:
    """Samples sorted by descending score, with the ends of the tied-score runs."""

    def __init__(self, samples: FrocSamples) -> None:
        order = np.argsort(-samples.scores, kind="stable")
        scores = samples.scores[order]
        self.scan = samples.scan_index[order]
        self.tp = samples.is_nodule[order]
        last = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True]) if len(scores) else np.zeros(0, np.int64)
        self.group_end = last
        self.thresholds = scores[last]

    def counts(self, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative (FP, TP) counts at each distinct score, with a leading 0.

        Args:
            weights: ``(B, S)`` multiplicity of each scan per replicate, or None (all 1).

        Shapes:
            Output: ``(G + 1,)`` each without weights, ``(B, G + 1)`` with.
        """
        if weights is None:
            tp = np.cumsum(self.tp, dtype=np.int64)[self.group_end]
            fp = np.cumsum(~self.tp, dtype=np.int64)[self.group_end]
            return np.r_[0, fp], np.r_[0, tp]
        w = weights[:, self.scan]
        tp = np.zeros((len(w), len(self.group_end) + 1), np.int64)
        fp = np.zeros_like(tp)
        if len(self.group_end) == len(self.scan):  # no tied scores: accumulate in place
            np.cumsum(w * self.tp, axis=1, out=tp[:, 1:])
            np.cumsum(w, axis=1, out=fp[:, 1:])
        else:
            tp[:, 1:] = np.cumsum(w * self.tp, axis=1)[:, self.group_end]
            fp[:, 1:] = np.cumsum(w, axis=1)[:, self.group_end]
        fp -= tp
        return fp, tp


def _interp_counts(cum_fp: np.ndarray, cum_tp: np.ndarray, target_fp: np.ndarray) -> np.ndarray:
    """Detected-nodule count at each target FP count, interpolated (numpy.interp's rule)."""
    last = len(cum_fp) - 1
    j = np.clip(np.searchsorted(cum_fp, target_fp, side="right") - 1, 0, last)
    nxt = np.minimum(j + 1, last)
    dfp = cum_fp[nxt] - cum_fp[j]
    frac = np.where(dfp > 0, (target_fp - cum_fp[j]) / np.where(dfp > 0, dfp, 1), 0.0)
    return cum_tp[j] + frac * (cum_tp[nxt] - cum_tp[j])


def _log_grid(fp_rates: Sequence[float]) -> np.ndarray:
    """1/8..8 FPs per scan, 20 points per doubling, plus the requested rates."""
    lo, hi = min(fp_rates), max(fp_rates)
    exps = np.round(np.arange(math.log2(lo), math.log2(hi) + 1e-9, 0.05), 10)
    return np.unique(np.concatenate([np.exp2(exps), np.asarray(fp_rates, np.float64)]))


def compute_froc(
    samples: FrocSamples,
    *,
    fp_rates: Sequence[float] = LUNA16_FP_RATES,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> FrocResult:
    """FROC curve, sensitivities at ``fp_rates``, CPM and bootstrap intervals.

    Args:
        samples: From :meth:`FrocSamples.from_match`.
        fp_rates: Operating points in FPs per scan (LUNA16's seven by default).
        n_bootstrap: Bootstrap replicates over scans (0: none).
        seed: Seed of the bootstrap draws.
        confidence: Confidence level of the intervals.

    Raises:
        InputError: No scan, or no included nodule on the evaluated scans.
    """
    n_scans = samples.n_scans
    if n_scans == 0:
        raise InputError("no scan to evaluate", hint="Give a non-empty series list or reference.")
    if samples.n_nodules == 0:
        raise InputError(
            "no reference nodule on the evaluated scans: FROC sensitivity is undefined",
            hint="Check that the series list and the reference belong together.",
        )
    if n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    if not fp_rates or min(fp_rates) <= 0:
        raise ValueError(f"fp_rates must be positive, got {tuple(fp_rates)}")
    rates = np.asarray(fp_rates, np.float64)
    target = rates * n_scans
    prepared = _SortedSamples(samples)
    cum_fp, cum_tp = prepared.counts()
    sens_pts = _interp_counts(cum_fp.astype(np.float64), cum_tp.astype(np.float64), target) / samples.n_nodules
    fps = cum_fp / n_scans
    sens = cum_tp / samples.n_nodules
    thresholds = np.r_[np.inf, prepared.thresholds]
    cpm = float(np.mean(sens_pts))
    boot = _bootstrap(prepared, samples, rates, n_bootstrap, seed, confidence) if n_bootstrap else None
    points = []
    for rate, value in zip(rates.tolist(), sens_pts.tolist(), strict=True):
        lo = hi = None
        if boot is not None:
            k = int(np.searchsorted(boot.grid_fps_per_scan, rate))
            lo, hi = float(boot.sensitivity_low[k]), float(boot.sensitivity_high[k])
        points.append(OperatingPoint(rate, float(value), lo, hi))
    return FrocResult(
        fps_per_scan=fps,
        sensitivity=sens,
        thresholds=thresholds,
        operating_points=tuple(points),
        cpm=cpm,
        cpm_ci=boot.cpm_ci if boot is not None else None,
        n_scans=n_scans,
        n_nodules=samples.n_nodules,
        n_detected=int(samples.is_nodule.sum()),
        n_false_positives=int((~samples.is_nodule).sum()),
        bootstrap=boot,
    )


def _bootstrap(
    prepared: _SortedSamples,
    samples: FrocSamples,
    rates: np.ndarray,
    n_bootstrap: int,
    seed: int,
    confidence: float,
) -> FrocBootstrap:
    n_scans = samples.n_scans
    all_weights = resample_counts(n_scans, n_bootstrap, seed)
    grid = _log_grid(rates.tolist())
    grid_target = grid * n_scans
    rate_target = rates * n_scans
    curves = np.full((n_bootstrap, len(grid)), np.nan)
    cpms = np.full(n_bootstrap, np.nan)
    for start in range(0, n_bootstrap, _BLOCK):
        weights = all_weights[start : start + _BLOCK]
        b = len(weights)
        totals = weights @ samples.nodules_per_scan
        cum_fp, cum_tp = prepared.counts(weights)
        cum_fp_f, cum_tp_f = cum_fp.astype(np.float64), cum_tp.astype(np.float64)
        for r in range(b):
            if totals[r] == 0:
                continue
            curves[start + r] = _interp_counts(cum_fp_f[r], cum_tp_f[r], grid_target) / totals[r]
            cpms[start + r] = np.mean(_interp_counts(cum_fp_f[r], cum_tp_f[r], rate_target) / totals[r])
    defined = np.isfinite(cpms)
    n_defined = int(defined.sum())
    if n_defined == 0:
        nan_band = np.full(len(grid), np.nan)
        nan_ci = (math.nan, math.nan)
        return FrocBootstrap(
            n_bootstrap, n_bootstrap, seed, confidence, math.nan, nan_ci, grid, nan_band, nan_band, nan_band
        )
    curves, cpms = curves[defined], cpms[defined]
    low, high = percentile_bounds(curves, confidence)
    return FrocBootstrap(
        n_replicates=n_bootstrap,
        n_undefined=n_bootstrap - n_defined,
        seed=seed,
        confidence=confidence,
        cpm_mean=float(cpms.mean()),
        cpm_ci=percentile_interval(cpms, confidence),
        grid_fps_per_scan=grid,
        sensitivity_mean=curves.mean(axis=0),
        sensitivity_low=low,
        sensitivity_high=high,
    )
