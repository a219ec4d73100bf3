"""Batch summaries: ``summary.csv``, ``index.html``, ``candidates.csv``, ``skipped_files.csv``.

All are rebuilt from the manifest at the end of every run (including a resumed one), so
they always describe every series the output folder holds, and each is written atomically.

``summary.csv`` has one row per series: UIDs, status, error, nodule count, largest nodule,
Lung-RADS (from the guidelines stage), top differential (from the reasoning stage; empty
when it did not run, never guessed), runtime and the output folder.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from medmm.io.atomic import atomic_path
from medmm.io.headers import SkippedFile

__all__ = ["SUMMARY_COLUMNS", "write_candidates_csv", "write_index_html", "write_skipped_csv", "write_summary_csv"]

logger = logging.getLogger(__name__)

SUMMARY_COLUMNS = (
    "series_uid",
    "study_uid",
    "status",
    "error_type",
    "error",
    "nodules",
    "largest_mm",
    "largest_lobe",
    "lung_rads",
    "top_differential",
    "runtime_s",
    "folder",
)


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def _row(record: dict[str, Any]) -> list[Any]:
    error = record.get("error") or {}
    largest = record.get("largest_mm")
    return [
        record.get("series_uid", ""),
        record.get("study_uid", ""),
        record.get("status", ""),
        error.get("type", ""),
        error.get("message", ""),
        "" if record.get("nodules") is None else record["nodules"],
        "" if largest is None else f"{largest:.1f}",
        record.get("largest_lobe", ""),
        record.get("lung_rads", ""),  # empty when the guidelines stage did not run
        record.get("top_differential", ""),  # empty when the reasoning stage did not run
        f"{record.get('timings_s', {}).get('total', 0.0):.1f}",
        record.get("key", "") if record.get("status") == "ok" else "",
    ]


def write_summary_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """One row per series, in the order given."""
    _write_csv(path, SUMMARY_COLUMNS, [_row(r) for r in records])


def write_skipped_csv(path: Path, skipped: Sequence[SkippedFile], filtered: Sequence[tuple[str, str]]) -> None:
    """Files that are not part of an image series, and series the filters left out, with reasons."""
    rows = [[str(s.path), "file", s.reason, s.detail] for s in skipped]
    rows += [["", f"series {uid}", "filtered", why] for uid, why in filtered]
    _write_csv(path, ("path", "what", "reason", "detail"), rows)


def write_candidates_csv(path: Path, out_root: Path, records: Sequence[dict[str, Any]]) -> int:
    """LUNA16 submission CSV over every finished series (read from their result.json).

    Returns:
        Number of rows written.
    """
    rows = []
    for rec in records:
        if rec.get("status") != "ok":
            continue
        result_json = out_root / rec["key"] / "result.json"
        if not result_json.exists():
            continue
        data = json.loads(result_json.read_text(encoding="utf-8"))
        for c in data.get("candidates", ()):
            x, y, z = c["center_lps_mm"]
            rows.append([data["series"]["series_uid"], f"{x:.2f}", f"{y:.2f}", f"{z:.2f}", f"{c['probability']:.5f}"])
    _write_csv(path, ("seriesuid", "coordX", "coordY", "coordZ", "probability"), rows)
    return len(rows)


def write_index_html(path: Path, records: Sequence[dict[str, Any]], *, title: str = "medmm batch") -> None:
    """A table of every series linking to its report.html (self-contained, no script)."""
    body = []
    for rec in records:
        ok = rec.get("status") == "ok"
        key = escape(str(rec.get("key", "")))
        has_report = ok and (path.parent / str(rec.get("key", "")) / "report.html").exists()
        link = f"<a href='{key}/report.html'>report</a>" if has_report else ""
        error = rec.get("error") or {}
        largest = rec.get("largest_mm")
        count = "" if rec.get("nodules") is None else rec["nodules"]
        biggest = "" if largest is None else f"{largest:.1f} mm " + escape(str(rec.get("largest_lobe", "")))
        body.append(
            f"<tr class='{'ok' if ok else 'failed'}'><td>{escape(str(rec.get('series_uid', '')))}</td>"
            f"<td>{escape(str(rec.get('status', '')))}</td><td>{count}</td><td>{biggest}</td>"
            f"<td>{escape(error.get('type', ''))} {escape(error.get('message', ''))}</td><td>{link}</td></tr>"
        )
    n_ok = sum(r.get("status") == "ok" for r in records)
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>body{{font-family:system-ui,sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
        "tr.failed{background:#fde8e8}</style></head><body>"
        f"<h1>{escape(title)}</h1><p>{n_ok} of {len(records)} series analyzed; research software, not for "
        "clinical use.</p><table><tr><th>Series UID</th><th>Status</th><th>Nodules</th><th>Largest</th>"
        f"<th>Problem</th><th>Report</th></tr>{''.join(body)}</table></body></html>"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
