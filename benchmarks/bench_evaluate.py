"""Time the LUNA16 CPM with 1,000 bootstrap replicates over 888 scans x 500 marks.

Target (issue "Evaluation"): under 30 s on 2 cores. The data are synthetic and shaped
like LUNA16: 888 scans, 1,186 nodules (3-30 mm) on 601 of them, excluded findings,
500 marks per scan (so the 100-mark cap applies), one to three marks on most nodules.

Printed side by side, in one run:

* medmm: matching + FROC + CPM + 1,000 bootstrap replicates (the target);
* medmm: the whole ``evaluate_detections`` (also per-scan ROC/AUC bootstrap, strata);
* baseline 1: medmm without bootstrap (matching + one FROC);
* baseline 2: the LUNA16 script's bootstrap procedure done naively: for each replicate,
  pool the samples of the drawn scans and recompute the curve with
  ``sklearn.metrics.roc_curve`` and ``numpy.interp`` (same draws, so the intervals can
  be compared; they may differ by one nodule's step where the script's floating-point
  FP rate lands a hair beside an operating point, see ``medmm.evaluate.froc``).

Run:
    python benchmarks/bench_evaluate.py
    python benchmarks/bench_evaluate.py --naive-replicates 100     # quicker baseline
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from medmm.evaluate import (
    LUNA16_FP_RATES,
    EvaluationSettings,
    FrocSamples,
    PredictionSet,
    ReferenceSet,
    compute_froc,
    evaluate_detections,
    match_detections,
)
from medmm.types import ReferenceNodule


def make_data(seed: int, n_scans: int, marks_per_scan: int) -> tuple[PredictionSet, ReferenceSet]:
    rng = np.random.default_rng(seed)
    uids = [f"1.3.6.1.4.1.99999.{i}" for i in range(n_scans)]
    with_nodules = rng.choice(n_scans, size=min(601, n_scans), replace=False)
    owner = np.concatenate([with_nodules, rng.choice(with_nodules, size=max(1186 - len(with_nodules), 0))])
    nodules, excluded = [], []
    for s in owner.tolist():
        nodules.append(ReferenceNodule(uids[s], tuple(rng.uniform(-150, 150, 3).tolist()), float(rng.uniform(3, 30))))
    for s in rng.integers(0, n_scans, size=1500).tolist():
        excluded.append(ReferenceNodule(uids[s], tuple(rng.uniform(-150, 150, 3).tolist()), None))
    by_scan: dict[int, list[ReferenceNodule]] = {}
    for s, n in zip(owner.tolist(), nodules, strict=True):
        by_scan.setdefault(s, []).append(n)
    series, centres, scores = [], [], []
    for s in range(n_scans):
        k = 0
        for n in by_scan.get(s, []):
            for _ in range(int(rng.integers(0, 4))):
                d = rng.normal(size=3)
                centres.append(
                    np.asarray(n.center_lps_mm) + d / np.linalg.norm(d) * rng.uniform(0, 0.45) * n.diameter_mm
                )
                scores.append(float(rng.beta(5, 2)))
                k += 1
        m = marks_per_scan - k
        centres.extend(rng.uniform(-150, 150, (m, 3)))
        scores.extend(rng.beta(1.2, 5, m).tolist())
        series.extend([uids[s]] * marks_per_scan)
    preds = PredictionSet(np.array(series, object), np.array(centres), np.array(scores), "benchmark")
    ref = ReferenceSet(tuple(nodules), tuple(excluded), tuple(uids), complete=True, source="benchmark")
    return preds, ref


def naive_bootstrap(samples: FrocSamples, n_replicates: int, seed: int) -> np.ndarray:
    """CPM of each replicate, pooling the drawn scans' samples as the LUNA16 script does."""
    from sklearn.metrics import roc_curve

    n = samples.n_scans
    per_scan = [np.flatnonzero(samples.scan_index == s) for s in range(n)]
    draws = np.random.default_rng(seed).integers(0, n, size=(n_replicates, n))
    cpms = np.full(n_replicates, np.nan)
    for r, row in enumerate(draws):
        idx = np.concatenate([per_scan[s] for s in row])
        truth, score = samples.is_nodule[idx], samples.scores[idx]
        total = samples.nodules_per_scan[row].sum()
        detected = truth.sum()
        if total == 0:
            continue
        fpr, tpr, _ = roc_curve(truth, score)
        fps = fpr * (len(truth) - detected) / n
        sens = tpr * detected / total
        cpms[r] = np.mean(np.interp(LUNA16_FP_RATES, fps, sens))
    return cpms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=888)
    parser.add_argument("--marks", type=int, default=500, help="marks per scan")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--naive-replicates", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    preds, ref = make_data(args.seed, args.scans, args.marks)
    print(
        f"data: {args.scans} scans, {len(preds):,} marks, {len(ref.nodules)} nodules, {len(ref.excluded)} excluded "
        f"findings; cores: {os.cpu_count()}"
    )

    t0 = time.perf_counter()
    match = match_detections(preds, ref, ref.series_uids)
    samples = FrocSamples.from_match(match)
    froc = compute_froc(samples, n_bootstrap=args.bootstrap, seed=args.seed)
    t_cpm = time.perf_counter() - t0

    t0 = time.perf_counter()
    match0 = match_detections(preds, ref, ref.series_uids)
    froc0 = compute_froc(FrocSamples.from_match(match0), n_bootstrap=0)
    t_nob = time.perf_counter() - t0

    t0 = time.perf_counter()
    evaluate_detections(preds, ref, settings=EvaluationSettings(n_bootstrap=args.bootstrap, seed=args.seed))
    t_all = time.perf_counter() - t0

    t0 = time.perf_counter()
    naive = naive_bootstrap(samples, args.naive_replicates, args.seed)
    t_naive = time.perf_counter() - t0
    naive_1000 = t_naive * args.bootstrap / args.naive_replicates

    assert froc.cpm == froc0.cpm
    assert froc.cpm_ci is not None
    print(f"CPM {froc.cpm:.4f}, 95% CI {froc.cpm_ci[0]:.4f}-{froc.cpm_ci[1]:.4f} ({args.bootstrap} replicates)")
    print(f"FROC samples (detected nodules + false positives after the 100-mark cap): {len(samples.scores):,}")
    print()
    naive_name = f"baseline: naive pooled sklearn roc_curve x {args.naive_replicates}"
    if args.naive_replicates != args.bootstrap:
        naive_name += f" (-> {args.bootstrap}: {naive_1000:.1f} s)"
    rows = [
        (f"medmm CPM + {args.bootstrap} bootstraps (match + FROC)", t_cpm),
        ("medmm evaluate_detections (FROC + ROC bootstraps, strata)", t_all),
        ("baseline: medmm CPM without bootstrap", t_nob),
        (naive_name, t_naive),
    ]
    print(f"{'method':<66} {'seconds':>8} {'/ 30 s target':>14} {'/ medmm':>8}")
    for name, t in rows:
        print(f"{name:<66} {t:8.2f} {t / 30.0:14.2f} {t / t_cpm:8.2f}")
    if args.naive_replicates == args.bootstrap:
        from medmm.evaluate import percentile_interval

        lo, hi = percentile_interval(naive[np.isfinite(naive)])
        ci = froc.cpm_ci
        assert ci is not None
        gap = max(abs(lo - ci[0]), abs(hi - ci[1]))
        print(f"naive CPM CI {lo:.4f}-{hi:.4f}; largest difference from medmm's bounds: {gap:.2g}")


if __name__ == "__main__":
    main()
