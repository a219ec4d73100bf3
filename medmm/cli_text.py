"""``medmm findings FILE|-`` and ``medmm localize SERIES PHRASE``.

``findings``: the finding mentions of a report, as JSON lines.

One line per mention with the report ``id``, ``concept`` (IRI), ``label``, ``code``,
``negated``, ``uncertain``, ``historical``, ``site``, ``size_mm``, ``section``, ``text`` and
the character ``span``. With ``--csv`` the input is a CSV with a ``text`` column (and an
optional ``id`` column; else the row number is the id), one report per row.

``localize``: where a phrase points in a CT series (cross-modal attention peaks, world
LPS mm), one JSON object on standard output.

Example::

    $ medmm findings sample_dicom/case_metastases/report.txt
    {"id": "report", "concept": "urn:medmm:pulmonary-nodule", "label": "pulmonary nodule", ...}
    $ medmm localize sample_dicom/case_spiculated/dicom "2.3 cm part-solid nodule in the RUL"
    {"phrase": "...", "peaks": [{"point_lps_mm": [-62.1, 13.0, 88.5], "attention_mass": 0.52}, ...]}
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_findings_parser", "add_localize_parser"]


def _reports(args: argparse.Namespace) -> list[tuple[str, str]]:
    if str(args.path) == "-":
        text = sys.stdin.read()
        source = "stdin"
    else:
        text = Path(args.path).read_text(encoding="utf-8", errors="replace")
        source = Path(args.path).stem
    if not args.csv:
        return [(source, text)]
    rows = list(csv.DictReader(text.splitlines()))
    if rows and "text" not in rows[0]:
        raise ValueError(f"the CSV has no 'text' column (columns: {', '.join(rows[0])})")
    return [(str(row.get("id") or n), row.get("text") or "") for n, row in enumerate(rows, start=1)]


def _cmd_findings(args: argparse.Namespace) -> int:
    from medmm.errors import InputError, OntologyError
    from medmm.reason.ontology import load_ontology
    from medmm.text.clean import prepare_report_text
    from medmm.text.mentions import extract_mentions

    try:
        reports = _reports(args)
        onto = load_ontology(extra=args.ontology, validate=bool(args.ontology))
    except (OSError, ValueError, csv.Error, OntologyError) as exc:
        print(f"medmm findings: {exc}", file=sys.stderr)
        return 2
    for report_id, raw in reports:
        try:
            text, warnings = prepare_report_text(raw, source=f"report {report_id}")
        except InputError as exc:
            print(f"medmm findings: {exc}", file=sys.stderr)
            return 2
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        for m in extract_mentions(text, onto):
            row: dict[str, Any] = {
                "id": report_id,
                "concept": m.concept,
                "label": m.label,
                "code": m.code,
                "negated": m.negated,
                "uncertain": m.uncertain,
                "historical": m.historical,
                "site": m.site,
                "size_mm": m.size_mm,
                "section": m.section,
                "text": m.text,
                "span": [m.start, m.end],
            }
            print(json.dumps(row, ensure_ascii=False))
    return 0


def add_findings_parser(sub: Any) -> None:
    """Add ``medmm findings`` to the CLI's subcommands."""
    p = sub.add_parser("findings", help="print the finding mentions of a report (or a CSV of reports) as JSON lines")
    p.add_argument("path", help="report text file, a CSV with --csv, or - for standard input")
    p.add_argument("--csv", action="store_true", help="input is a CSV with a 'text' column (and optional 'id')")
    p.add_argument(
        "--ontology", type=Path, nargs="+", default=[], metavar="TTL", help="extra Turtle merged and validated first"
    )
    p.set_defaults(func=_cmd_findings)


def _cmd_localize(args: argparse.Namespace) -> int:
    from medmm.anatomy import segment_anatomy
    from medmm.errors import MedmmError
    from medmm.fusion.align import ReportAligner, detection_rows
    from medmm.io import load_series
    from medmm.text.clean import prepare_report_text

    try:
        phrase, warnings = prepare_report_text(args.phrase, source="phrase")
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        if not phrase.strip():
            print("medmm localize: the phrase is empty", file=sys.stderr)
            return 2
        volume = load_series(args.series)
        anatomy = segment_anatomy(volume)
        nodules, faint = detection_rows(volume, anatomy.lungs.lung_mask)
        loc = ReportAligner().localize(volume, phrase, lobes=anatomy.lobes.labels, nodules=nodules, faint=faint)
    except MedmmError as exc:
        print(f"medmm localize: {exc}", file=sys.stderr)
        return 2
    out = {
        "phrase": phrase,
        "series_uid": volume.info.series_uid if volume.info else "",
        "stated": {"lobe": loc.stated_lobe, "size_mm": loc.stated_size_mm, "descriptors": list(loc.stated_descriptors)},
        "peaks": [
            {"point_lps_mm": [round(float(c), 1) for c in p], "attention_mass": round(m, 4)} for p, m in loc.peaks
        ],
    }
    print(json.dumps(out))
    return 0


def add_localize_parser(sub: Any) -> None:
    """Add ``medmm localize`` to the CLI's subcommands."""
    p = sub.add_parser("localize", help="where a report phrase points in a CT series (attention peaks, LPS mm)")
    p.add_argument("series", help="DICOM series folder")
    p.add_argument("phrase", help='e.g. "8 mm nodule in the right upper lobe"')
    p.set_defaults(func=_cmd_localize)
