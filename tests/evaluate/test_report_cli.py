"""Written outputs (metrics.json, CSVs, plots) and `medmm evaluate`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from medmm.cli import main
from medmm.evaluate import (
    EvaluationSettings,
    PredictionSet,
    ReferenceSet,
    evaluate_detections,
    read_synthetic_reference,
    write_evaluation,
)
from medmm.types import ReferenceNodule
from tests.conftest import LIDC_DIR, REPO_ROOT, require_shared
from tests.evaluate.conftest import random_case

SAMPLE = REPO_ROOT / "sample_dicom"
PNG = b"\x89PNG\r\n\x1a\n"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_write_evaluation_files(tmp_path: Path) -> None:
    case = random_case(5, n_scans=10)
    case.included.append((case.series[0], 0.0, 0.0, 0.0, 8.0))
    ref = case.reference(complete=True)
    textures = tuple(["solid", "ground_glass", None][i % 3] for i in range(len(ref.nodules)))
    ref = ReferenceSet(ref.nodules, ref.excluded, ref.series_uids, True, textures, "random")
    result = evaluate_detections(case.predictions(), ref, settings=EvaluationSettings(n_bootstrap=100, seed=3))
    written = write_evaluation(result, tmp_path / "out")
    expected = {"metrics", "detections", "nodules", "scans", "froc", "froc_bootstrap", "scan_roc"}
    assert expected | {"froc_png", "roc_png", "sensitivity_by_size_png"} == set(written)
    for key in ("froc_png", "roc_png", "sensitivity_by_size_png"):
        assert written[key].read_bytes()[:8] == PNG
    doc = json.loads(written["metrics"].read_text())
    assert doc["froc"]["cpm"] == pytest.approx(result.froc.cpm)  # type: ignore[union-attr]
    assert len(doc["froc"]["operating_points"]) == 7 and doc["froc"]["cpm_ci"][0] <= doc["froc"]["cpm_ci"][1]
    assert doc["counts"]["scans"] == 10 and doc["protocol"]["max_candidates_per_scan"] == 100
    assert {s["label"] for s in doc["nodule_level"]["by_texture"]} == {"solid", "ground_glass", "unknown"}
    det = _rows(written["detections"])
    assert len(det) == len(case.marks)
    by_status = {s: sum(r["status"] == s for r in det) for s in doc["counts"]["predictions_by_status"]}
    assert by_status == doc["counts"]["predictions_by_status"]
    nod = _rows(written["nodules"])
    assert sum(int(r["detected"]) for r in nod) == doc["froc"]["n_detected"]
    assert len(_rows(written["scans"])) == 10
    roc = _rows(written["scan_roc"])
    assert roc[0]["threshold"] == "" and float(roc[-1]["sensitivity"]) == 1.0  # from +inf down to the lowest score
    assert not list((tmp_path / "out").glob(".tmp-*"))


def test_no_nodule_reference_gives_no_froc_and_says_so(tmp_path: Path) -> None:
    ref = ReferenceSet((), (ReferenceNodule("a", (0.0, 0.0, 0.0), None),), ("a", "b"), complete=True)
    preds = PredictionSet.from_records([("a", 50.0, 0.0, 0.0, 0.3)])
    result = evaluate_detections(preds, ref, settings=EvaluationSettings(n_bootstrap=10))
    assert result.froc is None and any("FROC and CPM are undefined" in w for w in result.warnings)
    assert any("no positive scan" in w for w in result.warnings)
    written = write_evaluation(result, tmp_path)
    assert json.loads(written["metrics"].read_text())["froc"] is None and "froc_png" not in written


def _sample_predictions(tmp_path: Path) -> Path:
    ref = read_synthetic_reference(SAMPLE)
    lines = ["seriesuid,coordX,coordY,coordZ,probability"]
    for i, n in enumerate(ref.nodules):
        x, y, z = n.center_lps_mm
        lines.append(f"{n.series_uid},{x + 1},{y},{z},{0.9 - 0.1 * i}")
        lines.append(f"{n.series_uid},{x + 60},{y},{z},{0.35}")
    lines.append(f"{ref.series_uids[-1]},0,0,0,0.45")
    p = tmp_path / "pred.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_cli_evaluate_synthetic(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "eval"
    argv = ["evaluate", "--predictions", str(_sample_predictions(tmp_path)), "--synthetic-root", str(SAMPLE)]
    assert main([*argv, "--out", str(out), "--bootstrap", "50", "--threshold", "0.4"]) == 0
    text = capsys.readouterr().out
    assert "CPM" in text and "all 3 scans of the reference (default)" in text and "sensitivity" in text
    assert "solid" in text and "wrote" in text
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["froc"]["n_nodules"] == 5 and doc["froc"]["n_detected"] == 5
    assert doc["scan_level"]["at_threshold"]["tp"] == 2 and doc["inputs"]["series_list"] == "reference"
    assert (out / "froc.png").read_bytes()[:8] == PNG


def test_cli_evaluate_luna16_with_series_list(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pred = _sample_predictions(tmp_path)
    series = tmp_path / "series.csv"
    series.write_text("\n".join(read_synthetic_reference(SAMPLE).series_uids) + "\n")
    out = tmp_path / "eval"
    argv = ["evaluate", "--predictions", str(pred), "--annotations", str(SAMPLE / "annotations.csv")]
    assert main([*argv, "--series-list", str(series), "--out", str(out), "--bootstrap", "0"]) == 0
    assert "series list given (3 scans)" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["froc"]["cpm_ci"] is None


@pytest.mark.realdata
def test_cli_evaluate_real_luna16_reference(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ann = require_shared(LIDC_DIR / "luna16_annotations.csv")
    uid = "1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192"
    pred = tmp_path / "p.csv"
    pred.write_text(
        f"seriesuid,coordX,coordY,coordZ,probability\n{uid},56.2,86.3,-115.8,0.9\n{uid},-34.5,-54.9,-150,0.8\n"
        f"{uid},0,0,-150,0.7\n"
    )
    argv = ["evaluate", "--predictions", str(pred), "--annotations", str(ann)]
    argv += ["--excluded", str(LIDC_DIR / "luna16_annotations_excluded.csv"), "--out", str(tmp_path / "o")]
    assert main([*argv, "--bootstrap", "20"]) == 0
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert doc["counts"]["predictions_by_status"] == {
        "hit": 1,
        "false_positive": 1,
        "ignored_excluded": 1,
        "not_scored": 0,
        "unknown_series": 0,
    }
    assert doc["froc"]["cpm"] == 1.0
    assert "pass a series list" in capsys.readouterr().out


def test_cli_evaluate_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("seriesuid,coordX,coordY\n1,2,3\n")
    out = str(tmp_path / "o")
    assert main(["evaluate", "--predictions", str(bad), "--synthetic-root", str(SAMPLE), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "missing column(s) ['coordZ', 'probability']" in err and "bad.csv" in err
    pred = _sample_predictions(tmp_path)
    argv = ["evaluate", "--predictions", str(pred), "--synthetic-root", str(SAMPLE), "--out", out]
    assert main([*argv, "--excluded", str(bad)]) == 2
    assert "--excluded goes with --annotations" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--predictions", str(pred), "--out", out])  # no reference: argparse refuses


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--threshold", "nan"], "threshold is NaN"),
        (["--size-cutoff-mm", "-1"], "size cut-off"),
        (["--bootstrap", "-5"], "bootstrap replicates"),
        (["--max-per-scan", "-3"], "max candidates"),
    ],
)
def test_cli_evaluate_bad_settings_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, flags: list[str], message: str
) -> None:
    argv = ["evaluate", "--predictions", str(_sample_predictions(tmp_path)), "--synthetic-root", str(SAMPLE)]
    assert main([*argv, "--out", str(tmp_path / "o"), *flags]) == 2
    assert message in capsys.readouterr().err
