"""Float32 vs INT8 (static, torch FX) nodule CNN, and the two-model ensemble: time and output change, one run.

Cuts the candidate patches of one series (default: the synthetic `sample_dicom/`
metastases case; `--folder` for another, e.g. LIDC-IDRI-0001), then times the CNN on
them in float32, in INT8 calibrated on the scan (calibration included) and in INT8 with
the activation ranges shipped in the model card, with the same thread count, and
reports the largest probability change and whether the ranking of the top detections
holds. Two more rows: the ensemble of the default network with `--second` (default: the
shipped v4; `NoduleDetector([default, second])`), in float32 and in INT8 with their shipped
ranges (their changes are against the default float32 network, so they show the
ensemble's own effect too). INT8 speed depends on the CPU: fbgemm's INT8 convolutions are
fastest with AVX512-VNNI; the CPU's flags are printed with the table.
Held-out accuracy of the INT8 path is measured by `scripts/evaluate_detector.py --int8`
and stored in the model card.

    python benchmarks/bench_detect_int8.py [--folder DICOM_DIR] [--threads 2] [--repeat 5] [--second W]
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
    from medmm.detect.weights import default_weights_path
    from medmm.io import load_series

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=REPO / "sample_dicom" / "case_metastases" / "dicom")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--second",
        type=Path,
        default=default_weights_path().with_name("nodule_detector_v4.safetensors"),
        help="second ensemble member",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    volume = load_series(args.folder)
    region, mask = lung_region_isotropic(volume, segment_lungs(volume).lung_mask)
    detectors = (
        ("float32", NoduleDetector()),
        ("int8", NoduleDetector(quantize=True, int8_ranges="per_scan")),
        ("int8 shipped", NoduleDetector(quantize=True)),
    )
    pair = f"{_short(default_weights_path())}+{_short(args.second)}"
    if args.second.is_file():
        members = [default_weights_path(), args.second]
        detectors += (
            (pair, NoduleDetector(members)),
            (f"{pair} int8", NoduleDetector(members, quantize=True)),
        )
    idx, _, _ = find_candidates(region, mask, ranker=detectors[0][1].ranker)
    patches = PaddedRegion(region.array, PATCH_SIZE).patches(idx, PATCH_SIZE)
    rows = {}
    for name, det in detectors:
        det._predict(patches[:8])  # warm-up
        times, pred = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            pred = det._predict(patches)
            times.append(time.perf_counter() - t0)
        rows[name] = (statistics.median(times), pred)
    t_f, p_f = rows["float32"]
    print(f"series: {args.folder}; {len(patches)} candidate patches; threads {args.threads}; median of {args.repeat}")
    print(f"default weights: {default_weights_path().name}; CPU INT8 features: {_cpu_int8_flags()}")
    print(f"{'path':<14}{'CNN s':>8}{'speed-up':>10}{'max dp':>9}{'mean dp':>9}{'top-10':>8}{'max dd mm':>11}")
    top_f = set(np.argsort(-p_f["p"])[:10].tolist())
    shipped = detectors[2][1]._int8 is not None
    notes = {
        "int8": "calibrated on the scan's first 64 patches",
        "int8 shipped": "activation ranges from the card" if shipped else "no ranges in the card: per scan",
        pair: "ensemble, float32",
        f"{pair} int8": "ensemble, each member's shipped ranges",
    }
    for name, (t, p) in rows.items():
        dp = np.abs(p_f["p"] - p["p"])
        top = len(top_f & set(np.argsort(-p["p"])[:10].tolist()))
        dd = np.abs(np.exp(p_f["logd"]) - np.exp(p["logd"])).max()
        print(
            f"{name:<14}{t:>8.3f}{t_f / t:>10.2f}{dp.max():>9.4f}{dp.mean():>9.5f}{top:>6}/10{dd:>11.2f}"
            f"   {notes.get(name, '')}"
        )


def _short(weights: Path) -> str:
    """``nodule_detector_v5.safetensors`` -> ``v5``."""
    return weights.stem.rsplit("_", 1)[-1]


def _cpu_int8_flags() -> str:
    """The CPU flags that decide INT8 convolution speed (Linux; "unknown" elsewhere)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512/vnni"


if __name__ == "__main__":
    main()
