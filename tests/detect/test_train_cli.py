"""`medmm train ranker` then `medmm train detector --ranker`: a few steps end to end (CI smoke run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medmm.cli import main
from medmm.detect import NoduleDetector
from medmm.detect.weights import load_ranker


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    assert main(["synth", str(out), "--cases", "4", "--seed", "5", "--matrix", "128", "--slice-mm", "2.5"]) == 0
    return out


def test_train_ranker_then_detector_smoke(synth_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rk_out = tmp_path / "rank"
    assert main(["train", "ranker", str(synth_set), "--out", str(rk_out), "--epochs", "2", "--quiet"]) == 0
    ranker_path = rk_out / "candidate_ranker.safetensors"
    _, rcard = load_ranker(ranker_path)
    assert rcard["training"]["train_cases"] >= 1 and len((rk_out / "ranker_log.jsonl").read_text().splitlines()) == 2
    assert "validation candidate recall" in capsys.readouterr().out

    det_out = tmp_path / "det"
    argv = ["train", "detector", str(synth_set), "--out", str(det_out), "--ranker", str(ranker_path)]
    argv += ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8", "--width", "4", "--quiet"]
    assert main(argv) == 0
    weights = det_out / "nodule_detector.safetensors"
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["candidate_ranker"]["sha256"] == rcard["sha256"]
    assert {"scale", "bias"} <= set(card["calibration"]) and card["int8_observers"]["sha256"]
    # The acquisitions it saw (matrix 128: 2.4-3.7 mm pixels; 2.5 mm slices) go into the card.
    assert 2.0 < card["training_data"]["pixel_spacing_mm"][0] <= card["training_data"]["pixel_spacing_mm"][1] < 4.0
    assert card["training_data"]["slice_spacing_mm"] == [2.5, 2.5]
    det = NoduleDetector(weights, quantize=True)
    assert det.ranker is not None and det._int8 is not None
    # Fine-tuning: the architecture and the starting point come from the given weights.
    ft_out = tmp_path / "ft"
    argv = ["train", "detector", str(synth_set), "--out", str(ft_out), "--ranker", str(ranker_path), "--quiet"]
    argv += ["--val", str(synth_set), "--max-val-cases", "1"]
    argv += ["--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "8", "--init-weights", str(weights)]
    assert main(argv) == 0
    ft_card = json.loads((ft_out / "nodule_detector.json").read_text())
    assert ft_card["architecture"]["width"] == 4
    # --max-val-cases limits the patch validation only; Platt scaling sees every validation scan.
    assert ft_card["training_data"]["val_cases"] == 1
    assert ft_card["calibration"]["fitted_on"].startswith("4 validation cases")
    assert ft_card["training"]["initialized_from"] == {"name": "nodule_detector", "sha256": card["sha256"]}
    assert main([*argv[:-1], str(tmp_path / "missing.safetensors"), "--no-resume"]) == 2
    # Two data folders with the same case ids are refused, not silently merged.
    assert main(["train", "ranker", str(synth_set), str(synth_set), "--out", str(tmp_path / "x"), "--quiet"]) == 2
