"""Whole batch runs: a messy archive, kill -9 and --resume, Dask against the process pool."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from medmm.batch.work import file_checksums, read_checksum_file
from medmm.cli import main
from tests.batch.conftest import CASES, SAMPLE, copy_series
from tests.conftest import REPO_ROOT

DICOM_DATES = ("InstanceCreationDate", "InstanceCreationTime", "ContentDate", "ContentTime")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str], dict[str, str]]:
    """12 good series in nested folders, 2 bad series, and 3 files that are no image series."""
    root = tmp_path_factory.mktemp("archive")
    good = set()
    for n in range(12):
        case = CASES[n % 3]
        good.add(copy_series(case, root / f"site{n % 2}" / f"patient{n:02d}" / "CT" / f"series{n}", f"good{n}"))
    bad = {
        copy_series("case_normal", root / "site0" / "broken" / "gap", "gap", drop=50): "missing",
        copy_series("case_normal", root / "site1" / "broken" / "mixed", "mixed", shrink=3): "mixed matrix sizes",
    }
    junk = root / "site1" / "junk"
    junk.mkdir(parents=True)
    (junk / "readme.txt").write_text("not a DICOM file")
    one = sorted((SAMPLE / "case_spiculated" / "dicom").glob("*.dcm"))[0]
    ds = pydicom.dcmread(one)
    ds.SeriesInstanceUID = ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "2.25.1234567"
    ds.save_as(junk / "cut.dcm", enforce_file_format=True)
    data = (junk / "cut.dcm").read_bytes()
    (junk / "cut.dcm").write_bytes(data[: len(data) // 2])  # truncated
    sr = pydicom.Dataset()
    sr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    sr.SOPInstanceUID, sr.SeriesInstanceUID, sr.StudyInstanceUID = "2.25.11", "2.25.12", "2.25.13"
    sr.Modality = "SR"
    sr.ensure_file_meta()
    sr.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    sr.save_as(junk / "sr.dcm", enforce_file_format=True)
    return root, good, bad


@pytest.mark.slow
def test_messy_archive_is_analyzed_around_its_bad_parts(archive, tmp_path: Path, capsys) -> None:
    root, good, bad = archive
    out = tmp_path / "out"
    assert main(["analyze", str(root), "-o", str(out), "--workers", "2", "--format", "json,sr,html"]) == 1
    capsys.readouterr()
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 14
    status = {r["series_uid"]: r for r in records}
    assert {u for u, r in status.items() if r["status"] == "ok"} == good
    for uid, reason in bad.items():
        assert status[uid]["status"] == "failed"
        assert status[uid]["error"]["type"] == "SeriesGeometryError"
        assert reason in status[uid]["error"]["message"]
    for uid in good:
        folder = out / uid
        assert {"result.json", "sr.dcm", "report.html", "outputs.sha256"} <= {p.name for p in folder.iterdir()}
        assert status[uid]["files"]["result.json"] and status[uid]["timings_s"]["total"] > 0
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 14 and {r["series_uid"] for r in rows} == good | set(bad)
    assert all(r["nodules"] != "" and r["lung_rads"] != "" for r in rows if r["status"] == "ok")
    assert all(r["error"] for r in rows if r["status"] == "failed")
    skipped = (out / "skipped_files.csv").read_text()
    for name in ("readme.txt", "cut.dcm", "sr.dcm"):
        assert name in skipped
    index = (out / "index.html").read_text()
    assert index.count("/report.html'>report</a>") == 12
    with open(out / "candidates.csv", newline="") as fh:
        assert {r["seriesuid"] for r in csv.DictReader(fh)} <= good
    assert not list(out.glob(".tmp-*"))


def _comparable(folder: Path) -> dict[str, object]:
    """Output files by name: bytes, or for DICOM the dataset without its creation timestamps."""
    out: dict[str, object] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".dcm":
            ds = pydicom.dcmread(path)
            for kw in DICOM_DATES:
                if kw in ds:
                    delattr(ds, kw)
            for item in ds.get("ContributingEquipmentSequence", []):
                if "ContributionDateTime" in item:
                    del item.ContributionDateTime
            out[path.name] = ds.to_json()
        elif path.name != "outputs.sha256":  # lists the DICOM checksums, which carry the dates
            out[path.name] = path.read_bytes()
    return out


def _outputs(out: Path) -> dict[str, dict[str, object]]:
    return {p.name: _comparable(p) for p in sorted(out.iterdir()) if p.is_dir()}


def _medmm(*args: str) -> list[str]:
    return [sys.executable, "-m", "medmm.cli", *args]


@pytest.fixture(scope="module")
def six_series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("six")
    for n in range(6):
        copy_series(CASES[n % 3], root / f"s{n}", f"six{n}")
    return root


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_outputs(six_series: Path, tmp_path: Path) -> None:
    common = ["--workers", "2", "--no-detect", "--format", "json,fhir,html,nifti", "-q"]
    reference = tmp_path / "reference"
    subprocess.run(_medmm("analyze", str(six_series), "-o", str(reference), *common), check=True, cwd=REPO_ROOT)
    out = tmp_path / "out"
    proc = subprocess.Popen(_medmm("analyze", str(six_series), "-o", str(out), *common), cwd=REPO_ROOT)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists() and manifest.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)  # workers die with their parent (PR_SET_PDEATHSIG)
    done_before = [json.loads(x)["key"] for x in manifest.read_text().splitlines() if x.strip()]
    assert 2 <= len(done_before) < 6
    # Nothing that looks complete is half-written: every folder either has outputs.sha256 or is a temp one.
    for folder in out.iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            assert (folder / "outputs.sha256").exists()
    subprocess.run(_medmm("analyze", str(six_series), "-o", str(out), "--resume", *common), check=True, cwd=REPO_ROOT)
    lines = [json.loads(x) for x in manifest.read_text().splitlines() if x.strip()]
    keys = [x["key"] for x in lines if x["status"] == "ok"]
    assert len(keys) == len(set(keys)) == 6, "a series was analyzed twice to completion"
    assert _outputs(out) == _outputs(reference)
    assert (out / "summary.csv").read_text().count("\n") == 7
    assert not list(out.glob(".tmp-*"))


def _assert_nothing_half_written(out: Path) -> None:
    """Every name that looks finished is complete; temp names start with a dot."""
    for path in out.iterdir():
        if path.name.startswith("."):
            continue
        if path.is_dir():
            listed = read_checksum_file(path)
            assert listed is not None, f"{path.name}: series folder without outputs.sha256"
            assert listed == file_checksums(path), f"{path.name}: outputs.sha256 does not match its files"
        elif path.suffix == ".jsonl":  # append-only log: only its last line may be torn (readers skip it)
            for line in path.read_text().splitlines()[:-1]:
                json.loads(line)
        elif path.suffix == ".csv":
            rows = list(csv.reader(path.open(newline="")))
            assert path.read_text().endswith("\n") and len({len(r) for r in rows}) == 1, path.name
        elif path.suffix == ".html":
            assert path.read_text().rstrip().endswith("</html>"), path.name


@pytest.mark.slow
def test_killed_at_random_points_never_leaves_a_partial_file_looking_complete(six_series: Path, tmp_path: Path) -> None:
    common = ["--workers", "2", "--no-detect", "--format", "json,fhir,html,nifti", "-q", "--resume"]
    out = tmp_path / "out"
    t0 = time.monotonic()
    subprocess.run(_medmm("analyze", str(six_series), "-o", str(tmp_path / "ref"), *common), check=True, cwd=REPO_ROOT)
    full_s = time.monotonic() - t0
    rng = random.Random(20261129)
    kills = 0
    for delay in sorted(rng.uniform(0.5, full_s) for _ in range(5)):
        proc = subprocess.Popen(_medmm("analyze", str(six_series), "-o", str(out), *common), cwd=REPO_ROOT)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        time.sleep(0.5)  # workers die with their parent
        if out.exists():
            _assert_nothing_half_written(out)
    assert kills >= 3, "the runs finished before most kill points: nothing was tested"
    subprocess.run(_medmm("analyze", str(six_series), "-o", str(out), *common), check=True, cwd=REPO_ROOT)
    _assert_nothing_half_written(out)
    assert _outputs(out) == _outputs(tmp_path / "ref")
    assert not list(out.glob(".tmp-*"))


@pytest.mark.slow
def test_dask_local_cluster_matches_the_process_pool(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    root = tmp_path / "in"
    for n in range(2):
        copy_series(CASES[n], root / f"s{n}", f"dask{n}")
    common = ["--format", "json,sr,seg,html", "-q"]
    assert main(["analyze", str(root), "-o", str(tmp_path / "pool"), "--workers", "2", *common]) == 0
    assert main(["analyze", str(root), "-o", str(tmp_path / "dask"), "--dask-local", "2", *common]) == 0
    pool, dask = _outputs(tmp_path / "pool"), _outputs(tmp_path / "dask")
    assert pool == dask and len(pool) == 2
    workers = [json.loads(x)["worker"] for x in (tmp_path / "dask" / "manifest.jsonl").read_text().splitlines()]
    assert all(w.startswith("dask ") for w in workers)
