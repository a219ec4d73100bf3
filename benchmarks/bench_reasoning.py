"""What the reasoning stage adds to `medmm analyze`, per series, image only and with a report.

Runs `analyze` on one series (default: the synthetic `sample_dicom/case_metastases` and its
report) with the reasoning stage off (baseline) and on, `--repeat` times each after a
warm-up that loads every model (loading happens once per worker process and is printed
separately). Prints the medians side by side, the difference and the ratio, and the parts
of the stage: the volume encoding for the region image embedding (shared with the fusion
stage when a report is read), observations + features, and the GNN.

    python benchmarks/bench_reasoning.py [--folder DICOM_DIR --report FILE] [--repeat 3]
"""

from __future__ import annotations

import time

from timing import median_seconds, sample_case_args


def main() -> None:
    """Time analyze with and without the reasoning stage; print the table."""
    import torch

    from medmm.anatomy import segment_anatomy
    from medmm.io import load_series
    from medmm.pipeline import analyze, default_aligner, default_detector, default_reasoner
    from medmm.reason.evidence import observe
    from medmm.reason.features import node_features

    args = sample_case_args(__doc__)
    torch.set_num_threads(args.threads)
    text = args.report.read_text(encoding="utf-8")
    volume = load_series(args.folder)
    default_detector()
    t0 = time.perf_counter()
    aligner = default_aligner()
    t_align = time.perf_counter() - t0
    t0 = time.perf_counter()
    reasoner = default_reasoner()
    t_reason = time.perf_counter() - t0
    result = analyze(volume, report_text=text)  # warm-up
    rows = []
    for name, report in (("image only", None), ("with report", text)):
        off = median_seconds(lambda r=report: analyze(volume, report_text=r, reason=False), args.repeat)
        on = median_seconds(lambda r=report: analyze(volume, report_text=r), args.repeat)
        rows.append((name, off, on))
    lobes = segment_anatomy(volume).lobes.labels
    nodules = analyze(volume, reason=False).nodules  # what analyze hands the fusion stage
    t_vol = median_seconds(lambda: aligner.encode_volume(volume, lobes, nodules), args.repeat)
    inputs = result.reasoning_inputs
    t_feat = median_seconds(lambda: node_features(inputs, observations=observe(inputs)), args.repeat)
    t_rank = median_seconds(lambda: reasoner.rank(inputs), args.repeat)
    print(f"series {args.folder} {volume.shape}; {len(inputs.nodules)} nodules")
    print(f"model loading (once per process): alignment {t_align:.2f} s, reasoning GNN {t_reason:.2f} s")
    print(f"{'analyze':<22}{'no reasoning s':>16}{'with reasoning s':>18}{'added s':>10}{'ratio':>8}")
    for name, off, on in rows:
        print(f"{name:<22}{off:>16.2f}{on:>18.2f}{on - off:>10.2f}{on / off:>8.3f}")
    print("parts of the stage:")
    print(f"{'  volume encoding (image embedding; shared with fusion)':<58}{1000 * t_vol:>8.1f} ms")
    print(f"{'  observations + node features':<58}{1000 * t_feat:>8.1f} ms")
    print(f"{'  rank (observations, features, GNN, evidence lists)':<58}{1000 * t_rank:>8.1f} ms")


if __name__ == "__main__":
    main()
