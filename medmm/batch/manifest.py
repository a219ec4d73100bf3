"""``OUT/manifest.jsonl``: one JSON line per finished or failed series, appended as it happens.

Only the batch's main process writes it; each line is flushed and fsynced before the next
series is reported, so a killed run loses at most the series in flight. A torn last line
(killed mid-write) is ignored on reading. The last line of a series wins.

``--resume`` keeps a series when its last line says ``ok``, its folder exists and every file
in it still has the recorded sha256; everything else is analyzed again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from medmm.batch.work import SeriesOutcome, file_checksums, read_checksum_file
from medmm.io.atomic import open_append_no_follow

__all__ = ["MANIFEST_NAME", "Manifest", "read_manifest", "recover_record", "still_complete"]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Last record per series key (torn or foreign lines are skipped with a log line)."""
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            try:
                rec = json.loads(line)
                records[str(rec["key"])] = rec
            except (ValueError, KeyError, TypeError):
                logger.warning("%s line %d is not a complete record (an interrupted write?); ignored", path, number)
    return records


def still_complete(record: dict[str, Any], out_root: Path) -> bool:
    """A finished series whose folder still holds exactly the files it wrote, unchanged."""
    if record.get("status") != "ok":
        return False
    folder = out_root / str(record["key"])
    return folder.is_dir() and file_checksums(folder) == record.get("files")


def recover_record(key: str, out_root: Path) -> dict[str, Any] | None:
    """A manifest record rebuilt from a finished folder whose manifest line was lost.

    The batch process can be killed after a worker renamed a finished folder into place
    but before the manifest line was written. Such a folder has a valid ``outputs.sha256``;
    its record is rebuilt from it and ``result.json`` instead of analyzing the series again.
    """
    folder = out_root / key
    listed = read_checksum_file(folder) if folder.is_dir() else None
    if not listed or file_checksums(folder) != listed or "result.json" not in listed:
        return None
    data = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    nodules = data.get("nodules")
    big = max(nodules, key=lambda n: n["diameter_mm"], default=None) if nodules is not None else None
    outcome = SeriesOutcome(
        key,
        data["series"]["series_uid"],
        data["series"].get("study_uid", ""),
        "ok",
        nodules=None if nodules is None else len(nodules),
        largest_mm=big["diameter_mm"] if big else None,
        largest_lobe=big["lobe"] if big else "",
        lung_rads=(data.get("guidelines") or {}).get("lung_rads", ""),
        files=listed,
        versions={"medmm": data.get("medmm_version", ""), "recovered_from": "outputs.sha256"},
    )
    return dataclasses.asdict(outcome)


class Manifest:
    """Appends outcomes to ``manifest.jsonl`` (use as a context manager).

    Args:
        path: The manifest file.
        append: Keep existing lines (``--resume``); otherwise start a new manifest.
    """

    def __init__(self, path: Path, *, append: bool) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._append = append

    def __enter__(self) -> Manifest:
        if not self._append and os.path.lexists(self.path):
            os.replace(self.path, self.path.with_suffix(".jsonl.previous"))
        self._fh = open_append_no_follow(self.path)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()

    def write(self, outcome: SeriesOutcome | dict[str, Any]) -> dict[str, Any]:
        """Append one outcome (or a recovered record) durably; returns the record written."""
        assert self._fh is not None, "use Manifest as a context manager"
        record = dataclasses.asdict(outcome) if isinstance(outcome, SeriesOutcome) else dict(outcome)
        record["timings_s"] = {k: round(v, 3) for k, v in record.get("timings_s", {}).items()}
        record["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        self._fh.write(json.dumps(record, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return record
