"""Written data sets: valid DICOM, geometry as intended, annotations inside their masks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from medmm.cli import main
from medmm.io import load_series, read_luna16_csv, read_nifti
from medmm.synth.cases import Pattern, generate_case
from medmm.synth.dataset import generate_dataset, write_case
from medmm.synth.phantom import PatientShape, build_phantom, phantom_geometry
from medmm.synth.report_text import write_report
from medmm.synth.scanner import Kernel, ScannerSettings

SMALL = ScannerSettings(Kernel.STANDARD, slice_thickness_mm=5.0, matrix=96)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate_dataset(out, n_cases=4, seed=3, matrix=96, split_fractions=(0.5, 0.25, 0.25), disagree_rate=0.5)
    return out


def test_dataset_layout_and_manifest(dataset: Path) -> None:
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert [c["split"] for c in manifest["cases"]] == ["train", "train", "val", "test"]
    for c in manifest["cases"]:
        folder = dataset / c["folder"]
        for name in ("report.txt", "ground_truth.json", "nodules.nii.gz", "lobes.nii.gz"):
            assert (folder / name).is_file()
        assert len(list((folder / "dicom").glob("*.dcm"))) > 10


def test_reader_recovers_the_intended_geometry_and_annotations(dataset: Path) -> None:
    for split in ("train", "val", "test"):
        refs = read_luna16_csv(dataset / split / "annotations.csv")
        for folder in sorted((dataset / split).glob("case*")):
            truth = json.loads((folder / "ground_truth.json").read_text())
            vol = load_series(folder / "dicom")
            mask = read_nifti(folder / "nodules.nii.gz", dtype=None)
            np.testing.assert_allclose(vol.affine, mask.affine, atol=1e-4)
            assert vol.info is not None
            assert vol.info.series_uid == truth["series_uid"]
            mine = [r for r in refs if r.series_uid == truth["series_uid"]]
            assert len(mine) == len(truth["nodules"])
            for ref, nod in zip(mine, truth["nodules"], strict=True):
                k, j, i = np.rint(vol.world_to_index(ref.center_lps_mm)).astype(int)
                assert mask.array[k, j, i] == nod["label"]


def test_same_seed_same_data(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "a", n_cases=1, seed=9, matrix=64)
    generate_dataset(tmp_path / "b", n_cases=1, seed=9, matrix=64)
    for f in sorted((tmp_path / "a").rglob("*")):
        if f.is_file():
            assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes(), f


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.1", RLELossless, JPEGLSLossless, JPEG2000Lossless])
def test_written_files_pass_dciodvfy_and_decode_losslessly(tmp_path: Path, syntax: str) -> None:
    exe = shutil.which("dciodvfy")
    case = generate_case(2, pattern=Pattern.SMALL_INDETERMINATE, scanner=SMALL)
    report = write_report(case.nodules, case.diagnosis, np.random.default_rng(0))
    folder, _ = write_case(case, report, tmp_path, transfer_syntax=str(syntax))
    np.testing.assert_array_equal(load_series(folder / "dicom").array, np.rint(case.volume.array))
    if exe is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed; .ci/run installs it")
    for f in sorted((folder / "dicom").glob("*.dcm"))[:3]:
        done = subprocess.run([exe, str(f)], capture_output=True, text=True, timeout=60, check=False)
        report_text = done.stdout + done.stderr
        assert "Error" not in report_text, report_text


def test_oblique_grid_is_written_and_read_back(tmp_path: Path) -> None:
    from medmm.synth.dicom_writer import write_ct_series

    shape = PatientShape(seed=1)
    geom = phantom_geometry(shape, matrix=64, slice_thickness_mm=6.0, tilt_deg=12.0)
    ph = build_phantom(geom, shape)
    write_ct_series(ph.hu, tmp_path, seed=1)
    vol = load_series(tmp_path)
    np.testing.assert_allclose(vol.affine, geom.affine, atol=1e-4)
    np.testing.assert_array_equal(vol.array, np.rint(ph.hu.array))


def test_cli_synth(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["synth", str(tmp_path / "out"), "--cases", "2", "--seed", "4", "--matrix", "64"]) == 0
    assert "wrote 2 cases" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "out" / "manifest.json").read_text())["cases"]) == 2


def test_cli_synth_pattern_mix(tmp_path: Path) -> None:
    out = tmp_path / "pfn"
    assert main(["synth", str(out), "--cases", "2", "--seed", "4", "--matrix", "64", "--patterns", "normal=1"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert {c["pattern"] for c in manifest["cases"]} == {"normal"}
    assert manifest["pattern_rates"] == {"normal": 1.0}


@pytest.mark.parametrize("text", ["tumour=1", "normal", "normal=-1", "normal=0", "normal=x"])
def test_cli_synth_rejects_a_bad_pattern_mix(tmp_path: Path, text: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["synth", str(tmp_path / "x"), "--cases", "1", "--patterns", text]) != 0
    err = capsys.readouterr().err
    assert "pattern" in err and "--" in err
    assert not (tmp_path / "x").exists()


def test_cli_synth_subsolid_size_range(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "ggn"
    args = ["synth", str(out), "--cases", "2", "--seed", "4", "--matrix", "64"]
    assert main([*args, "--patterns", "subsolid_adenocarcinoma_spectrum=1", "--subsolid-size-mm", "5", "8"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["subsolid_size_mm"] == [5.0, 8.0]
    for split in ("train", "val", "test"):
        for gt in (out / split).glob("*/ground_truth.json"):
            assert all(4.5 <= n["diameter_mm"] <= 8.5 for n in json.loads(gt.read_text())["nodules"])
    # A reversed range is refused before anything is written.
    bad = tmp_path / "bad"
    assert main(["synth", str(bad), "--cases", "1", "--subsolid-size-mm", "8", "5"]) != 0
    assert "subsolid size range" in capsys.readouterr().err and not bad.exists()
