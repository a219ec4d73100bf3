"""Batch pieces that run fast: filters, reports CSV, manifest, worker crash and timeout handling."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from medmm.batch import AnalysisOptions, SeriesFilter, SeriesJob, SeriesOutcome, discover_jobs, read_reports_csv
from medmm.batch.local import run_local
from medmm.batch.manifest import Manifest, read_manifest
from medmm.errors import InputError
from medmm.synth import SeriesTemplate, write_ct_series
from medmm.types import Volume


@pytest.fixture
def three_series(tmp_path: Path, small_ct: Volume) -> Path:
    root = tmp_path / "archive"
    for n, desc in enumerate(("CHEST 1.25 LUNG", "CHEST 5mm", "SCOUT")):
        write_ct_series(small_ct, root / f"s{n}", SeriesTemplate(seed=40 + n, series_description=desc, series_number=n))
    (root / "notes.txt").write_text("not dicom")
    return root


def test_filters_and_reports_csv(three_series: Path, tmp_path: Path) -> None:
    found = discover_jobs([three_series], SeriesFilter(series_description="chest"))
    assert len(found.jobs) == 2 and len(found.filtered) == 1
    assert "does not match" in found.filtered[0][1]
    assert any(s.path.name == "notes.txt" for s in found.skipped_files)
    assert not discover_jobs([three_series], SeriesFilter(modality="MR")).jobs
    assert not discover_jobs([three_series], SeriesFilter(min_slices=1000)).jobs
    study = found.jobs[0].series.info.study_uid
    csv_path = tmp_path / "reports.csv"
    csv_path.write_text(f"StudyInstanceUID,text\n{study},Right upper lobe nodule 6 mm.\n")
    found = discover_jobs([three_series], reports=read_reports_csv(csv_path))
    texts = {j.series.info.study_uid: j.report_text for j in found.jobs}
    assert texts[study] == "Right upper lobe nodule 6 mm."
    bad = tmp_path / "bad.csv"
    bad.write_text("uid,report\n1,x\n")
    with pytest.raises(InputError, match="lack 'text'"):
        read_reports_csv(bad)


def test_manifest_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    with Manifest(path, append=False) as m:
        m.write(SeriesOutcome("a", "1.2", "1.3", "ok", files={"result.json": "x"}))
        m.write(SeriesOutcome("b", "1.4", "1.3", "failed", error={"type": "E", "message": "m", "file": ""}))
    with path.open("a") as fh:
        fh.write('{"key": "c", "status": "o')  # killed mid-write
    records = read_manifest(path)
    assert set(records) == {"a", "b"} and records["b"]["error"]["message"] == "m"
    assert json.loads(path.read_text().splitlines()[0])["finished_at"]


def crash_or_sleep(job: SeriesJob, options: AnalysisOptions, out_root: Path) -> SeriesOutcome:
    """A stand-in for process_series: segfaults, hangs or succeeds depending on the series."""
    desc = job.series.info.series_description
    if desc == "SCOUT":
        os.kill(os.getpid(), signal.SIGSEGV)
    if desc == "CHEST 5mm":
        time.sleep(120)
    info = job.series.info
    return SeriesOutcome(job.key, info.series_uid, info.study_uid, "ok", worker=str(os.getpid()))


@pytest.mark.slow
def test_local_pool_survives_a_segfault_and_a_hang(three_series: Path, tmp_path: Path) -> None:
    jobs = discover_jobs([three_series]).jobs * 1
    extra = discover_jobs([three_series], SeriesFilter(series_description="LUNG")).jobs[0]
    jobs = [*jobs, SeriesJob(extra.key + "-again", extra.series, None, 3)]
    t0 = time.monotonic()
    outcomes = list(
        run_local(jobs, AnalysisOptions(detect=False), tmp_path, workers=2, timeout_s=8, process=crash_or_sleep)
    )
    assert time.monotonic() - t0 < 90
    by_desc = {}
    for o, j in ((o, next(j for j in jobs if j.key == o.key)) for o in outcomes):
        by_desc.setdefault(j.series.info.series_description, []).append(o)
    assert len(outcomes) == 4
    assert by_desc["SCOUT"][0].status == "failed" and "SIGSEGV" in by_desc["SCOUT"][0].error["message"]
    assert by_desc["CHEST 5mm"][0].error["type"] == "Timeout"
    assert [o.status for o in by_desc["CHEST 1.25 LUNG"]] == ["ok", "ok"]  # replacement workers took over
