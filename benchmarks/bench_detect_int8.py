"""Float32 vs INT8 (static, torch FX) nodule CNN: time and output change, one run.

Cuts the candidate patches of one series (default: the synthetic `sample_dicom/`
metastases case; `--folder` for another, e.g. LIDC-IDRI-0001), then times the CNN on
them in float32 and in INT8 (calibration included), with the same thread count, and
reports the largest probability change and whether the ranking of the top detections
holds. Held-out accuracy of the INT8 path is measured by
`scripts/evaluate_detector.py --int8` and stored in the model card.

    python benchmarks/bench_detect_int8.py [--folder DICOM_DIR] [--threads 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Time both paths and print the comparison."""
    from medmm.anatomy import segment_lungs
    from medmm.detect import NoduleDetector
    from medmm.detect.candidates import find_candidates, lung_region_isotropic
    from medmm.detect.model import PATCH_SIZE
    from medmm.detect.patches import PaddedRegion
    from medmm.io import load_series

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=REPO / "sample_dicom" / "case_metastases" / "dicom")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    volume = load_series(args.folder)
    region, mask = lung_region_isotropic(volume, segment_lungs(volume).lung_mask)
    idx, _, _ = find_candidates(region, mask)
    patches = PaddedRegion(region.array, PATCH_SIZE).patches(idx, PATCH_SIZE)
    rows = {}
    for name, det in (("float32", NoduleDetector()), ("int8", NoduleDetector(quantize=True))):
        det._predict(patches[:8])  # warm-up
        times, pred = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            pred = det._predict(patches)
            times.append(time.perf_counter() - t0)
        rows[name] = (statistics.median(times), pred)
    t_f, p_f = rows["float32"]
    t_q, p_q = rows["int8"]
    dp = np.abs(p_f["p"] - p_q["p"])
    top_f = set(np.argsort(-p_f["p"])[:10].tolist())
    top_q = set(np.argsort(-p_q["p"])[:10].tolist())
    print(f"series: {args.folder}; {len(patches)} candidate patches; threads {args.threads}; median of {args.repeat}")
    print(f"{'path':<10}{'CNN s':>10}{'speed-up':>10}")
    print(f"{'float32':<10}{t_f:>10.3f}{1.0:>10.2f}")
    print(f"{'int8':<10}{t_q:>10.3f}{t_f / t_q:>10.2f}   (includes per-scan calibration)")
    print(f"probability change: max {dp.max():.4f}, mean {dp.mean():.5f}; top-10 overlap {len(top_f & top_q)}/10")
    d_f, d_q = np.exp(p_f["logd"]), np.exp(p_q["logd"])
    print(f"diameter change: max {np.abs(d_f - d_q).max():.2f} mm")


if __name__ == "__main__":
    main()
