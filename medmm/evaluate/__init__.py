"""Evaluation of detection systems, the way the field reports it.

* LUNA16 protocol (Setio et al., Med. Image Anal. 42:1-13, 2017): marks matched to
  nodules by distance < radius, irrelevant findings ignored, one hit per nodule at its
  best score, at most 100 marks per scan, FROC, sensitivity at 1/8..8 FPs per scan,
  CPM, bootstrap over scans. See :mod:`medmm.evaluate.matching` and
  :mod:`medmm.evaluate.froc` for each convention.
* Per-scan sensitivity, specificity, PPV, NPV with Wilson intervals, ROC and AUC with
  a bootstrap interval (:mod:`medmm.evaluate.binary`); per-nodule sensitivity by size
  and texture (:mod:`medmm.evaluate.strata`).
* Attention-map localization: pointing game and distance to the nodule centre
  (:mod:`medmm.evaluate.localization`).
* Inputs (:mod:`medmm.evaluate.readers`) and outputs (:mod:`medmm.evaluate.report`).

Example:
    >>> from medmm.evaluate import (read_predictions, read_luna16_reference, read_series_list,
    ...                             evaluate_detections, write_evaluation)           # doctest: +SKIP
    >>> result = evaluate_detections(
    ...     read_predictions("submission.csv"),
    ...     read_luna16_reference("annotations.csv", "annotations_excluded.csv"),
    ...     series_uids=read_series_list("seriesuids.csv"),
    ... )                                                                             # doctest: +SKIP
    >>> write_evaluation(result, "eval_out")                                          # doctest: +SKIP
"""

from medmm.evaluate.binary import (
    BinaryMetrics,
    Proportion,
    RocResult,
    binary_metrics,
    compute_roc,
    proportion,
    roc_auc,
    wilson_interval,
)
from medmm.evaluate.bootstrap import percentile_interval, resample_counts
from medmm.evaluate.evaluation import (
    EvaluationResult,
    EvaluationSettings,
    ScanLevelResult,
    SeriesListSource,
    SeriesSelection,
    evaluate_detections,
    select_series,
)
from medmm.evaluate.froc import (
    LUNA16_FP_RATES,
    FrocBootstrap,
    FrocResult,
    FrocSamples,
    OperatingPoint,
    compute_froc,
    sensitivity_at,
)
from medmm.evaluate.localization import LocalizationResult, LocalizationSummary, localize, summarize_localization
from medmm.evaluate.matching import (
    LUNA16_MAX_CANDIDATES_PER_SCAN,
    LUNA16_UNKNOWN_DIAMETER_MM,
    CandidateStatus,
    DetectionMatch,
    match_detections,
)
from medmm.evaluate.readers import (
    DuplicatePolicy,
    PredictionSet,
    ReferenceSet,
    read_lidc_reference,
    read_luna16_reference,
    read_prediction_csv,
    read_predictions,
    read_series_list,
    read_synthetic_reference,
)
from medmm.evaluate.report import write_evaluation
from medmm.evaluate.strata import DEFAULT_SIZE_EDGES_MM, Stratum, sensitivity_by_size, sensitivity_by_texture

__all__ = [
    "DEFAULT_SIZE_EDGES_MM",
    "LUNA16_FP_RATES",
    "LUNA16_MAX_CANDIDATES_PER_SCAN",
    "LUNA16_UNKNOWN_DIAMETER_MM",
    "BinaryMetrics",
    "CandidateStatus",
    "DetectionMatch",
    "DuplicatePolicy",
    "EvaluationResult",
    "EvaluationSettings",
    "FrocBootstrap",
    "FrocResult",
    "FrocSamples",
    "LocalizationResult",
    "LocalizationSummary",
    "OperatingPoint",
    "PredictionSet",
    "Proportion",
    "ReferenceSet",
    "RocResult",
    "ScanLevelResult",
    "SeriesListSource",
    "SeriesSelection",
    "Stratum",
    "binary_metrics",
    "compute_froc",
    "compute_roc",
    "evaluate_detections",
    "localize",
    "match_detections",
    "percentile_interval",
    "proportion",
    "read_lidc_reference",
    "read_luna16_reference",
    "read_prediction_csv",
    "read_predictions",
    "read_series_list",
    "read_synthetic_reference",
    "resample_counts",
    "roc_auc",
    "select_series",
    "sensitivity_at",
    "sensitivity_by_size",
    "sensitivity_by_texture",
    "summarize_localization",
    "wilson_interval",
    "write_evaluation",
]
