"""The ``medmm`` command line.

Commands present today: ``info``, ``analyze`` (anatomy and detection stages so far),
``synth``, ``evaluate`` and ``train detector``. (``report`` arrives with its issue;
absent rather than faked.)

Heavy imports happen inside the command functions so that ``medmm --help`` is instant.

Example:
    $ medmm info sample_dicom/
    $ medmm info sample_dicom/ --json > series.json
    $ medmm evaluate --predictions submission.csv --annotations annotations.csv \
          --excluded annotations_excluded.csv --series-list seriesuids.csv --out eval/
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

EXIT_OK = 0
EXIT_INPUT = 2


def _series_summary(series: Any) -> dict[str, Any]:
    """Describe one series; geometry problems become warnings rather than failures."""
    from medmm.errors import MedmmError
    from medmm.io.slice_geometry import SliceRef, plan_stack

    info = series.info
    row: dict[str, Any] = {
        "series_uid": info.series_uid,
        "study_uid": info.study_uid,
        "modality": info.modality,
        "description": info.series_description,
        "manufacturer": info.manufacturer,
        "kernel": info.convolution_kernel,
        "files": len(series.instances),
        "slices": series.n_frames,
        "size": None,
        "spacing_mm": None,
        "orientation": None,
        "problems": [],
        "corrections": [],
        "warnings": [],
    }
    refs = [SliceRef(inst, fr) for inst in series.instances for fr in inst.frames]
    try:
        plan = plan_stack(refs, info.series_uid)
    except MedmmError as exc:
        row["problems"].append(exc.message)
        first = series.instances[0].layout
        row["size"] = [series.n_frames, first.rows, first.columns]
        return row
    from medmm.types import VolumeGeometry

    geom = VolumeGeometry(plan.out_shape, plan.affine)
    row["size"] = list(geom.shape)
    row["spacing_mm"] = [round(s, 4) for s in geom.spacing_mm]
    row["orientation"] = geom.orientation_code
    row["corrections"] = list(plan.corrections)
    row["warnings"] = list(plan.warnings)
    return row


def _cmd_info(args: argparse.Namespace) -> int:
    from medmm.errors import MedmmError
    from medmm.io import scan

    try:
        if args.json:
            result = scan(args.path)
        else:
            from rich.progress import Progress

            with Progress(transient=True, console=_console(stderr=True)) as bar:
                task = bar.add_task("reading headers", total=None)
                result = scan(args.path, progress=lambda done, total: bar.update(task, completed=done, total=total))
    except MedmmError as exc:
        print(f"medmm info: {exc}", file=sys.stderr)
        return EXIT_INPUT
    rows = [_series_summary(s) for s in result.series]
    skipped = [{"path": str(s.path), "reason": s.reason.value, "detail": s.detail} for s in result.skipped]
    if args.json:
        json.dump({"path": str(args.path), "series": rows, "skipped": skipped}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    _print_info_tables(args.path, rows, skipped)
    return EXIT_OK


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        # Piped or captured output: do not fold UIDs and paths into 80 columns.
        console = Console(stderr=stderr, highlight=False, width=240)
    return console


def _print_info_tables(path: Path, rows: list[dict[str, Any]], skipped: list[dict[str, str]]) -> None:
    from rich.table import Table

    console = _console()
    table = Table(title=f"Image series in {path}", show_lines=False)
    table.add_column("Series UID", no_wrap=True)
    for col in ("Mod", "Description", "Slices", "Size (z,y,x)", "Spacing mm (z,y,x)", "Orient.", "Notes"):
        table.add_column(col, overflow="fold")
    for r in rows:
        notes = [f"[red]refused: {p}[/red]" for p in r["problems"]]
        notes += [f"[yellow]{c}[/yellow]" for c in r["corrections"]] + r["warnings"]
        table.add_row(
            r["series_uid"],
            r["modality"],
            r["description"],
            str(r["slices"]),
            "x".join(map(str, r["size"])) if r["size"] else "-",
            ", ".join(f"{s:g}" for s in r["spacing_mm"]) if r["spacing_mm"] else "-",
            r["orientation"] or "-",
            "\n".join(notes) or "ok",
        )
    console.print(table)
    if skipped:
        st = Table(title=f"Skipped files ({len(skipped)})")
        for col in ("File", "Reason", "Detail"):
            st.add_column(col, overflow="fold")
        for s in skipped:
            st.add_row(s["path"], s["reason"], s["detail"])
        console.print(st)
    console.print(f"{len(rows)} series, {len(skipped)} skipped file(s)")


def _cmd_synth(args: argparse.Namespace) -> int:
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

    from medmm.errors import MedmmError
    from medmm.synth.cases import parse_pattern_rates
    from medmm.synth.dataset import generate_dataset

    syntax = {"none": "1.2.840.10008.1.2.1", "rle": RLELossless, "jpegls": JPEGLSLossless, "j2k": JPEG2000Lossless}
    try:
        rates = parse_pattern_rates(args.patterns) if args.patterns else None
        from rich.progress import Progress

        with Progress(console=_console(stderr=True)) as bar:
            task = bar.add_task("generating cases", total=args.cases)
            records = generate_dataset(
                args.out,
                n_cases=args.cases,
                seed=args.seed,
                matrix=args.matrix,
                rates=rates,
                disagree_rate=args.disagree_rate,
                transfer_syntax=str(syntax[args.compression]),
                slice_thickness_mm=args.slice_mm,
                juxtavascular_rate=args.juxtavascular_rate,
                **({"subsolid_size_mm": tuple(args.subsolid_size_mm)} if args.subsolid_size_mm else {}),
                workers=args.workers,
                progress=lambda done, total: bar.update(task, completed=done),
            )
    except MedmmError as exc:
        print(f"medmm synth: {exc}", file=sys.stderr)
        return EXIT_INPUT
    by_split: dict[str, int] = {}
    for r in records:
        by_split[r.split] = by_split.get(r.split, 0) + 1
    counts = ", ".join(f"{k} {v}" for k, v in by_split.items())
    print(f"wrote {len(records)} cases to {args.out} ({counts}); see {args.out}/manifest.json")
    return EXIT_OK


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from medmm.errors import MedmmError
    from medmm.evaluate import (
        EvaluationSettings,
        evaluate_detections,
        read_lidc_reference,
        read_luna16_reference,
        read_predictions,
        read_series_list,
        read_synthetic_reference,
        write_evaluation,
    )

    if args.excluded is not None and args.annotations is None:
        print("medmm evaluate: --excluded goes with --annotations", file=sys.stderr)
        return EXIT_INPUT
    if args.verbose == 0:
        # Every warning is listed in the summary (and metrics.json); do not print it twice.
        logging.getLogger("medmm.evaluate").setLevel(logging.ERROR)
    try:
        predictions = read_predictions(args.predictions, duplicates=args.duplicates)
        if args.annotations is not None:
            reference = read_luna16_reference(args.annotations, args.excluded)
        elif args.synthetic_root is not None:
            reference = read_synthetic_reference(args.synthetic_root)
        else:
            reference = read_lidc_reference(args.lidc_root, min_readers=args.min_readers)
        series = read_series_list(args.series_list) if args.series_list is not None else None
        settings = EvaluationSettings(
            threshold=args.threshold,
            size_cutoff_mm=args.size_cutoff_mm,
            n_bootstrap=args.bootstrap,
            seed=args.seed,
            max_candidates_per_scan=args.max_per_scan or None,
        )
        with _console(stderr=True).status("evaluating"):
            result = evaluate_detections(predictions, reference, series_uids=series, settings=settings)
            written = write_evaluation(result, args.out)
    except MedmmError as exc:
        print(f"medmm evaluate: {exc}", file=sys.stderr)
        return EXIT_INPUT
    _print_evaluation(result, written)
    return EXIT_OK


def _ci(lo: float | None, hi: float | None) -> str:
    return f"[{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "-"


def _print_evaluation(result: Any, written: dict[str, Path]) -> None:
    from rich.table import Table

    console = _console()
    m = result.match
    counts = result.to_dict()["counts"]
    by_status = counts["predictions_by_status"]
    console.print(f"[bold]Scans:[/bold] {m.n_scans} ({result.selection.description})")
    console.print(
        f"[bold]Reference:[/bold] {counts['included_nodules']} nodule(s), {counts['excluded_findings']} excluded "
        f"findings ({m.reference.source})"
    )
    console.print(
        f"[bold]Marks:[/bold] {counts['predictions']} = {by_status['hit']} hit, "
        f"{by_status['false_positive']} false positive, {by_status['ignored_excluded']} on excluded findings, "
        f"{by_status['not_scored']} beyond the top {result.settings.max_candidates_per_scan} of their scan, "
        f"{by_status['unknown_series']} on series not evaluated"
    )
    froc = result.froc
    if froc is not None:
        ft = Table(title="LUNA16 FROC (95% CI: bootstrap over scans)")
        for col in ("FPs per scan", "sensitivity", "95% CI"):
            ft.add_column(col, justify="right")
        for p in froc.operating_points:
            rate = f"{p.fps_per_scan:g}" if p.fps_per_scan >= 1 else f"1/{round(1 / p.fps_per_scan)}"
            ft.add_row(rate, f"{p.sensitivity:.3f}", _ci(p.ci_low, p.ci_high))
        cpm_ci = _ci(*froc.cpm_ci) if froc.cpm_ci is not None else "-"
        ft.add_row("[bold]CPM[/bold]", f"[bold]{froc.cpm:.3f}[/bold]", cpm_ci)
        console.print(ft)
        console.print(
            f"nodules detected at any score: {froc.n_detected}/{froc.n_nodules} "
            f"({froc.sensitivity[-1]:.3f} at {froc.fps_per_scan[-1]:.2f} FPs per scan)"
        )
    s = result.settings
    console.print(
        f"Per scan: positive = holds a nodule >= {s.size_cutoff_mm:g} mm; called positive = highest mark score "
        f">= {s.threshold:g}"
    )
    st = Table(title="Per scan (95% CI: Wilson; AUC: bootstrap)")
    for col in ("measure", "value", "95% CI", "n"):
        st.add_column(col, justify="right")
    at = result.scans.at_threshold
    for name in ("sensitivity", "specificity", "ppv", "npv", "accuracy"):
        p = getattr(at, name)
        value = f"{p.value:.3f}" if p.value is not None else "undefined"
        st.add_row(
            name.upper() if len(name) == 3 else name, value, _ci(p.ci_low, p.ci_high), f"{p.successes}/{p.total}"
        )
    roc = result.scans.roc
    auc = f"{roc.auc:.3f}" if roc.auc is not None else "undefined"
    st.add_row("AUC", auc, _ci(*roc.auc_ci) if roc.auc_ci else "-", f"{roc.n_positive}+ / {roc.n_negative}-")
    console.print(st)
    strata = [*result.by_size, *result.by_texture]
    if strata:
        nt = Table(title=f"Per nodule (detected: a hit >= {s.threshold:g})")
        for col in ("stratum", "sensitivity", "95% CI (Wilson)", "n"):
            nt.add_column(col, justify="right")
        for x in strata:
            d = x.detected
            value = f"{d.value:.3f}" if d.value is not None else "-"
            nt.add_row(x.label, value, _ci(d.ci_low, d.ci_high), f"{d.successes}/{d.total}")
        console.print(nt)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    console.print(f"wrote {len(written)} files to {written['metrics'].parent} (metrics.json, CSVs, plots)")


def _progress_printer(quiet: bool) -> Any:
    """A progress callback: a live bar on a terminal, one plain line per series otherwise."""
    if quiet:
        return None, None
    console = _console(stderr=True)
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("analyzing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[last]}"),
            console=console,
        )
        task = bar.add_task("series", total=None, rate="", last="")

        def update(p: Any) -> None:
            bar.update(
                task,
                total=p.total,
                completed=p.done,
                rate=f"{p.per_minute:.1f}/min",
                last=f"{p.outcome.series_uid[:40]} {p.outcome.status}",
            )

        return update, bar

    def line(p: Any) -> None:
        o = p.outcome
        problem = f" ({(o.error or {}).get('message', '')[:120]})" if o.status != "ok" else ""
        print(
            f"[{p.done}/{p.total}] {o.series_uid} {o.status} in {o.timings_s.get('total', 0.0):.1f} s; "
            f"{p.per_minute:.1f} series/min, ETA {p.eta_s:.0f} s{problem}",
            file=sys.stderr,
            flush=True,
        )

    return line, None


def _cmd_analyze(args: argparse.Namespace) -> int:
    from medmm.batch import AnalysisOptions, BatchConfig, SeriesFilter, run_batch
    from medmm.errors import MedmmError
    from medmm.report import parse_formats

    try:
        formats = parse_formats(args.format)
    except ValueError as exc:
        print(f"medmm analyze: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if args.workers is not None and args.workers < 1:
        print("medmm analyze: --workers must be at least 1", file=sys.stderr)
        return EXIT_INPUT
    options = AnalysisOptions(
        detect=not args.no_detect,
        reason=not args.no_reasoning,
        weights=tuple(str(w) for w in args.weights) if args.weights else None,
        tta=args.tta,
        int8=args.int8,
        threshold=args.threshold,
        formats=tuple(f.value for f in formats),
        seg_lobes=args.seg_lobes,
        max_voxels=args.max_voxels,
        ontology=tuple(str(p) for p in args.ontology),
        deidentify_key=_deidentify_key(args),
        log_phi=args.log_phi,
    )
    if options.ontology:
        from medmm.reason.evidence import evidence_links
        from medmm.reason.ontology import load_ontology

        try:  # merge and validate the extension once, before any worker starts
            evidence_links(load_ontology(extra=options.ontology, validate=True))
        except MedmmError as exc:
            print(f"medmm analyze: {exc}", file=sys.stderr)
            return EXIT_INPUT
    if options.detect:
        from medmm.detect.detector import NoduleDetector

        try:  # check the weights here, once, before any worker starts
            NoduleDetector(args.weights, tta=args.tta, quantize=args.int8)
        except MedmmError as exc:
            print(f"medmm analyze: {exc}", file=sys.stderr)
            return EXIT_INPUT
    config = BatchConfig(
        roots=tuple(args.path),
        out=args.out,
        options=options,
        series_filter=SeriesFilter(
            modality=args.modality or None, min_slices=args.min_slices, series_description=args.series_description
        ),
        report_text=args.report.read_text(encoding="utf-8") if args.report else None,
        reports_csv=args.reports_csv,
        workers=args.workers,
        scheduler=args.scheduler,
        dask_local=args.dask_local,
        timeout_s=args.timeout,
        resume=args.resume,
    )
    callback, bar = _progress_printer(args.quiet)
    try:
        if bar is not None:
            with bar:
                summary = run_batch(config, callback)
        else:
            summary = run_batch(config, callback)
    except MedmmError as exc:
        print(f"medmm analyze: {exc}", file=sys.stderr)
        return EXIT_INPUT
    console = _console()
    if len(summary.records) <= 50:
        from rich.table import Table

        table = Table(title=f"medmm analyze: {len(summary.records)} series -> {summary.out}")
        for col in ("Series UID", "Status", "Problem", "Nodules", "Largest", "Seconds"):
            table.add_column(col, overflow="fold")
        for rec in summary.records:
            err = rec.get("error") or {}
            largest = rec.get("largest_mm")
            table.add_row(
                str(rec.get("series_uid", ""))[:64],
                str(rec.get("status")),
                f"{err.get('type', '')}: {err.get('message', '')}" if err else "",
                "-" if rec.get("nodules") is None else str(rec["nodules"]),
                "-" if largest is None else f"{largest:.1f} mm {rec.get('largest_lobe', '')}",
                f"{rec.get('timings_s', {}).get('total', 0.0):.1f}",
            )
        console.print(table)
    n_failed = len(summary.failed)
    console.print(
        f"{len(summary.records) - n_failed} of {len(summary.records)} series analyzed"
        + (f" ({summary.resumed} finished earlier, skipped)" if summary.resumed else "")
        + f", {n_failed} failed; {len(summary.discovery.skipped_files)} file(s) and "
        f"{len(summary.discovery.filtered)} series left out (skipped_files.csv). "
        f"See {summary.out}/summary.csv and index.html."
    )
    opts = config.options
    stages = ["anatomy"] + (["detection", "guidelines"] if opts.detect else [])
    stages += ["report findings and alignment (series with a report)"]
    stages += ["differential"] if opts.reason else []
    console.print(f"Stages run: {', '.join(stages)}.")
    return summary.exit_code


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="medmm", description="Chest CT reading assistant.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument(
        "--log-phi",
        action="store_true",
        help="let patient identifiers and report text into log output (local debugging only; off by default)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="list the DICOM series in a folder and the files skipped, with reasons")
    info.add_argument("path", type=Path, help="folder, DICOMDIR or single file")
    info.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    info.set_defaults(func=_cmd_info)
    analyze_p = sub.add_parser(
        "analyze", help="analyze every CT series under PATH; result.json, DICOM SR/SEG, FHIR, HTML and NIfTI per series"
    )
    analyze_p.add_argument("path", type=Path, nargs="+", help="folders, DICOMDIRs or files (searched recursively)")
    analyze_p.add_argument("-o", "--out", type=Path, default=Path("medmm_results"), help="output folder")
    analyze_p.add_argument("--report", type=Path, default=None, help="report text file (one study: every series)")
    analyze_p.add_argument(
        "--deidentify",
        action="store_true",
        help="write every export de-identified (PS3.15 Annex E basic profile; pseudonyms keyed by "
        "$MEDMM_DEID_KEY or OUT/.deid-key, which a resumed run reuses: remove it before sharing OUT)",
    )
    analyze_p.add_argument(
        "--reports-csv", type=Path, default=None, help="CSV: StudyInstanceUID or AccessionNumber, text"
    )
    analyze_p.add_argument("--modality", default="CT", help="analyze only this modality (default CT; '' for all)")
    analyze_p.add_argument("--min-slices", type=int, default=0, help="skip series with fewer slices")
    analyze_p.add_argument("--series-description", default=None, help="regex the SeriesDescription must match")
    analyze_p.add_argument("--workers", type=int, default=None, help="local worker processes (default: cores)")
    analyze_p.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://HOST:PORT")
    analyze_p.add_argument("--dask-local", type=int, default=None, help="start a Dask LocalCluster of N workers")
    analyze_p.add_argument("--timeout", type=float, default=None, help="per-series time limit in seconds")
    analyze_p.add_argument("--resume", action="store_true", help="skip series finished by an earlier run into -o")
    analyze_p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    analyze_p.add_argument(
        "--weights",
        type=Path,
        nargs="+",
        default=None,
        help="detector .safetensors (default: shipped); several average as an ensemble",
    )
    analyze_p.add_argument("--threshold", type=float, default=0.5, help="nodule probability threshold (0.5)")
    analyze_p.add_argument("--tta", action="store_true", help="average the CNN over the 8 axis flips")
    analyze_p.add_argument("--int8", action="store_true", help="dynamic INT8 quantization of the CNN")
    analyze_p.add_argument("--no-detect", action="store_true", help="skip nodule detection (anatomy only)")
    analyze_p.add_argument(
        "--ontology",
        type=Path,
        nargs="+",
        default=[],
        metavar="TTL",
        help="extra Turtle merged with the shipped ontology (synonyms, concepts, evidence links); validated first",
    )
    analyze_p.add_argument(
        "--no-reasoning", action="store_true", help="skip the differential (ontology evidence + region GNN)"
    )
    analyze_p.add_argument(
        "--max-voxels",
        type=int,
        default=None,
        help="refuse larger series before reading pixels (default: $MEDMM_MAX_VOXELS or 10**9)",
    )
    analyze_p.add_argument(
        "--format",
        default="all",
        help="exports per series, comma-separated: json,seg,sr,fhir,html,nifti or all (default all)",
    )
    analyze_p.add_argument("--seg-lobes", action="store_true", help="add the five lobes to the DICOM SEG")
    analyze_p.set_defaults(func=_cmd_analyze)
    synth = sub.add_parser("synth", help="write a reproducible synthetic chest CT data set (train/val/test)")
    synth.add_argument("out", type=Path, help="output folder")
    synth.add_argument("--cases", type=int, default=10, help="number of cases (default 10)")
    synth.add_argument("--seed", type=int, default=0, help="data-set seed (default 0)")
    synth.add_argument("--matrix", type=int, default=256, help="image matrix, 512 for full resolution (default 256)")
    synth.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    synth.add_argument("--slice-mm", type=float, default=None, help="fix slice thickness (default: drawn, 0.625-3)")
    synth.add_argument("--disagree-rate", type=float, default=0.15, help="fraction of reports contradicting the image")
    synth.add_argument(
        "--juxtavascular-rate",
        type=float,
        default=0.0,
        help="share of open-parenchyma nodules placed against a vessel instead (default 0)",
    )
    synth.add_argument(
        "--subsolid-size-mm",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="diameter range of the subsolid pattern's nodule (default 6 25)",
    )
    synth.add_argument(
        "--compression",
        choices=["none", "rle", "jpegls", "j2k"],
        default="none",
        help="lossless DICOM compression (default none)",
    )
    synth.add_argument(
        "--patterns",
        default=None,
        metavar="NAME=RATE,...",
        help="pattern mix, e.g. 'perifissural_lymph_node=0.7,small_indeterminate=0.3' (default: the generator's rates)",
    )
    synth.set_defaults(func=_cmd_synth)
    ev = sub.add_parser(
        "evaluate",
        help="score detections: LUNA16 FROC/CPM, per-scan sensitivity/specificity/ROC, per-nodule sensitivity",
    )
    ev.add_argument("--predictions", type=Path, required=True, help="CSV seriesuid,coordX,coordY,coordZ,probability")
    ref = ev.add_mutually_exclusive_group(required=True)
    ref.add_argument("--annotations", type=Path, help="LUNA16 annotations.csv (reference nodules)")
    ref.add_argument("--synthetic-root", type=Path, help="`medmm synth` output (or one split) as the reference")
    ref.add_argument("--lidc-root", type=Path, help="LIDC-IDRI DICOM + XML folder(s) as the reference")
    ev.add_argument("--excluded", type=Path, help="LUNA16 annotations_excluded.csv (marks on them are ignored)")
    ev.add_argument("--min-readers", type=int, default=3, help="LIDC consensus: readers needed (default 3, LUNA16)")
    ev.add_argument(
        "--series-list",
        type=Path,
        help="scans to evaluate, one UID per line (default: the reference's scans, or for LUNA16 CSVs the series "
        "in annotations + predictions)",
    )
    ev.add_argument("--out", type=Path, required=True, help="output folder (metrics.json, CSVs, plots)")
    ev.add_argument("--threshold", type=float, default=0.5, help="score threshold for per-scan/per-nodule calls")
    ev.add_argument("--size-cutoff-mm", type=float, default=0.0, help="a scan is positive with a nodule >= this")
    ev.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates over scans (default 1000)")
    ev.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    ev.add_argument("--max-per-scan", type=int, default=100, help="LUNA16 cap on marks per scan (0: no cap)")
    ev.add_argument(
        "--duplicates",
        choices=["keep", "drop", "error"],
        default="keep",
        help="rows repeating another row exactly: score each (LUNA16), drop, or refuse (default keep)",
    )
    ev.set_defaults(func=_cmd_evaluate)
    from medmm.cli_report import add_report_parser
    from medmm.cli_text import add_findings_parser, add_localize_parser
    from medmm.cli_train import add_train_parser

    add_train_parser(sub)
    add_report_parser(sub)
    add_findings_parser(sub)
    add_localize_parser(sub)
    return parser


def _deidentify_key(args: argparse.Namespace) -> str | None:
    """The batch's de-identification key (``--deidentify``), or None."""
    if not args.deidentify:
        return None
    from medmm.report.deidentify import batch_key

    return batch_key(args.out, os.environ.get("MEDMM_DEID_KEY"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from medmm.privacy import install_log_privacy

    install_log_privacy(log_phi=args.log_phi)
    if args.verbose < 2:
        # pydicom reports every non-conformant value it meets; medmm reports what matters.
        logging.getLogger("pydicom").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
