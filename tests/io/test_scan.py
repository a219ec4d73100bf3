from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medmm.errors import InputError
from medmm.io import SkipReason, scan
from medmm.synth import SeriesTemplate, write_ct_series
from medmm.types import Volume


def _write_sr(path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture
def messy_folder(tmp_path: Path, small_ct: Volume) -> dict[str, object]:
    root = tmp_path / "archive"
    a = write_ct_series(small_ct, root / "study" / "a", SeriesTemplate(seed=1, series_number=2))
    b_vol = Volume(small_ct.array[:5], small_ct.affine)
    b = write_ct_series(b_vol, root / "study" / "b", SeriesTemplate(seed=2, series_number=3))
    (root / "notes.txt").write_text("not an image\n")
    (root / "empty.dcm").write_bytes(b"")
    trunc = root / "truncated.dcm"
    shutil.copy(a[0], trunc)  # same UIDs as a[0], but cut in the middle of the pixel data
    trunc.write_bytes(trunc.read_bytes()[: -small_ct.shape[1] * small_ct.shape[2]])
    copy = root / "zz_copies" / "copy_of_first.dcm"  # walked after the original
    copy.parent.mkdir()
    shutil.copy(b[0], copy)
    _write_sr(root / "report.dcm")
    (root / "garbage.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 50)
    return {"root": root, "a": a, "b": b, "trunc": trunc, "copy": copy}


def test_scan_returns_each_series_once_and_every_skipped_file_with_a_reason(messy_folder: dict) -> None:
    res = scan(messy_folder["root"])
    assert sorted(len(s.instances) for s in res.series) == [5, 24]
    assert {p for s in res.series for p in s.info.source_files} == set(messy_folder["a"]) | set(messy_folder["b"])
    reasons = {s.path.name: s.reason for s in res.skipped}
    assert reasons == {
        "notes.txt": SkipReason.NOT_DICOM,
        "empty.dcm": SkipReason.EMPTY,
        "truncated.dcm": SkipReason.TRUNCATED,
        "copy_of_first.dcm": SkipReason.DUPLICATE,
        "report.dcm": SkipReason.NON_IMAGE_OBJECT,
        "garbage.dcm": SkipReason.UNREADABLE,
    }
    details = {s.path.name: s.detail for s in res.skipped}
    assert "structured report" in details["report.dcm"]
    assert "bytes" in details["truncated.dcm"]
    assert details["copy_of_first.dcm"].startswith("same SOPInstanceUID")
    # Nothing silently dropped: every file is either in a series or skipped.
    all_files = {p for p in Path(messy_folder["root"]).rglob("*") if p.is_file()}
    used = {p for s in res.series for p in s.info.source_files}
    assert used | {s.path for s in res.skipped} == all_files


def test_scan_reads_series_metadata(messy_folder: dict) -> None:
    info = next(s.info for s in scan(messy_folder["root"]).series if len(s.instances) == 24)
    assert info.modality == "CT"
    assert info.convolution_kernel == "STANDARD"
    assert info.slice_thickness_mm == pytest.approx(2.0)
    assert info.patient_age_years == 60.0
    assert info.series_number == 2


def test_scan_with_process_pool_gives_the_same_result(messy_folder: dict) -> None:
    assert scan(messy_folder["root"], workers=2) == scan(messy_folder["root"], workers=1)


def test_scan_reports_progress(messy_folder: dict) -> None:
    calls: list[tuple[int, int]] = []
    scan(messy_folder["root"], progress=lambda done, total: calls.append((done, total)))
    assert calls[-1][0] == calls[-1][1] == len(calls)


def test_scan_follows_a_dicomdir(tmp_path: Path, small_ct: Volume) -> None:
    files = write_ct_series(Volume(small_ct.array[:4], small_ct.affine), tmp_path / "src", seed=5)
    fs = FileSet()
    for f in files:
        fs.add(f)
    fs.write(tmp_path / "media")
    res = scan(tmp_path / "media" / "DICOMDIR")
    assert len(res.series) == 1 and len(res.series[0].instances) == 4
    # Walking the folder instead finds the same series and names the index file.
    walked = scan(tmp_path / "media")
    assert [len(s.instances) for s in walked.series] == [4]
    assert [s.reason for s in walked.skipped] == [SkipReason.DICOMDIR]


def test_scan_missing_path_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        scan(tmp_path / "nope")


def test_scan_of_a_single_file(messy_folder: dict) -> None:
    res = scan(messy_folder["a"][3])
    assert len(res.series) == 1 and not res.skipped
    assert np.isclose(res.series[0].instances[0].frames[0].pixel_spacing_mm[0], 0.8)
