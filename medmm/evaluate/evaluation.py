"""One call that evaluates a detection system: LUNA16 FROC/CPM, per-scan and per-nodule.

:func:`evaluate_detections` chooses the scans, matches marks to the reference with the
LUNA16 rules (:mod:`medmm.evaluate.matching`), computes the FROC and CPM with their
bootstrap intervals (:mod:`medmm.evaluate.froc`), the per-scan decision metrics and ROC
(:mod:`medmm.evaluate.binary`) and the per-nodule sensitivity by size and texture
(:mod:`medmm.evaluate.strata`). Every problem that does not stop the evaluation becomes
a warning: logged, and kept in :attr:`EvaluationResult.warnings` (and ``metrics.json``).

Which scans are evaluated:

* a given series list: exactly those scans. Marks on other series are **left out with a
  warning** (their count and UIDs are recorded): a UID typo must not silently become a
  scan with false positives, nor silently vanish.
* no list, a *complete* reference (synthetic, LIDC): the reference's scans; marks on
  other series are left out with a warning, as above.
* no list, a LUNA16 annotation file: the union of the series in the annotation files
  and in the predictions, with a warning that scans with neither a finding nor a mark
  are then missing from the FP-rate divisor (LUNA16 divides by all 888 scans: pass
  ``seriesuids.csv``).

Per-scan metrics: a scan is positive when it holds an included reference nodule of
diameter ``>= size_cutoff_mm`` (0: any; a nodule of unknown size counts only when the
cut-off is 0). Excluded findings never make a scan positive, and a scan whose nodules
are all below the cut-off is negative. The scan's score is the highest score of all
its marks (before the LUNA16 cap, which is a FROC rule); a scan without marks scores
``-inf`` and is negative at every threshold.

Example:
    >>> result = evaluate_detections(preds, ref, series_uids=uids, n_bootstrap=1000)  # doctest: +SKIP
    >>> result.froc.cpm                                                                # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from medmm.errors import InputError
from medmm.evaluate.binary import BinaryMetrics, RocResult, binary_metrics, compute_roc
from medmm.evaluate.froc import LUNA16_FP_RATES, FrocResult, FrocSamples, compute_froc
from medmm.evaluate.matching import (
    LUNA16_MAX_CANDIDATES_PER_SCAN,
    CandidateStatus,
    DetectionMatch,
    match_detections,
)
from medmm.evaluate.readers import PredictionSet, ReferenceSet
from medmm.evaluate.strata import DEFAULT_SIZE_EDGES_MM, Stratum, sensitivity_by_size, sensitivity_by_texture

__all__ = [
    "EvaluationResult",
    "EvaluationSettings",
    "ScanLevelResult",
    "SeriesListSource",
    "SeriesSelection",
    "evaluate_detections",
    "select_series",
]

logger = logging.getLogger(__name__)


class SeriesListSource(StrEnum):
    """Where the list of evaluated scans came from."""

    GIVEN = "given"
    REFERENCE = "reference"
    REFERENCE_AND_PREDICTIONS = "reference_and_predictions"


@dataclass(frozen=True)
class SeriesSelection:
    """The evaluated scans and what was left out.

    Attributes:
        series_uids: Evaluated scans, in order.
        source: Where the list came from.
        description: One sentence saying so, for reports.
        unknown_prediction_series: Series with marks that are not evaluated.
        n_unknown_prediction_rows: Marks on those series.
        reference_series_not_evaluated: Reference series outside the list.
    """

    series_uids: tuple[str, ...]
    source: SeriesListSource
    description: str
    unknown_prediction_series: tuple[str, ...] = ()
    n_unknown_prediction_rows: int = 0
    reference_series_not_evaluated: tuple[str, ...] = ()


def select_series(
    reference: ReferenceSet,
    predictions: PredictionSet,
    series_uids: Sequence[str] | None = None,
) -> SeriesSelection:
    """Choose the evaluated scans (rules in the module docstring).

    Raises:
        InputError: The resulting list is empty.
    """
    pred_series = tuple(dict.fromkeys(predictions.series_uids.tolist()))
    if series_uids is not None:
        uids = tuple(dict.fromkeys(series_uids))
        source, text = SeriesListSource.GIVEN, f"series list given ({len(uids)} scans)"
    elif reference.complete:
        uids = reference.series_uids
        source, text = SeriesListSource.REFERENCE, f"all {len(uids)} scans of the reference (default)"
    else:
        uids = tuple(dict.fromkeys((*reference.series_uids, *pred_series)))
        source = SeriesListSource.REFERENCE_AND_PREDICTIONS
        text = (
            f"default: the {len(uids)} series found in the annotations and the predictions; scans with neither "
            "a finding nor a mark are not counted (pass a series list for the LUNA16 protocol)"
        )
    if not uids:
        raise InputError("no scan to evaluate", hint="Give a series list, or a reference with scans.")
    known = set(uids)
    unknown = tuple(u for u in pred_series if u not in known)
    n_rows = int(sum(1 for u in predictions.series_uids.tolist() if u not in known)) if unknown else 0
    not_evaluated = tuple(u for u in reference.series_uids if u not in known)
    return SeriesSelection(uids, source, text, unknown, n_rows, not_evaluated)


@dataclass(frozen=True)
class EvaluationSettings:
    """The knobs of an evaluation (recorded in ``metrics.json``).

    Attributes:
        threshold: Score at or above which a scan or nodule is called positive.
        size_cutoff_mm: A scan is positive when it holds an included nodule this large.
        n_bootstrap: Bootstrap replicates over scans (0: no intervals from resampling).
        seed: Seed of the bootstrap draws.
        confidence: Confidence level of every interval.
        max_candidates_per_scan: LUNA16 per-scan cap (None: score every mark).
        fp_rates: FROC operating points in FPs per scan.
        size_edges_mm: Inner edges of the per-nodule size bins.

    Raises:
        InputError: A value is out of range.
    """

    threshold: float = 0.5
    size_cutoff_mm: float = 0.0
    n_bootstrap: int = 1000
    seed: int = 0
    confidence: float = 0.95
    max_candidates_per_scan: int | None = LUNA16_MAX_CANDIDATES_PER_SCAN
    fp_rates: tuple[float, ...] = LUNA16_FP_RATES
    size_edges_mm: tuple[float, ...] = DEFAULT_SIZE_EDGES_MM

    def __post_init__(self) -> None:
        problems = []
        if math.isnan(self.threshold):
            problems.append("threshold is NaN")
        if not (math.isfinite(self.size_cutoff_mm) and self.size_cutoff_mm >= 0):
            problems.append(f"size cut-off must be a finite number >= 0 mm, got {self.size_cutoff_mm}")
        if self.n_bootstrap < 0:
            problems.append(f"bootstrap replicates must be >= 0, got {self.n_bootstrap}")
        if not 0.0 < self.confidence < 1.0:
            problems.append(f"confidence must be in (0, 1), got {self.confidence}")
        if self.max_candidates_per_scan is not None and self.max_candidates_per_scan < 1:
            problems.append(f"max candidates per scan must be >= 1 or None, got {self.max_candidates_per_scan}")
        if not self.fp_rates or min(self.fp_rates) <= 0:
            problems.append(f"FP rates must be positive, got {self.fp_rates}")
        if problems:
            raise InputError("invalid evaluation settings: " + "; ".join(problems), hint="Fix the settings.")


@dataclass(frozen=True, eq=False)
class ScanLevelResult:
    """Per-scan decision metrics.

    Attributes:
        series_uids: Scans, in evaluation order.
        scores: Highest mark score per scan (``-inf`` without marks).
        truth: Scan holds an included nodule >= the size cut-off.
        at_threshold: Confusion counts and proportions at the threshold.
        roc: ROC curve and AUC with bootstrap interval.
    """

    series_uids: tuple[str, ...]
    scores: np.ndarray
    truth: np.ndarray
    at_threshold: BinaryMetrics
    roc: RocResult


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Everything an evaluation produced; :meth:`to_dict` is ``metrics.json``.

    Attributes:
        settings: The settings used.
        selection: The evaluated scans and what was left out.
        match: Every mark's status and every nodule's detection (LUNA16 rules).
        froc: FROC, CPM and intervals; None when no evaluated scan holds a nodule.
        scans: Per-scan decision metrics and ROC.
        nodule_detected: Per included nodule (``reference.nodules`` order): detected at
            the threshold; False on scans not evaluated.
        by_size: Per-nodule sensitivity at the threshold by size bin.
        by_texture: The same by texture (empty when the reference has no textures).
        warnings: Every warning raised while reading and evaluating, in order.
    """

    settings: EvaluationSettings
    selection: SeriesSelection
    match: DetectionMatch
    froc: FrocResult | None
    scans: ScanLevelResult
    nodule_detected: np.ndarray
    by_size: tuple[Stratum, ...]
    by_texture: tuple[Stratum, ...]
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Metrics as JSON-ready values (NaN and infinities become None)."""
        from medmm import __version__

        m = self.match
        s = self.settings
        counts = {status.value: m.count(status) for status in CandidateStatus}
        evaluated = m.evaluated_nodules
        doc: dict[str, Any] = {
            "medmm_version": __version__,
            "protocol": {
                "name": "LUNA16 (Setio et al., Med. Image Anal. 42:1-13, 2017)",
                "hit_rule": "squared distance to the reference centre < (diameter / 2)^2; unknown diameter 10 mm",
                "max_candidates_per_scan": s.max_candidates_per_scan,
                "fp_rates": list(s.fp_rates),
                "interpolation": "linear between FROC points (numpy.interp rule), exact FP counts",
                "bootstrap": {
                    "replicates": s.n_bootstrap,
                    "unit": "scan",
                    "seed": s.seed,
                    "confidence": s.confidence,
                    "interval": "percentile, sorted values at floor(a*B) and floor((1-a)*B), a=(1-confidence)/2",
                },
            },
            "inputs": {
                "predictions": m.predictions.source,
                "reference": m.reference.source,
                "series_list": self.selection.source.value,
                "series_list_description": self.selection.description,
            },
            "counts": {
                "scans": m.n_scans,
                "predictions": len(m.predictions),
                "predictions_by_status": counts,
                "marks_hitting_several_nodules": int(np.count_nonzero(m.nodules_hit > 1)),
                "included_nodules": int(evaluated.sum()),
                "included_nodules_detected": int((evaluated & m.detected).sum()),
                "excluded_findings": len(m.reference.excluded),
                "reference_series_not_evaluated": len(self.selection.reference_series_not_evaluated),
            },
            "unknown_series": {
                "rows": self.selection.n_unknown_prediction_rows,
                "series": list(self.selection.unknown_prediction_series),
                "policy": "left out of the evaluation, with a warning",
            },
            "froc": _froc_dict(self.froc),
            "scan_level": _scan_dict(self.scans, s),
            "nodule_level": {
                "threshold": s.threshold,
                "rule": "detected when its best hitting mark scores >= threshold",
                "by_size": [_stratum_dict(x) for x in self.by_size],
                "by_texture": [_stratum_dict(x) for x in self.by_texture],
            },
            "warnings": list(self.warnings),
        }
        return _json_clean(doc)


def _json_clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _froc_dict(froc: FrocResult | None) -> dict[str, Any] | None:
    if froc is None:
        return None
    boot = froc.bootstrap
    return {
        "cpm": froc.cpm,
        "cpm_ci": list(froc.cpm_ci) if froc.cpm_ci is not None else None,
        "operating_points": [
            {"fps_per_scan": p.fps_per_scan, "sensitivity": p.sensitivity, "ci_low": p.ci_low, "ci_high": p.ci_high}
            for p in froc.operating_points
        ],
        "n_scans": froc.n_scans,
        "n_nodules": froc.n_nodules,
        "n_detected": froc.n_detected,
        "n_false_positives": froc.n_false_positives,
        "max_sensitivity": float(froc.sensitivity[-1]),
        "fps_per_scan_at_max_sensitivity": float(froc.fps_per_scan[-1]),
        "bootstrap": None
        if boot is None
        else {
            "replicates": boot.n_replicates,
            "undefined_replicates": boot.n_undefined,
            "cpm_mean": boot.cpm_mean,
            "seed": boot.seed,
        },
    }


def _scan_dict(scans: ScanLevelResult, s: EvaluationSettings) -> dict[str, Any]:
    roc = scans.roc
    return {
        "positive_rule": f"holds an included nodule >= {s.size_cutoff_mm:g} mm",
        "size_cutoff_mm": s.size_cutoff_mm,
        "score_rule": "highest mark score of the scan; -inf without marks",
        "n_positive": roc.n_positive,
        "n_negative": roc.n_negative,
        "at_threshold": scans.at_threshold.to_dict(),
        "auc": roc.auc,
        "auc_ci": list(roc.auc_ci) if roc.auc_ci is not None else None,
        "auc_bootstrap_replicates": roc.n_bootstrap,
        "auc_bootstrap_undefined": roc.n_undefined,
    }


def _stratum_dict(x: Stratum) -> dict[str, Any]:
    return {"label": x.label, "low_mm": x.low_mm, "high_mm": x.high_mm, **x.detected.to_dict()}


def _warn(warnings: list[str], message: str) -> None:
    logger.warning(message)
    warnings.append(message)


def _scan_level(match: DetectionMatch, settings: EvaluationSettings, warnings: list[str]) -> ScanLevelResult:
    n = match.n_scans
    scores = np.full(n, -np.inf)
    on = match.scan_index >= 0
    np.maximum.at(scores, match.scan_index[on], match.predictions.scores[on])
    cut = settings.size_cutoff_mm
    truth = np.zeros(n, bool)
    unknown_size = 0
    for nod, scan in zip(match.reference.nodules, match.nodule_scan_index.tolist(), strict=True):
        if scan < 0:
            continue
        if nod.diameter_mm is None:
            unknown_size += 1
            truth[scan] |= cut <= 0
        elif nod.diameter_mm >= cut:
            truth[scan] = True
    if unknown_size and cut > 0:
        _warn(warnings, f"{unknown_size} included nodule(s) of unknown size do not make their scan positive")
    roc = compute_roc(
        truth, scores, n_bootstrap=settings.n_bootstrap, seed=settings.seed, confidence=settings.confidence
    )
    if roc.auc is None:
        which = "positive" if roc.n_positive == 0 else "negative"
        _warn(warnings, f"no {which} scan (size cut-off {cut:g} mm): per-scan AUC is undefined")
    elif roc.n_undefined:
        _warn(warnings, f"{roc.n_undefined} of {roc.n_bootstrap} AUC bootstrap replicates lacked a class; left out")
    return ScanLevelResult(
        match.series_uids,
        scores,
        truth,
        binary_metrics(truth, scores, settings.threshold, settings.confidence),
        roc,
    )


def evaluate_detections(
    predictions: PredictionSet,
    reference: ReferenceSet,
    *,
    series_uids: Sequence[str] | None = None,
    settings: EvaluationSettings | None = None,
) -> EvaluationResult:
    """Evaluate marks against a reference by the LUNA16 protocol and per scan / nodule.

    Args:
        predictions: The system's marks.
        reference: Included nodules, excluded findings, scans.
        series_uids: Scans to evaluate (default: see the module docstring).
        settings: Threshold, size cut-off, bootstrap and protocol settings.

    Returns:
        The result; ``froc`` is None (with a warning) when no evaluated scan holds an
        included nodule.

    Raises:
        InputError: No scan to evaluate.
    """
    cfg = settings or EvaluationSettings()
    warnings = [*reference.warnings, *predictions.warnings]
    selection = select_series(reference, predictions, series_uids)
    if selection.source is SeriesListSource.REFERENCE_AND_PREDICTIONS:
        _warn(warnings, f"series list: {selection.description}")
    if selection.unknown_prediction_series:
        shown = ", ".join(selection.unknown_prediction_series[:3])
        more = "..." if len(selection.unknown_prediction_series) > 3 else ""
        _warn(
            warnings,
            f"{selection.n_unknown_prediction_rows} prediction(s) on {len(selection.unknown_prediction_series)} "
            f"series outside the evaluated list were left out ({shown}{more})",
        )
    if selection.reference_series_not_evaluated:
        logger.info("%d reference series are not in the evaluated list", len(selection.reference_series_not_evaluated))
    match = match_detections(
        predictions, reference, selection.series_uids, max_candidates_per_scan=cfg.max_candidates_per_scan
    )
    if not (match.scan_index >= 0).any():
        _warn(warnings, "no prediction on the evaluated scans: every nodule is missed, sensitivity is 0")
    if match.count(CandidateStatus.NOT_SCORED):
        logger.info(
            "%d mark(s) beyond the top %s of their scan were not scored",
            match.count(CandidateStatus.NOT_SCORED),
            cfg.max_candidates_per_scan,
        )
    samples = FrocSamples.from_match(match)
    froc = None
    if samples.n_nodules == 0:
        _warn(warnings, "no included reference nodule on the evaluated scans: FROC and CPM are undefined")
    else:
        froc = compute_froc(
            samples, fp_rates=cfg.fp_rates, n_bootstrap=cfg.n_bootstrap, seed=cfg.seed, confidence=cfg.confidence
        )
        if froc.bootstrap is not None and froc.bootstrap.n_undefined:
            _warn(
                warnings,
                f"{froc.bootstrap.n_undefined} of {froc.bootstrap.n_replicates} FROC bootstrap replicates drew no "
                "nodule and were left out",
            )
    scans = _scan_level(match, cfg, warnings)
    evaluated = np.flatnonzero(match.evaluated_nodules)
    with np.errstate(invalid="ignore"):
        detected_all = match.evaluated_nodules & (match.nodule_best_score >= cfg.threshold)
    detected = detected_all[evaluated]
    nodules = [reference.nodules[i] for i in evaluated]
    by_size = sensitivity_by_size([n.diameter_mm for n in nodules], detected, cfg.size_edges_mm, cfg.confidence)
    by_texture = (
        sensitivity_by_texture([reference.texture(i) for i in evaluated], detected, cfg.confidence)
        if reference.textures
        else ()
    )
    return EvaluationResult(
        cfg, selection, match, froc, scans, detected_all, by_size, by_texture, tuple(dict.fromkeys(warnings))
    )
