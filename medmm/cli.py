"""The ``medmm`` command line.

Commands present today: ``info`` and ``synth``. (``analyze``, ``evaluate``, ``train`` and
``report`` arrive with their issues; they are absent rather than faked.)

Heavy imports happen inside the command functions so that ``medmm --help`` is instant.

Example:
    $ medmm info sample_dicom/
    $ medmm info sample_dicom/ --json > series.json
"""

from __future__ import annotations

import argparse
import json
import logging
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
    from medmm.synth.dataset import generate_dataset

    syntax = {"none": "1.2.840.10008.1.2.1", "rle": RLELossless, "jpegls": JPEGLSLossless, "j2k": JPEG2000Lossless}
    try:
        from rich.progress import Progress

        with Progress(console=_console(stderr=True)) as bar:
            task = bar.add_task("generating cases", total=args.cases)
            records = generate_dataset(
                args.out,
                n_cases=args.cases,
                seed=args.seed,
                matrix=args.matrix,
                disagree_rate=args.disagree_rate,
                transfer_syntax=str(syntax[args.compression]),
                slice_thickness_mm=args.slice_mm,
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="medmm", description="Chest CT reading assistant.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="list the DICOM series in a folder and the files skipped, with reasons")
    info.add_argument("path", type=Path, help="folder, DICOMDIR or single file")
    info.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    info.set_defaults(func=_cmd_info)
    synth = sub.add_parser("synth", help="write a reproducible synthetic chest CT data set (train/val/test)")
    synth.add_argument("out", type=Path, help="output folder")
    synth.add_argument("--cases", type=int, default=10, help="number of cases (default 10)")
    synth.add_argument("--seed", type=int, default=0, help="data-set seed (default 0)")
    synth.add_argument("--matrix", type=int, default=256, help="image matrix, 512 for full resolution (default 256)")
    synth.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    synth.add_argument("--slice-mm", type=float, default=None, help="fix slice thickness (default: drawn, 0.625-3)")
    synth.add_argument("--disagree-rate", type=float, default=0.15, help="fraction of reports contradicting the image")
    synth.add_argument(
        "--compression",
        choices=["none", "rle", "jpegls", "j2k"],
        default="none",
        help="lossless DICOM compression (default none)",
    )
    synth.set_defaults(func=_cmd_synth)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:
        # pydicom reports every non-conformant value it meets; medmm reports what matters.
        logging.getLogger("pydicom").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
