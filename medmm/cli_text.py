"""``medmm findings FILE|-``: the finding mentions of a report, as JSON lines.

One line per mention with the report ``id``, ``concept`` (IRI), ``label``, ``code``,
``negated``, ``uncertain``, ``historical``, ``site``, ``size_mm``, ``section``, ``text`` and
the character ``span``. With ``--csv`` the input is a CSV with a ``text`` column (and an
optional ``id`` column; else the row number is the id), one report per row.

Example::

    $ medmm findings sample_dicom/case_metastases/report.txt
    {"id": "report", "concept": "urn:medmm:pulmonary-nodule", "label": "pulmonary nodule", ...}
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_findings_parser"]


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
    from medmm.text.mentions import extract_mentions

    try:
        reports = _reports(args)
    except (OSError, ValueError, csv.Error) as exc:
        print(f"medmm findings: {exc}", file=sys.stderr)
        return 2
    for report_id, text in reports:
        for m in extract_mentions(text):
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
    p.set_defaults(func=_cmd_findings)
