"""Prediction, reference and series-list inputs, and what bad input does."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from medmm.errors import AnnotationError, InputError
from medmm.evaluate import (
    EvaluationSettings,
    PredictionSet,
    SeriesListSource,
    evaluate_detections,
    read_lidc_reference,
    read_luna16_reference,
    read_prediction_csv,
    read_predictions,
    read_series_list,
    read_synthetic_reference,
)
from tests.conftest import LIDC_DIR, REPO_ROOT, require_shared

HEADER = "seriesuid,coordX,coordY,coordZ,probability\n"
QUICK = EvaluationSettings(n_bootstrap=0)


def _csv(tmp_path: Path, text: str, name: str = "pred.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _luna(tmp_path: Path) -> Path:
    return _csv(tmp_path, "seriesuid,coordX,coordY,coordZ,diameter_mm\n1.1,0,0,0,8\n1.2,10,10,10,20\n", "ann.csv")


def test_reads_columns_in_any_order_with_extras(tmp_path: Path) -> None:
    p = _csv(tmp_path, "probability,extra,coordZ,coordY,coordX,seriesuid\n0.5,x,3,2,1,1.1\n\n0.25,y,-3,-2,-1,1.2\n")
    preds = read_prediction_csv(p)
    assert preds.series_uids.tolist() == ["1.1", "1.2"]
    assert preds.centers_lps_mm.tolist() == [[1, 2, 3], [-1, -2, -3]]
    assert preds.scores.tolist() == [0.5, 0.25] and preds.line_numbers.tolist() == [2, 4]
    assert "2 marks on 2 series" in repr(preds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seriesuid,coordX,coordY,probability\n1.1,0,0,0.5\n", r"missing column\(s\) \['coordZ'\]"),
        (HEADER + "1.1,0,nan,0,0.5\n", "line 2: NaN or infinite coordinate"),
        (HEADER + "1.1,0,0,0,0.5\n1.1,0,0,inf,0.5\n", "line 3: NaN or infinite coordinate"),
        (HEADER + "1.1,0,0,0,NaN\n", "NaN or infinite probability"),
        (HEADER + "1.1,0,zero,0,0.5\n", "line 2: not a number"),
        (HEADER + ",0,0,0,0.5\n", "empty seriesuid"),
        (HEADER + "1.1,0,0\n", "3 fields"),
        ("", "empty"),
    ],
)
def test_bad_prediction_files_are_refused_with_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as exc:
        read_prediction_csv(_csv(tmp_path, text))
    assert "pred.csv" in str(exc.value)


def test_missing_file_and_result_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_predictions(tmp_path / "absent.csv")
    with pytest.raises(InputError, match=r"holds no candidates\.csv"):
        read_predictions(tmp_path)
    (tmp_path / "candidates.csv").write_text("seriesuid,coordX,coordY,coordZ,probability\n1.2,0,0,0,0.5\n")
    assert len(read_predictions(tmp_path).series_uids) == 1  # an analyze output folder reads its candidates.csv


def test_nan_in_a_programmatic_set_is_refused() -> None:
    with pytest.raises(InputError, match="NaN or infinite"):
        PredictionSet.from_records([("1.1", 0.0, float("nan"), 0.0, 0.5)], "mine")


def test_duplicate_rows_policies(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = _csv(tmp_path, HEADER + "1.1,50,0,0,0.5\n1.1,50,0,0,0.5\n1.1,50,0,0,0.6\n")
    with caplog.at_level(logging.WARNING):
        kept = read_prediction_csv(p)
    assert len(kept) == 3 and "repeat an earlier row exactly (lines [3])" in kept.warnings[0]
    assert "repeat an earlier row" in caplog.text
    assert len(read_prediction_csv(p, duplicates="drop")) == 2
    with pytest.raises(InputError, match="repeat"):
        read_prediction_csv(p, duplicates="error")
    ref = read_luna16_reference(_luna(tmp_path))
    result = evaluate_detections(kept, ref, series_uids=["1.1", "1.2"], settings=QUICK)
    assert result.match.count("false_positive") == 3  # scored as the LUNA16 script does
    assert any("repeat an earlier row" in w for w in result.to_dict()["warnings"])


def test_empty_prediction_set_warns_and_scores_zero(tmp_path: Path) -> None:
    preds = read_prediction_csv(_csv(tmp_path, HEADER))
    assert len(preds) == 0 and "no predictions" in preds.warnings[0]
    result = evaluate_detections(preds, read_luna16_reference(_luna(tmp_path)), settings=QUICK)
    assert result.froc is not None and result.froc.cpm == 0.0
    assert any("every nodule is missed" in w for w in result.warnings)


def test_unknown_series_are_left_out_with_a_warning(tmp_path: Path) -> None:
    preds = read_prediction_csv(_csv(tmp_path, HEADER + "1.1,0,0,0,0.9\n7.7,0,0,0,0.8\n7.7,5,0,0,0.8\n8.8,0,0,0,0.1\n"))
    ref = read_luna16_reference(_luna(tmp_path))
    result = evaluate_detections(preds, ref, series_uids=["1.1", "1.2"], settings=QUICK)
    doc = result.to_dict()
    assert doc["unknown_series"]["rows"] == 3 and doc["unknown_series"]["series"] == ["7.7", "8.8"]
    assert doc["counts"]["predictions_by_status"]["unknown_series"] == 3
    assert any("3 prediction(s) on 2 series outside the evaluated list" in w for w in doc["warnings"])
    assert result.froc is not None and result.froc.n_scans == 2 and result.froc.n_false_positives == 0


def test_default_series_list_for_luna16_is_the_union_and_says_so(tmp_path: Path) -> None:
    preds = read_prediction_csv(_csv(tmp_path, HEADER + "1.1,0,0,0,0.9\n3.3,0,0,0,0.8\n"))
    result = evaluate_detections(preds, read_luna16_reference(_luna(tmp_path)), settings=QUICK)
    assert result.selection.source is SeriesListSource.REFERENCE_AND_PREDICTIONS
    assert result.match.series_uids == ("1.1", "1.2", "3.3")
    assert any("pass a series list" in w for w in result.warnings)


def test_series_list_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = _csv(tmp_path, "seriesuid\n1.1\n\n1.2,extra\n1.1\n", "list.csv")
    with caplog.at_level(logging.WARNING):
        assert read_series_list(p) == ("1.1", "1.2")
    assert "repeats 1 UID" in caplog.text
    assert read_series_list(_csv(tmp_path, "1.3\n1.4\n", "plain.csv")) == ("1.3", "1.4")
    with pytest.raises(InputError, match="no series UID"):
        read_series_list(_csv(tmp_path, "seriesuid\n", "empty.csv"))


def test_luna16_reference_with_excluded(tmp_path: Path) -> None:
    exc = _csv(tmp_path, "seriesuid,coordX,coordY,coordZ,diameter_mm\n1.1,50,0,0,-1\n1.4,0,0,0,-1\n", "exc.csv")
    ref = read_luna16_reference(_luna(tmp_path), exc)
    assert len(ref.nodules) == 2 and len(ref.excluded) == 2 and not ref.complete
    assert ref.series_uids == ("1.1", "1.2", "1.4") and ref.excluded[0].diameter_mm is None
    with pytest.raises(AnnotationError, match="missing column"):
        read_luna16_reference(_csv(tmp_path, "a,b\n1,2\n", "bad.csv"))


def test_synthetic_reference_from_sample_dicom() -> None:
    ref = read_synthetic_reference(REPO_ROOT / "sample_dicom")
    assert ref.complete and len(ref.series_uids) == 3  # the normal case is a scan too
    assert len(ref.nodules) == 5 and set(ref.textures) <= {"solid", "part_solid", "ground_glass"}
    # The same nodules as the LUNA16-style annotations.csv written beside them.
    luna = read_luna16_reference(REPO_ROOT / "sample_dicom" / "annotations.csv")
    key = sorted((n.series_uid, n.center_lps_mm, n.diameter_mm) for n in ref.nodules)
    assert key == sorted((n.series_uid, n.center_lps_mm, n.diameter_mm) for n in luna.nodules)


def test_synthetic_reference_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no ground_truth\.json"):
        read_synthetic_reference(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        read_synthetic_reference(tmp_path / "absent")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ground_truth.json").write_text(json.dumps({"series_uid": "1.1"}))
    with pytest.raises(AnnotationError, match="KeyError"):
        read_synthetic_reference(tmp_path)
    (tmp_path / "a" / "ground_truth.json").write_text(json.dumps({"series_uid": "1.1", "nodules": []}))
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "ground_truth.json", tmp_path / "b" / "ground_truth.json")
    with pytest.raises(AnnotationError, match="also belongs to"):
        read_synthetic_reference(tmp_path)


def test_lidc_reference_needs_xml(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no LIDC XML"):
        read_lidc_reference(tmp_path)


@pytest.mark.realdata
def test_lidc_reference_reproduces_the_luna16_reference() -> None:
    require_shared(LIDC_DIR / "lidc-069.xml")
    lidc = read_lidc_reference(LIDC_DIR)
    luna = read_luna16_reference(LIDC_DIR / "luna16_annotations.csv", LIDC_DIR / "luna16_annotations_excluded.csv")
    (nodule,) = lidc.nodules
    (target,) = luna.nodules
    assert nodule.series_uid == target.series_uid and lidc.complete
    assert np.linalg.norm(np.subtract(nodule.center_lps_mm, target.center_lps_mm)) < 1.0
    assert nodule.diameter_mm == pytest.approx(target.diameter_mm, abs=1.0) and nodule.reader_count == 4
    assert lidc.textures == ("solid",)
    # Every LUNA16 excluded finding has an LIDC excluded finding within 1.5 mm.
    lidc_exc = np.array([e.center_lps_mm for e in lidc.excluded])
    for e in luna.excluded:
        assert np.min(np.linalg.norm(lidc_exc - np.asarray(e.center_lps_mm), axis=1)) < 1.5
    # Scoring the same marks against either reference gives the same statuses.
    uid = target.series_uid
    marks = [(uid, *target.center_lps_mm, 0.9), (uid, *luna.excluded[0].center_lps_mm, 0.8), (uid, 0.0, 0.0, -150, 0.7)]
    preds = PredictionSet.from_records(marks)
    a = evaluate_detections(preds, lidc, settings=QUICK).match
    b = evaluate_detections(preds, luna, series_uids=[uid], settings=QUICK).match
    assert [a.status(i) for i in range(3)] == [b.status(i) for i in range(3)]
