"""Match candidate marks to reference nodules by the LUNA16 rules.

The rules are those of the LUNA16 challenge's evaluation script
(``noduleCADEvaluationLUNA16.py``; Setio et al., "Validation, comparison, and
combination of algorithms for automatic detection of pulmonary nodules in computed
tomography images: the LUNA16 challenge", Med. Image Anal. 42:1-13, 2017, section 2.3),
implemented here independently:

1. **Per-scan cap.** When a scan has more than ``max_candidates_per_scan`` marks (LUNA16:
   100), only marks scoring strictly above the score of the 101st highest mark are
   scored. A tie across the cut therefore drops the whole tied group and fewer than 100
   marks may remain: that is what the script does. The others are ``not_scored``.
2. **Hit.** A mark hits a reference finding when its squared distance to the finding's
   centre is strictly less than the squared radius (half the diameter). A finding of
   unknown diameter (LUNA16's -1) gets a 10 mm diameter, as in the script.
3. **True positive.** A scored mark hitting at least one included nodule is a ``hit``.
   A mark hitting two included nodules counts for both (the script warns about it but
   counts it for each).
4. **Once per nodule.** A nodule hit by several marks is detected once, at the highest
   score among them; the other marks on it are neither true nor false positives.
5. **Excluded findings.** A scored mark that hits no included nodule but hits an
   excluded (irrelevant) finding is ``ignored_excluded``: not a false positive.
6. **False positive.** Every other scored mark.

Marks on series outside the evaluated list are ``unknown_series`` and take no part.

Example:
    >>> match = match_detections(predictions, reference, series_uids)    # doctest: +SKIP
    >>> match.nodule_best_score        # NaN where a nodule was missed     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from medmm.evaluate.readers import PredictionSet, ReferenceSet
from medmm.types import ReferenceNodule

__all__ = [
    "LUNA16_MAX_CANDIDATES_PER_SCAN",
    "LUNA16_UNKNOWN_DIAMETER_MM",
    "CandidateStatus",
    "DetectionMatch",
    "match_detections",
]

LUNA16_MAX_CANDIDATES_PER_SCAN = 100
LUNA16_UNKNOWN_DIAMETER_MM = 10.0


class CandidateStatus(StrEnum):
    """What the protocol made of one mark."""

    HIT = "hit"
    FALSE_POSITIVE = "false_positive"
    IGNORED_EXCLUDED = "ignored_excluded"
    NOT_SCORED = "not_scored"
    UNKNOWN_SERIES = "unknown_series"


_STATUSES = tuple(CandidateStatus)
_CODE = {s: np.int8(i) for i, s in enumerate(_STATUSES)}


@dataclass(frozen=True, eq=False)
class DetectionMatch:
    """Every mark and every reference nodule after matching.

    Attributes:
        predictions: The marks matched (all rows, unknown series included).
        reference: The reference matched against.
        series_uids: The evaluated scans; ``scan_index`` values index this tuple.
        max_candidates_per_scan: The cap applied (None: no cap).
        scan_index: Scan of each mark, -1 for a series not evaluated.
        status_code: Index into ``tuple(CandidateStatus)`` of each mark (see :meth:`status`).
        nodule_index: Nearest included nodule the mark hits (index into
            ``reference.nodules``), -1 when it hits none.
        nodules_hit: How many included nodules the mark hits.
        excluded_index: Nearest excluded finding hit by an ``ignored_excluded`` mark, else -1.
        distance_mm: Distance to the nearest included nodule of the scan (NaN: none).
        nodule_scan_index: Scan of each included nodule, -1 when its series is not evaluated.
        nodule_best_score: Highest score among the marks hitting each nodule (NaN: missed).
        nodule_best_candidate: Row of that mark (-1: missed). Ties go to the earlier row.
        nodule_hits: Number of scored marks hitting each nodule.

    Shapes:
        - per mark (N = len(predictions)): scan_index, status_code, nodule_index,
          nodules_hit, excluded_index, distance_mm
        - per included nodule (K = len(reference.nodules)): nodule_scan_index,
          nodule_best_score, nodule_best_candidate, nodule_hits
    """

    predictions: PredictionSet
    reference: ReferenceSet
    series_uids: tuple[str, ...]
    max_candidates_per_scan: int | None
    scan_index: np.ndarray
    status_code: np.ndarray
    nodule_index: np.ndarray
    nodules_hit: np.ndarray
    excluded_index: np.ndarray
    distance_mm: np.ndarray
    nodule_scan_index: np.ndarray
    nodule_best_score: np.ndarray
    nodule_best_candidate: np.ndarray
    nodule_hits: np.ndarray

    @property
    def n_scans(self) -> int:
        """Number of evaluated scans."""
        return len(self.series_uids)

    def status(self, row: int) -> CandidateStatus:
        """Status of mark ``row``."""
        return _STATUSES[int(self.status_code[row])]

    def count(self, status: CandidateStatus | str) -> int:
        """Number of marks with this status."""
        return int(np.count_nonzero(self.status_code == _CODE[CandidateStatus(status)]))

    def is_status(self, status: CandidateStatus | str) -> np.ndarray:
        """Boolean mask of the marks with this status."""
        return self.status_code == _CODE[CandidateStatus(status)]

    @property
    def evaluated_nodules(self) -> np.ndarray:
        """Mask of the included nodules on evaluated scans."""
        return self.nodule_scan_index >= 0

    @property
    def detected(self) -> np.ndarray:
        """Mask of the included nodules hit by at least one scored mark."""
        return np.isfinite(self.nodule_best_score)


def _radius_sq(items: Sequence[ReferenceNodule]) -> np.ndarray:
    diam = np.array(
        [n.diameter_mm if n.diameter_mm is not None else LUNA16_UNKNOWN_DIAMETER_MM for n in items], np.float64
    )
    return (diam / 2.0) ** 2


def _centres(items: Sequence[ReferenceNodule]) -> np.ndarray:
    return np.array([n.center_lps_mm for n in items], np.float64).reshape(-1, 3)


def _group(keys: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row indices of each group 0..n_groups-1 (rows in ascending order); -1 keys dropped."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(n_groups + 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(n_groups)]


def _squared_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` squared distances, summed x, y, z in that order."""
    d = a[:, None, :] - b[None, :, :]
    return d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]


