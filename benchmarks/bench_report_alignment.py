"""What reading the report adds to `medmm analyze`: text stage + fusion stage, per series.

Runs `analyze` on one series (default: the synthetic `sample_dicom/case_metastases`, with
its one-page report) without and with the report, `--repeat` times each after a warm-up
that loads every model (model loading happens once per worker process and is printed
separately). Prints the medians side by side, the difference, and its parts: report
encoding (MiniLM, sentence by sentence), volume encoding (2 mm grid + 3D CNN) and the
attention + grounding. Target (issue 7): the difference under 2 s on 2 cores.

    python benchmarks/bench_report_alignment.py [--folder DICOM_DIR --report FILE] [--repeat 3]
"""

from __future__ import annotations

import time

from timing import median_seconds, sample_case_args


def main() -> None:
    """Time analyze with and without the report; print the table."""
    import torch

    from medmm.anatomy import segment_anatomy
    from medmm.io import load_series
    from medmm.pipeline import analyze, default_aligner, default_detector
    from medmm.text.encoder import encode_report
    from medmm.text.mentions import split_sentences

    args = sample_case_args(__doc__)
    torch.set_num_threads(args.threads)
    text = args.report.read_text(encoding="utf-8")
    volume = load_series(args.folder)
    t0 = time.perf_counter()
    default_detector()
    t_det = time.perf_counter() - t0
    t0 = time.perf_counter()
    aligner = default_aligner()
    t_align = time.perf_counter() - t0
    analyze(volume, report_text=text, reason=False)  # warm-up
    # The reasoning stage is left out of both (it encodes the volume too; benchmarks/bench_reasoning.py)
    without = median_seconds(lambda: analyze(volume, reason=False), args.repeat)
    with_report = median_seconds(lambda: analyze(volume, report_text=text, reason=False), args.repeat)
    lobes = segment_anatomy(volume).lobes.labels
    nodules = analyze(volume, reason=False).nodules  # what analyze hands the fusion stage
    t_text = median_seconds(lambda: encode_report(aligner.text_encoder, text), args.repeat)
    t_vol = median_seconds(lambda: aligner.encode_volume(volume, lobes, nodules), args.repeat)
    encoded = aligner.encode_volume(volume, lobes, nodules)
    spans = [(a, b) for a, b, _ in split_sentences(text)]
    t_ground = median_seconds(lambda: aligner.ground(encoded, text, spans), args.repeat)
    print(f"series {args.folder} {volume.shape}, report {len(text)} characters, {len(spans)} sentences")
    print(f"model loading (once per process): detector {t_det:.2f} s, text encoder + alignment {t_align:.2f} s")
    print(f"{'analyze':<34}{'median s':>10}")
    print(f"{'  without report (baseline)':<34}{without:>10.2f}")
    print(f"{'  with report':<34}{with_report:>10.2f}")
    print(f"{'  added by the report':<34}{with_report - without:>10.2f}   ratio {with_report / without:.3f}")
    print("parts of the added time:")
    print(f"{'  report encoding (MiniLM)':<34}{t_text:>10.3f}")
    print(f"{'  volume encoding (grid + CNN)':<34}{t_vol:>10.3f}")
    print(f"{'  encode report + attention, all sentences':<34}{t_ground:>10.3f}")


if __name__ == "__main__":
    main()
