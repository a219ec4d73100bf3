"""Write an evaluation to a folder: ``metrics.json``, audit CSVs and PNG plots.

Files (all written atomically):

==========================  ==========================================================
``metrics.json``            :meth:`EvaluationResult.to_dict`: settings, counts, FROC/CPM
                            with intervals, per-scan and per-nodule metrics, warnings
``detections.csv``          every mark with its protocol status (hit, false_positive,
                            ignored_excluded, not_scored, unknown_series) and what it hit
``nodules.csv``             every included nodule: detected or missed, best mark, score
``scans.csv``               every evaluated scan: truth, highest score, call, counts
``froc.csv``                the FROC curve points (FPs per scan, sensitivity, threshold)
``froc_bootstrap.csv``      bootstrap mean and interval of the curve (with bootstrap)
``scan_roc.csv``            per-scan sensitivity/specificity at every threshold
``froc.png``                FROC, log2 axis, the operating points marked with intervals
``roc.png``                 per-scan ROC with its bootstrap band and AUC
``sensitivity_by_size.png`` per-nodule sensitivity by size bin with Wilson intervals
==========================  ==========================================================

Plots use matplotlib's Agg canvas directly (no pyplot, no global backend change).

Example:
    >>> paths = write_evaluation(result, "eval_out")        # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medmm.errors import ExportError
from medmm.evaluate.evaluation import EvaluationResult
from medmm.io.atomic import atomic_path

__all__ = ["write_evaluation"]

logger = logging.getLogger(__name__)


def _fmt(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return "" if not np.isfinite(v) else repr(float(v))
    return v


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([_fmt(v) for v in row])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def _detections(result: EvaluationResult, path: Path) -> None:
    m = result.match
    p = m.predictions
    best_of = set(m.nodule_best_candidate[m.nodule_best_candidate >= 0].tolist())
    statuses = [m.status(i).value for i in range(len(p))]
    rows = (
        (
            int(p.line_numbers[i]),
            p.series_uids[i],
            *p.centers_lps_mm[i].tolist(),
            float(p.scores[i]),
            statuses[i],
            int(m.nodule_index[i]),
            int(m.nodules_hit[i]),
            int(i in best_of),
            int(m.excluded_index[i]),
            float(m.distance_mm[i]),
        )
        for i in range(len(p))
    )
    header = (
        "line",
        "seriesuid",
        "coordX",
        "coordY",
        "coordZ",
        "probability",
        "status",
        "nodule_id",
        "nodules_hit",
        "best_for_nodule",
        "excluded_id",
        "distance_to_nearest_nodule_mm",
    )
    _write_csv(path, header, rows)


def _nodules(result: EvaluationResult, path: Path) -> None:
    m = result.match
    ref = m.reference
    lines = m.predictions.line_numbers
    rows = []
    for i, nod in enumerate(ref.nodules):
        best = int(m.nodule_best_candidate[i])
        rows.append(
            (
                i,
                nod.series_uid,
                *nod.center_lps_mm,
                nod.diameter_mm if nod.diameter_mm is not None else "",
                ref.texture(i) or "",
                int(m.nodule_scan_index[i] >= 0),
                int(best >= 0),
                float(m.nodule_best_score[i]),
                int(lines[best]) if best >= 0 else "",
                int(m.nodule_hits[i]),
                int(result.nodule_detected[i]),
            )
        )
    header = (
        "nodule_id",
        "seriesuid",
        "coordX",
        "coordY",
        "coordZ",
        "diameter_mm",
        "texture",
        "evaluated",
        "detected",
        "best_probability",
        "best_mark_line",
        "marks_hitting",
        "detected_at_threshold",
    )
    _write_csv(path, header, rows)


def _scans(result: EvaluationResult, path: Path) -> None:
    m = result.match
    s = result.scans
    marks = np.bincount(m.scan_index[m.scan_index >= 0], minlength=m.n_scans)
    nods = np.bincount(m.nodule_scan_index[m.evaluated_nodules], minlength=m.n_scans)
    thr = result.settings.threshold
    rows = (
        (uid, int(s.truth[i]), float(s.scores[i]), int(s.scores[i] >= thr), int(marks[i]), int(nods[i]))
        for i, uid in enumerate(s.series_uids)
    )
    _write_csv(path, ("seriesuid", "positive", "max_probability", "called_positive", "marks", "nodules"), rows)


def _plot_froc(result: EvaluationResult, path: Path) -> None:
    from medmm.viz.plots import plot_froc

    _save(plot_froc(result), path)


def _plot_roc(result: EvaluationResult, path: Path) -> None:
    from medmm.viz.plots import plot_roc

    _save(plot_roc(result), path)


def _plot_sizes(result: EvaluationResult, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    strata = result.by_size
    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(strata))
    val = np.array([s.detected.value or 0.0 for s in strata])
    lo = np.array([s.detected.ci_low or 0.0 for s in strata])
    hi = np.array([s.detected.ci_high or 0.0 for s in strata])
    ax.bar(x, val, color="C0", alpha=0.8)
    ax.errorbar(x, val, yerr=[val - lo, hi - val], fmt="none", color="k", capsize=3)
    for xi, s in zip(x, strata, strict=True):
        ax.text(xi, 1.03, f"{s.detected.successes}/{s.detected.total}", ha="center", fontsize=8)
    ax.set_xticks(x, [s.label for s in strata], rotation=30)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("sensitivity (Wilson 95% CI)")
    ax.set_title(f"Per-nodule sensitivity by size at threshold {result.settings.threshold:g}")
    fig.tight_layout()
    _save(fig, path)


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def write_evaluation(
    result: EvaluationResult,
    out_dir: str | os.PathLike[str],
    *,
    plots: bool = True,
) -> dict[str, Path]:
    """Write metrics, audit tables and plots into ``out_dir`` (created).

    Returns:
        The written files by short name (``"metrics"``, ``"detections"``, ``"froc_png"``...).

    Raises:
        ExportError: The folder or a file cannot be written.
    """
    out = Path(out_dir)
    written: dict[str, Path] = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        written["metrics"] = out / "metrics.json"
        with atomic_path(written["metrics"]) as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        for name, writer in (("detections", _detections), ("nodules", _nodules), ("scans", _scans)):
            written[name] = out / f"{name}.csv"
            writer(result, written[name])
        froc = result.froc
        if froc is not None:
            written["froc"] = out / "froc.csv"
            _write_csv(
                written["froc"],
                ("fps_per_scan", "sensitivity", "threshold"),
                zip(froc.fps_per_scan.tolist(), froc.sensitivity.tolist(), froc.thresholds.tolist(), strict=True),
            )
            if froc.bootstrap is not None:
                b = froc.bootstrap
                written["froc_bootstrap"] = out / "froc_bootstrap.csv"
                _write_csv(
                    written["froc_bootstrap"],
                    ("fps_per_scan", "sensitivity_mean", "sensitivity_low", "sensitivity_high"),
                    zip(b.grid_fps_per_scan, b.sensitivity_mean, b.sensitivity_low, b.sensitivity_high, strict=True),
                )
        roc = result.scans.roc
        written["scan_roc"] = out / "scan_roc.csv"
        _write_csv(
            written["scan_roc"],
            ("threshold", "sensitivity", "specificity", "tp", "fp", "fn", "tn"),
            (
                (
                    float(t),
                    x / roc.n_positive if roc.n_positive else float("nan"),
                    (roc.n_negative - y) / roc.n_negative if roc.n_negative else float("nan"),
                    x,
                    y,
                    roc.n_positive - x,
                    roc.n_negative - y,
                )
                for t, x, y in zip(roc.thresholds.tolist(), roc.tp_counts.tolist(), roc.fp_counts.tolist(), strict=True)
            ),
        )
        if plots:
            if froc is not None:
                written["froc_png"] = out / "froc.png"
                _plot_froc(result, written["froc_png"])
            written["roc_png"] = out / "roc.png"
            _plot_roc(result, written["roc_png"])
            if result.by_size:
                written["sensitivity_by_size_png"] = out / "sensitivity_by_size.png"
                _plot_sizes(result, written["sensitivity_by_size_png"])
    except OSError as exc:
        raise ExportError(f"cannot write the evaluation: {exc.strerror or exc}", path=out) from exc
    logger.info("wrote %d evaluation files to %s", len(written), out)
    return written
