"""``medmm report RESULT.json --format ...``: (re)write the exports of an analyzed series.

The command reads ``result.json``, reloads the source series it names (SR and SEG
reference its instances; SEG, NIfTI and the HTML images need its voxels) and the label maps
``medmm analyze`` wrote beside it (``lungs.nii.gz``, ``lobes.nii.gz``, ``nodules.nii.gz``),
checks that they share the series' grid, and writes the formats asked for.

Example::

    $ medmm report medmm_results/1.2.3/result.json --format sr,seg -o exports/
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_report_parser"]

logger = logging.getLogger(__name__)


def _load_source_volume(result: Any) -> Any:
    """The source series of a result, loaded again (its files are listed in result.json)."""
    from medmm.errors import ExportError
    from medmm.io import load_series, scan

    files = [Path(p) for p in result.series.source_files]
    if not files or not all(p.exists() for p in files):
        missing = next((p for p in files if not p.exists()), None)
        raise ExportError(
            "the source DICOM files named in result.json are not there",
            path=missing,
            series_uid=result.series.series_uid,
            hint="Run `medmm report` where `medmm analyze` ran (paths are as it recorded them).",
        )
    parents = {p.parent for p in files}
    root = parents.pop() if len(parents) == 1 else Path(*Path(files[0]).parts[: _common_depth(files)])
    found = scan(root)
    for series in found.series:
        if series.series_uid == result.series.series_uid:
            return load_series(series)
    raise ExportError(f"series not found under {root}", series_uid=result.series.series_uid)


def _common_depth(files: list[Path]) -> int:
    parts = [p.parts for p in files]
    depth = 0
    for items in zip(*parts, strict=False):
        if len(set(items)) != 1:
            break
        depth += 1
    return max(depth, 1)


def _cmd_report(args: argparse.Namespace) -> int:
    import dataclasses

    from medmm.errors import MedmmError
    from medmm.report import ExportFormat, export_result, load_result, parse_formats
    from medmm.report.nifti_maps import read_label_maps

    try:
        formats = parse_formats(args.format)
    except ValueError as exc:
        print(f"medmm report: {exc}", file=sys.stderr)
        return 2
    needs_volume = {ExportFormat.SEG, ExportFormat.NIFTI, ExportFormat.HTML, ExportFormat.SR}
    try:
        result = load_result(args.result)
        volume = None
        if needs_volume & set(formats):
            volume = _load_source_volume(result)
            maps = read_label_maps(args.result.parent, volume)
            result = dataclasses.replace(result, maps=maps)
    except MedmmError as exc:
        print(f"medmm report: {exc}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else args.result.parent
    report = export_result(result, out, volume=volume, formats=formats, seg_lobes=args.seg_lobes)
    for fmt, paths in report.written.items():
        print(f"{fmt.value}: {', '.join(str(p) for p in paths)}")
    for fmt, why in report.skipped.items():
        print(f"{fmt.value}: skipped ({why})")
    for fmt, why in report.failed.items():
        print(f"medmm report: {fmt.value} failed: {why}", file=sys.stderr)
    return 0 if report.ok else 1


def add_report_parser(sub: Any) -> None:
    """Add ``medmm report`` to the CLI's subcommands."""
    p = sub.add_parser("report", help="write DICOM SR/SEG, FHIR, HTML, NIfTI or JSON from a result.json")
    p.add_argument("result", type=Path, help="result.json written by `medmm analyze`")
    p.add_argument("--format", default="all", help="comma-separated: json,seg,sr,fhir,html,nifti or all (default all)")
    p.add_argument("-o", "--out", type=Path, default=None, help="output folder (default: beside result.json)")
    p.add_argument("--seg-lobes", action="store_true", help="add the five lobes to the DICOM SEG")
    p.set_defaults(func=_cmd_report)
