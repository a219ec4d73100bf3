from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medmm.synth import SeriesTemplate, deterministic_uid, write_ct_series
from medmm.types import Volume


def test_uids_are_deterministic_valid_and_distinct() -> None:
    a, b = deterministic_uid("x", 1), deterministic_uid("x", 2)
    assert a == deterministic_uid("x", 1)
    assert a != b
    assert a.startswith("2.25.")
    assert len(a) <= 64
    assert all(part.isdigit() and (part == "0" or not part.startswith("0")) for part in a.split("."))


def test_written_series_is_reproducible_byte_for_byte(tmp_path: Path, small_ct: Volume) -> None:
    one = write_ct_series(small_ct, tmp_path / "1", SeriesTemplate(seed=3))
    two = write_ct_series(small_ct, tmp_path / "2", SeriesTemplate(seed=3))
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]


def test_written_files_pass_dciodvfy(tmp_path: Path, small_ct: Volume) -> None:
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed; .ci/run installs it")
    files = write_ct_series(Volume(small_ct.array[:2], small_ct.affine), tmp_path, seed=4)
    for f in files:
        done = subprocess.run([exe, str(f)], capture_output=True, text=True, timeout=60, check=False)
        report = done.stdout + done.stderr
        assert "Error" not in report, report
        assert "Warning" not in report, report


def test_written_attributes(tmp_path: Path, small_ct: Volume) -> None:
    (first, *_) = write_ct_series(small_ct, tmp_path, SeriesTemplate(seed=5, kernel="LUNG"))
    ds = pydicom.dcmread(first)
    assert ds.Modality == "CT"
    assert ds.ConvolutionKernel == "LUNG"
    np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], small_ct.origin_lps_mm, atol=1e-5)
    np.testing.assert_array_equal(ds.pixel_array, np.rint(small_ct.array[0]).astype(np.int16))
