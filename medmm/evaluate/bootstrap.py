"""Case-resampling bootstrap: the draws and the percentile interval, in one place.

Every bootstrap in :mod:`medmm.evaluate` resamples whole cases (scans) with replacement,
as many as there are, the way the LUNA16 evaluation script resamples scans (Setio et
al., Med. Image Anal. 42:1-13, 2017; Efron & Tibshirani, An Introduction to the
Bootstrap, 1993). A replicate is represented by how many times each case was drawn,
so statistics can be computed from weighted counts without copying samples.

The interval is the script's percentile rule: with ``a = (1 - confidence) / 2`` and the
``B`` replicate values sorted, the bounds are the values at indices ``floor(a * B)``
and ``floor((1 - a) * B)`` (for B = 1,000 at 95 %: indices 25 and 975).

Example:
    >>> counts = resample_counts(5, 3, seed=0)
    >>> counts.shape, counts.sum(axis=1).tolist()
    ((3, 5), [5, 5, 5])
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["percentile_bounds", "percentile_interval", "resample_counts"]


def resample_counts(n_cases: int, n_replicates: int, seed: int) -> np.ndarray:
    """How many times each case is drawn in each replicate.

    The draws are ``numpy.random.default_rng(seed).integers(0, n_cases,
    size=(n_replicates, n_cases))``, so a replicate can be rebuilt case by case.

    Shapes:
        Output: ``(n_replicates, n_cases)`` int64, each row summing to ``n_cases``.
    """
    if n_cases <= 0 or n_replicates <= 0:
        return np.zeros((max(n_replicates, 0), max(n_cases, 0)), np.int64)
    draws = np.random.default_rng(seed).integers(0, n_cases, size=(n_replicates, n_cases))
    offsets = (np.arange(n_replicates)[:, None] * n_cases + draws).ravel()
    return np.bincount(offsets, minlength=n_replicates * n_cases).reshape(n_replicates, n_cases)


def _indices(n: int, confidence: float) -> tuple[int, int]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n <= 0:
        raise ValueError("no replicate values")
    a = (1.0 - confidence) / 2.0
    return min(math.floor(a * n), n - 1), min(math.floor((1.0 - a) * n), n - 1)


def percentile_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of 1-D replicate values (the LUNA16 script's rule)."""
    vec = np.sort(np.asarray(values, np.float64).reshape(-1))
    lo, hi = _indices(len(vec), confidence)
    return float(vec[lo]), float(vec[hi])


def percentile_bounds(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of each column of ``(B, G)`` replicate values.

    Shapes:
        - values: ``(B, G)``
        - Output: two ``(G,)`` arrays (lower, upper).
    """
    ordered = np.sort(np.asarray(values, np.float64), axis=0)
    lo, hi = _indices(len(ordered), confidence)
    return ordered[lo], ordered[hi]
