"""How well an attention (saliency) map points at the reference nodules.

Two measures, computed in world millimetres so that any grid can be scored:

* **Pointing game** (Zhang et al., "Top-down neural attention by excitation backprop",
  ECCV 2016 / IJCV 126:1084, 2018): a map scores a hit when its maximum falls inside a
  reference nodule, here the sphere of the nodule's reference diameter, grown by
  ``tolerance_mm`` (the original allows 15 pixels; medmm's default is 0 mm), or inside
  a given mask. Accuracy = hits / maps, with a Wilson interval.
* **Distance to centre**: from the map's peak, and from its centre of mass (negative
  values clipped to 0), to the nearest reference nodule centre, in mm.

Conventions: when several voxels share the maximum, the peak is the mean position of
those voxels (a flat map therefore points at its own middle, not everywhere). A map
with a NaN, or with no positive value for the centre of mass, is reported as such. A
nodule of unknown diameter is given 10 mm, LUNA16's convention. Maps are scored only
on cases with at least one reference nodule.

Example:
    >>> res = localize(attention_volume, reference_nodules)                  # doctest: +SKIP
    >>> summarize_localization([res, ...]).pointing_game                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medmm.errors import InputError
from medmm.evaluate.binary import Proportion, proportion
from medmm.evaluate.matching import LUNA16_UNKNOWN_DIAMETER_MM
from medmm.types import ReferenceNodule, Volume

__all__ = ["LocalizationResult", "LocalizationSummary", "localize", "summarize_localization"]


@dataclass(frozen=True)
class LocalizationResult:
    """One attention map scored against the nodules of its case.

    Attributes:
        peak_lps_mm: Position of the map's maximum.
        hit: Pointing-game hit.
        nearest_nodule: Index (into the nodules given) of the nodule nearest the peak.
        peak_distance_mm: Peak to the nearest nodule centre.
        centroid_lps_mm: Centre of mass of the positive part of the map (None if none).
        centroid_distance_mm: Centre of mass to the nearest nodule centre (None if none).
    """

    peak_lps_mm: tuple[float, float, float]
    hit: bool
    nearest_nodule: int
    peak_distance_mm: float
    centroid_lps_mm: tuple[float, float, float] | None
    centroid_distance_mm: float | None


def _triple(v: np.ndarray) -> tuple[float, float, float]:
    return (float(v[0]), float(v[1]), float(v[2]))


def localize(
    attention: Volume,
    nodules: Sequence[ReferenceNodule],
    *,
    tolerance_mm: float = 0.0,
    mask: np.ndarray | None = None,
) -> LocalizationResult:
    """Score one attention map.

    Args:
        attention: The map on its grid (any affine).
        nodules: Reference nodules of the case (at least one).
        tolerance_mm: Margin added to every nodule radius for the pointing game.
        mask: Optional boolean nodule mask on the map's grid; when given, a hit means
            the peak voxel (rounded peak position) lies in the mask.

    Raises:
        InputError: No nodule, a NaN in the map, or a mask of another shape.

    Shapes:
        - attention.array, mask: ``(Z, Y, X)``
    """
    if not nodules:
        raise InputError("the pointing game needs at least one reference nodule in the case")
    arr = np.asarray(attention.array, np.float64)
    series = attention.info.series_uid if attention.info is not None else None
    if np.isnan(arr).any():
        raise InputError("attention map contains NaN", series_uid=series, hint="Fix the map before scoring it.")
    if mask is not None and np.shape(mask) != arr.shape:
        raise InputError(f"mask shape {np.shape(mask)} differs from the map's {arr.shape}", series_uid=series)
    top = np.argwhere(arr == arr.max())
    peak_idx = top.mean(axis=0)
    peak = attention.index_to_world(peak_idx)
    centres = np.array([n.center_lps_mm for n in nodules], np.float64)
    radii = np.array([(n.diameter_mm or LUNA16_UNKNOWN_DIAMETER_MM) / 2.0 for n in nodules])
    dist = np.linalg.norm(centres - peak, axis=1)
    nearest = int(np.argmin(dist))
    if mask is not None:
        k, j, i = np.clip(np.rint(peak_idx).astype(int), 0, np.array(arr.shape) - 1)
        hit = bool(np.asarray(mask, bool)[k, j, i])
    else:
        hit = bool(np.any(dist <= radii + tolerance_mm))
    weights = np.clip(arr, 0.0, None)
    total = weights.sum()
    centroid = centroid_dist = None
    if total > 0:
        # Mean index along each axis from the marginal sums (no full index grid in memory).
        mean_idx = np.empty(3)
        for axis, size in enumerate(arr.shape):
            others = tuple(a for a in range(3) if a != axis)
            mean_idx[axis] = float(np.dot(weights.sum(axis=others), np.arange(size))) / total
        c = attention.index_to_world(mean_idx)
        centroid = _triple(c)
        centroid_dist = float(np.min(np.linalg.norm(centres - c, axis=1)))
    return LocalizationResult(_triple(peak), hit, nearest, float(dist[nearest]), centroid, centroid_dist)


@dataclass(frozen=True)
class LocalizationSummary:
    """Localization over many maps.

    Attributes:
        pointing_game: Hits / maps with a Wilson interval.
        peak_distance_mm_median: Median peak-to-nearest-centre distance.
        peak_distance_mm_mean: Mean of the same.
        centroid_distance_mm_median: Median centre-of-mass distance (maps with positive mass).
        n_maps: Maps scored.
    """

    pointing_game: Proportion
    peak_distance_mm_median: float | None
    peak_distance_mm_mean: float | None
    centroid_distance_mm_median: float | None
    n_maps: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "pointing_game": self.pointing_game.to_dict(),
            "peak_distance_mm_median": self.peak_distance_mm_median,
            "peak_distance_mm_mean": self.peak_distance_mm_mean,
            "centroid_distance_mm_median": self.centroid_distance_mm_median,
            "n_maps": self.n_maps,
        }


def summarize_localization(results: Sequence[LocalizationResult], confidence: float = 0.95) -> LocalizationSummary:
    """Pointing-game accuracy and distance statistics over maps."""
    hits = sum(r.hit for r in results)
    peak = np.array([r.peak_distance_mm for r in results], np.float64)
    cen = np.array([r.centroid_distance_mm for r in results if r.centroid_distance_mm is not None], np.float64)
    return LocalizationSummary(
        pointing_game=proportion(hits, len(results), confidence),
        peak_distance_mm_median=float(np.median(peak)) if len(peak) else None,
        peak_distance_mm_mean=float(np.mean(peak)) if len(peak) else None,
        centroid_distance_mm_median=float(np.median(cen)) if len(cen) else None,
        n_maps=len(results),
    )
