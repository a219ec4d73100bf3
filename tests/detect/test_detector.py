"""The shipped detector on a generated case: detection, measurement, TTA and INT8 paths."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medmm.anatomy import segment_lungs
from medmm.detect import NoduleDetector, load_detector
from medmm.detect.weights import default_weights_path
from medmm.synth.cases import Pattern, generate_case
from medmm.synth.scanner import Kernel, ScannerSettings


@pytest.fixture(scope="module")
def case_and_mask():
    case = generate_case(2024, pattern=Pattern.MULTIPLE_METASTASES, scanner=ScannerSettings(Kernel.STANDARD, 1.5, 256))
    return case, segment_lungs(case.volume).lung_mask


def _hits(dets, nodule) -> list:
    c = np.asarray(nodule.center_lps_mm)
    return [d for d in dets if np.linalg.norm(np.asarray(d.center_lps_mm) - c) <= nodule.diameter_mm / 2]


def test_shipped_weights_and_card() -> None:
    model, card = load_detector()
    assert card["architecture"]["name"] == "NoduleNet"
    assert set(card["calibration"]) >= {"scale", "bias"}
    # The shipped detector comes with the candidate ranker it was trained with and its INT8 ranges.
    det = NoduleDetector(quantize=True)
    assert det.ranker is not None and det._int8 is not None
    assert card["sha256"] == json.loads(default_weights_path().with_suffix(".json").read_text())["sha256"]
    assert not model.training


def test_detector_finds_and_measures_solid_nodules(case_and_mask) -> None:
    case, mask = case_and_mask
    dets = NoduleDetector().detect(case.volume, mask)
    assert dets and [d.probability for d in dets] == sorted((d.probability for d in dets), reverse=True)
    big = [n for n in case.nodules if n.diameter_mm >= 8]
    assert big
    found = 0
    for n in big:
        hits = _hits(dets, n)
        if hits and hits[0].probability >= 0.5:
            found += 1
            best = max(hits, key=lambda d: d.probability)
            assert abs(best.diameter_mm - n.diameter_mm) < max(2.5, 0.25 * n.diameter_mm)
            assert best.texture.value == "solid"
            sphere = np.pi / 6 * n.diameter_mm**3
            assert 0.3 * sphere < best.volume_mm3 < 2.5 * sphere
    assert found >= len(big) - 1


def test_tta_and_int8_keep_the_ranking(case_and_mask) -> None:
    case, mask = case_and_mask
    plain = NoduleDetector().detect(case.volume, mask)
    tta = NoduleDetector(tta=True).detect(case.volume, mask)
    int8 = NoduleDetector(quantize=True).detect(case.volume, mask)
    big = max(case.nodules, key=lambda n: n.diameter_mm)
    for dets in (plain, tta, int8):
        hits = _hits(dets, big)
        assert hits and hits[0].probability >= 0.5
    # INT8 probabilities stay close to float ones for the same places.
    p_float = max(d.probability for d in _hits(plain, big))
    p_int8 = max(d.probability for d in _hits(int8, big))
    assert abs(p_float - p_int8) < 0.1


def test_an_ensemble_averages_calibrated_logits(case_and_mask, tmp_path) -> None:
    from medmm.detect.weights import save_detector
    from medmm.errors import CheckpointError

    case, mask = case_and_mask
    v2 = default_weights_path().with_name("nodule_detector_v2.safetensors")
    v3 = v2.with_name("nodule_detector_v3.safetensors")
    one, other, both = NoduleDetector(v2), NoduleDetector(v3), NoduleDetector([v2, v3])
    assert both.card["name"] == "nodule_detector_v2+nodule_detector_v3" and len(both.card["members"]) == 2
    patches = np.random.default_rng(0).integers(-1000, 300, (6, 32, 32, 32)).astype(np.int16)
    a, b, ab = one._predict(patches), other._predict(patches), both._predict(patches)
    za = np.log(a["p"] / (1 - a["p"]))
    zb = np.log(b["p"] / (1 - b["p"]))
    np.testing.assert_allclose(np.log(ab["p"] / (1 - ab["p"])), (za + zb) / 2, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ab["logd"], (a["logd"] + b["logd"]) / 2, rtol=1e-5, atol=1e-6)
    # a one-member list is that member
    np.testing.assert_allclose(NoduleDetector([v2])._predict(patches)["p"], a["p"])
    # it detects like its members do (the largest nodule, reported)
    big = max(case.nodules, key=lambda n: n.diameter_mm)
    hits = _hits(both.detect(case.volume, mask), big)
    assert hits and hits[0].probability >= 0.5
    # members trained with another candidate ranker cannot join
    model, card = load_detector(v2)
    card = {k: v for k, v in card.items() if k not in ("sha256", "candidate_ranker", "int8_observers")}
    save_detector(model, tmp_path / "own.safetensors", {**card, "candidate_ranker": {"sha256": "0" * 64}})
    with pytest.raises(CheckpointError, match="different candidate rankers"):
        NoduleDetector([v2, tmp_path / "own.safetensors"])
    with pytest.raises(ValueError, match="at least one"):
        NoduleDetector([])


def test_detector_for_loads_each_weights_tuple_once() -> None:
    from medmm.detect.detector import default_detector, detector_for

    path = (str(default_weights_path()),)
    assert detector_for(None) is default_detector()
    assert detector_for(path) is detector_for(path)
    assert detector_for(path) is not detector_for(None)  # keyed by the tuple, not by what it loads
    assert detector_for(path).card["name"] == default_detector().card["name"]