def _scored_rows(rows: np.ndarray, scores: np.ndarray, cap: int | None) -> np.ndarray:
    """Mask of the rows kept by the per-scan cap (all when there is none or no need)."""
    if cap is None or len(rows) <= cap:
        return np.ones(len(rows), dtype=bool)
    s = scores[rows]
    cut = -np.sort(-s)[cap]  # score of the (cap + 1)-th highest mark
    return s > cut


def match_detections(
    predictions: PredictionSet,
    reference: ReferenceSet,
    series_uids: Sequence[str],
    *,
    max_candidates_per_scan: int | None = LUNA16_MAX_CANDIDATES_PER_SCAN,
) -> DetectionMatch:
    """Apply the LUNA16 matching rules (see the module docstring) scan by scan.

    Args:
        predictions: The marks.
        reference: Included nodules and excluded findings.
        series_uids: The evaluated scans (unique).
        max_candidates_per_scan: Per-scan cap (LUNA16: 100); None scores every mark.

    Returns:
        The status of every mark and the detection of every included nodule.
    """
    uids = tuple(series_uids)
    if len(set(uids)) != len(uids):
        raise ValueError("series_uids must be unique")
    if max_candidates_per_scan is not None and max_candidates_per_scan < 1:
        raise ValueError(f"max_candidates_per_scan must be >= 1 or None, got {max_candidates_per_scan}")
    lookup = {u: i for i, u in enumerate(uids)}
    n = len(predictions)
    scan_index = np.fromiter((lookup.get(u, -1) for u in predictions.series_uids.tolist()), np.int64, n)
    status = np.full(n, _CODE[CandidateStatus.UNKNOWN_SERIES], np.int8)
    nodule_index = np.full(n, -1, np.int64)
    nodules_hit = np.zeros(n, np.int64)
    excluded_index = np.full(n, -1, np.int64)
    distance = np.full(n, np.nan)

    inc = reference.nodules
    k = len(inc)
    nod_scan = np.fromiter((lookup.get(x.series_uid, -1) for x in inc), np.int64, k)
    excl = reference.excluded
    exc_scan = np.fromiter((lookup.get(x.series_uid, -1) for x in excl), np.int64, len(excl))
    inc_c, inc_r2 = _centres(inc), _radius_sq(inc)
    exc_c, exc_r2 = _centres(reference.excluded), _radius_sq(reference.excluded)
    best_score = np.full(k, np.nan)
    best_cand = np.full(k, -1, np.int64)
    hits_per_nodule = np.zeros(k, np.int64)

    scores, centres = predictions.scores, predictions.centers_lps_mm
    by_scan = _group(scan_index, len(uids))
    nod_by_scan = _group(nod_scan, len(uids))
    exc_by_scan = _group(exc_scan, len(uids))
    for s in range(len(uids)):
        rows = by_scan[s]
        if len(rows) == 0:
            continue
        kept = _scored_rows(rows, scores, max_candidates_per_scan)
        status[rows[~kept]] = _CODE[CandidateStatus.NOT_SCORED]
        rows = rows[kept]
        if len(rows) == 0:
            continue
        free = np.ones(len(rows), dtype=bool)  # scored rows hitting no included nodule
        nods = nod_by_scan[s]
        if len(nods):
            d2 = _squared_distance(centres[rows], inc_c[nods])
            hit = d2 < inc_r2[nods][None, :]
            distance[rows] = np.sqrt(d2.min(axis=1))
            n_hit = hit.sum(axis=1)
            nodules_hit[rows] = n_hit
            is_hit = n_hit > 0
            free = ~is_hit
            masked = np.where(hit, d2, np.inf)
            nodule_index[rows[is_hit]] = nods[np.argmin(masked[is_hit], axis=1)]
            status[rows[is_hit]] = _CODE[CandidateStatus.HIT]
            for j, nod in enumerate(nods):
                members = np.flatnonzero(hit[:, j])
                if len(members):
                    top = members[np.argmax(scores[rows[members]])]
                    best_score[nod] = scores[rows[top]]
                    best_cand[nod] = rows[top]
                    hits_per_nodule[nod] = len(members)
        rest = rows[free]
        exc = exc_by_scan[s]
        if len(rest) and len(exc):
            d2e = _squared_distance(centres[rest], exc_c[exc])
            hit_e = d2e < exc_r2[exc][None, :]
            on_excluded = hit_e.any(axis=1)
            excluded_index[rest[on_excluded]] = exc[np.argmin(np.where(hit_e, d2e, np.inf)[on_excluded], axis=1)]
            status[rest[on_excluded]] = _CODE[CandidateStatus.IGNORED_EXCLUDED]
            rest = rest[~on_excluded]
        status[rest] = _CODE[CandidateStatus.FALSE_POSITIVE]
    return DetectionMatch(
        predictions=predictions,
        reference=reference,
        series_uids=uids,
        max_candidates_per_scan=max_candidates_per_scan,
        scan_index=scan_index,
        status_code=status,
        nodule_index=nodule_index,
        nodules_hit=nodules_hit,
        excluded_index=excluded_index,
        distance_mm=distance,
        nodule_scan_index=nod_scan,
        nodule_best_score=best_score,
        nodule_best_candidate=best_cand,
        nodule_hits=hits_per_nodule,
    )
