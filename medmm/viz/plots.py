"""Evaluation plots as matplotlib figures (``medmm evaluate`` saves them; notebooks show them).

Example:
    >>> from medmm.viz import plot_froc                                  # doctest: +SKIP
    >>> plot_froc(evaluate_detections(predictions, references))         # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medmm.evaluate.froc import sensitivity_at

if TYPE_CHECKING:
    from medmm.evaluate.evaluation import EvaluationResult

__all__ = ["plot_froc", "plot_roc"]


def plot_froc(result: EvaluationResult) -> Figure:
    """The FROC curve with its bootstrap band and operating points (LUNA16 rates), CPM in the title."""
    froc = result.froc
    assert froc is not None
    rates = np.array([p.fps_per_scan for p in froc.operating_points])
    grid = np.exp2(np.linspace(np.log2(rates.min()) - 0.25, np.log2(rates.max()) + 0.25, 400))
    fig = Figure(figsize=(6.4, 4.8), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(grid, sensitivity_at(froc.fps_per_scan, froc.sensitivity, grid), color="C0", lw=2, label="FROC")
    boot = froc.bootstrap
    if boot is not None and boot.n_replicates > boot.n_undefined:
        ax.fill_between(
            boot.grid_fps_per_scan,
            boot.sensitivity_low,
            boot.sensitivity_high,
            color="C0",
            alpha=0.15,
            label=f"{boot.confidence:.0%} bootstrap band",
        )
    sens = np.array([p.sensitivity for p in froc.operating_points])
    if all(p.ci_low is not None for p in froc.operating_points):
        lo = np.array([p.ci_low for p in froc.operating_points], float)
        hi = np.array([p.ci_high for p in froc.operating_points], float)
        ax.errorbar(rates, sens, yerr=[sens - lo, hi - sens], fmt="o", color="C3", capsize=3, label="operating points")
    else:
        ax.plot(rates, sens, "o", color="C3", label="operating points")
    ax.set_xscale("log", base=2)
    ax.set_xticks(rates, [f"{r:g}" if r >= 1 else f"1/{round(1 / r)}" for r in rates])
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positives per scan")
    ax.set_ylabel("sensitivity")
    ci = f" [{froc.cpm_ci[0]:.3f}, {froc.cpm_ci[1]:.3f}]" if froc.cpm_ci is not None else ""
    ax.set_title(f"FROC ({froc.n_scans} scans, {froc.n_nodules} nodules): CPM {froc.cpm:.3f}{ci}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def plot_roc(result: EvaluationResult) -> Figure:
    """Per-scan ROC with its bootstrap band and the operating threshold, AUC with CI in the legend."""
    roc = result.scans.roc
    fig = Figure(figsize=(5.2, 5.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if roc.band_fpr is not None and roc.band_tpr_low is not None and roc.band_tpr_high is not None:
        ax.fill_between(
            roc.band_fpr, roc.band_tpr_low, roc.band_tpr_high, color="C0", alpha=0.15, label="bootstrap band"
        )
    auc = f"AUC {roc.auc:.3f}" if roc.auc is not None else "AUC undefined"
    if roc.auc_ci is not None:
        auc += f" [{roc.auc_ci[0]:.3f}, {roc.auc_ci[1]:.3f}]"
    ax.plot(roc.fpr, roc.tpr, color="C0", lw=2, label=auc)
    at = result.scans.at_threshold
    if at.sensitivity.value is not None and at.specificity.value is not None:
        ax.plot(
            [1 - at.specificity.value], [at.sensitivity.value], "o", color="C3", label=f"threshold {at.threshold:g}"
        )
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("1 - specificity (per scan)")
    ax.set_ylabel("sensitivity (per scan)")
    ax.set_title(f"Per-scan ROC ({roc.n_positive} positive, {roc.n_negative} negative)")
    ax.legend(loc="lower right")
    return fig
