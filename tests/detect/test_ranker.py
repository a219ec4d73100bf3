"""The learned candidate ranker: peak features, training, weights, and its use in find_candidates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medmm.detect.candidates import FEATURE_NAMES, blob_peaks, find_candidates
from medmm.detect.ranker import CandidateRanker
from medmm.detect.train_ranker import (
    CasePeaks,
    RankerConfig,
    candidate_recall,
    case_peaks,
    load_peak_cache,
    train_ranker,
)
from medmm.detect.training_data import TrainingCase, TrainingNodule
from medmm.detect.weights import load_detector_ranker, load_ranker, save_ranker
from medmm.errors import CheckpointError
from medmm.types import Volume
from tests.conftest import axial_affine

F = len(FEATURE_NAMES)


def _ball_region(centres_vox: list[tuple[int, int, int]], radii_vox: list[float]) -> tuple[Volume, np.ndarray]:
    shape = (60, 60, 60)
    k, j, i = np.indices(shape)
    hu = np.full(shape, -850.0, np.float32)
    for c, r in zip(centres_vox, radii_vox, strict=True):
        hu[(k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2 <= r * r] = 30.0
    mask = np.zeros(shape, bool)
    mask[3:-3, 3:-3, 3:-3] = True
    return Volume(hu, axial_affine((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))), mask


def test_blob_peaks_features_describe_the_ball() -> None:
    region, mask = _ball_region([(30, 30, 30)], [4.5])
    peaks = blob_peaks(region, mask)
    assert peaks.features.shape == (len(peaks), F)
    assert np.isfinite(peaks.features).all()
    best = int(np.argmax(peaks.score))
    assert np.abs(peaks.index[best] - 30).max() <= 1
    own = peaks.features[best, 2 * 7 : 3 * 7]
    assert own.sum() == 1.0 and peaks.diameter_mm[best] == pytest.approx(
        [3.0, 4.5, 6.5, 9.0, 13.0][int(np.argmax(own))]
    )
    # A sphere: three equal negative Hessian eigenvalues (ratios to |l1| near -1); dense centre.
    assert peaks.features[best, 21:23] == pytest.approx([-1.0, -1.0], abs=0.35)
    assert peaks.features[best, 23] == pytest.approx(0.03, abs=0.01)
    # The ball sits 27 mm inside the 54 mm-wide mask: depth capped to [0, 1].
    assert 0.4 < peaks.features[best, 24] <= 1.0
    # Without features (the hand-made order's path): the same peaks and scores.
    bare = blob_peaks(region, mask, with_features=False)
    assert bare.features.shape == (len(peaks), 0)
    np.testing.assert_array_equal(bare.index, peaks.index)
    np.testing.assert_array_equal(bare.score, peaks.score)


def _toy_cases(n_cases: int, seed: int) -> list[CasePeaks]:
    """Peaks whose hand-made score is noise; the 6 nodule peaks (rows 0-5) stand out in features 3-4."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(n_cases):
        n = 900
        feats = rng.normal(0, 1, (n, F)).astype(np.float32)
        centres = rng.uniform(0, 300, (n, 3)).astype(np.float32)
        label = np.zeros(n, np.int8)
        nodule = np.full(n, -1, np.int16)
        for m in range(6):
            label[m] = 1
            nodule[m] = m
            feats[m, 3:5] += 5.0
        out.append(
            CasePeaks(
                f"c{c}", feats, label, nodule, centres, np.full(n, 6.0, np.float32), rng.uniform(0, 1, n), n_nodules=6
            )
        )
    return out


def test_candidate_recall_counts_nodules_not_peaks() -> None:
    cp = _toy_cases(1, 0)[0]
    s = np.arange(len(cp.label)) * 1e-3
    s[0] = 10.0  # nodule 0 first, nodules 1-5 (rows 1-5) last
    assert candidate_recall([cp], [s], max_candidates=10) == {"nodules": 6.0, "hit": 1.0, "recall": 1 / 6}
    s[1:6] = 9.0
    assert candidate_recall([cp], [s], max_candidates=10)["recall"] == 1.0


def test_train_ranker_learns_what_the_handmade_score_misses(tmp_path: Path) -> None:
    train, val = _toy_cases(12, 1), _toy_cases(6, 2)
    cfg = RankerConfig(epochs=6, batch_size=1024, lr=5e-3, hidden=16, seed=0, max_candidates=20)
    ranker, summary = train_ranker(train, val, cfg, log_path=tmp_path / "log.jsonl")
    assert summary["val_recall_handmade_order"] < 0.2  # 20 of 900 at random: ~2 %
    assert summary["chosen"]["val_recall"] >= 0.9
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 6
    assert not ranker.training


def test_ranker_score_checks_its_input() -> None:
    ranker = CandidateRanker(F, hidden=8)
    assert ranker.score(np.zeros((4, F), np.float32)).shape == (4,)
    with pytest.raises(ValueError, match="features"):
        ranker.score(np.zeros((4, F + 1), np.float32))


def test_find_candidates_follows_the_ranker() -> None:
    # A small and a large ball; a hand-built ranker that prefers the *smallest* own scale,
    # unlike the hand-made score.
    region, mask = _ball_region([(20, 30, 30), (42, 30, 30)], [2.0, 6.0])
    ranker = CandidateRanker(F, hidden=4)
    with torch.no_grad():
        for p in ranker.parameters():
            p.zero_()
        # logit = sum over own-scale one-hot columns weighted by -diameter: small scales first.
        ranker.net[0].weight[0, 14:21] = -torch.tensor([3.0, 4.5, 6.5, 9.0, 13.0, 19.0, 27.0])
        ranker.net[0].bias[0] = 100.0
        ranker.net[2].weight[0, 0] = 1.0
        ranker.net[4].weight[0, 0] = 1.0
    idx_r, diam_r, scores_r = find_candidates(region, mask, ranker=ranker, max_candidates=2)
    assert list(np.diff(scores_r) <= 0) == [True]
    assert diam_r[0] <= diam_r[1]
    assert diam_r[0] == pytest.approx(3.0)
    assert np.abs(idx_r[0] - [20, 30, 30]).max() <= 1


def test_case_peaks_label_and_cache_round_trip(tmp_path: Path) -> None:
    region, _ = _ball_region([(30, 30, 30)], [5.0])
    # A full CT-like volume: the region itself with a lung mask given.
    mask = np.zeros(region.shape, bool)
    mask[3:-3, 3:-3, 3:-3] = True
    centre = tuple(float(v) for v in region.index_to_world(np.array([30.0, 30.0, 30.0])))
    case = TrainingCase("toy", lambda: region, (TrainingNodule(centre, 10.0),), source="synthetic")  # type: ignore[arg-type]
    cp = case_peaks(case, region, lung_mask=mask)
    assert (cp.label == 1).any() and set(np.unique(cp.nodule[cp.label == 1])) == {0}
    assert cp.features.shape[1] == F
    cp.save(tmp_path / "toy.peaks.npz")
    (back,) = load_peak_cache(tmp_path, ["toy"])
    assert back.case_id == "toy" and back.n_nodules == 1
    np.testing.assert_array_equal(back.features, cp.features)


def test_ranker_weights_round_trip_and_checks(tmp_path: Path) -> None:
    ranker = CandidateRanker(F, hidden=8)
    ranker.set_standardization(np.random.default_rng(0).normal(2.0, 3.0, (50, F)).astype(np.float32))
    path = tmp_path / "r.safetensors"
    card_path = save_ranker(ranker, path, {"name": "r"})
    loaded, card = load_ranker(path)
    x = np.random.default_rng(1).normal(0, 1, (7, F)).astype(np.float32)
    np.testing.assert_allclose(loaded.score(x), ranker.score(x), rtol=1e-6)
    assert card["architecture"]["features"] == list(FEATURE_NAMES)
    # A detector card naming this ranker loads it; a different sha256 is refused.
    det = tmp_path / "d.safetensors"
    ref = {"candidate_ranker": {"weights_file": path.name, "sha256": card["sha256"]}}
    assert load_detector_ranker(det, ref) is not None
    assert load_detector_ranker(det, {}) is None
    with pytest.raises(CheckpointError, match="not the one"):
        load_detector_ranker(det, {"candidate_ranker": {"weights_file": path.name, "sha256": "0" * 64}})
    # Features of another version are refused.
    doc = json.loads(card_path.read_text())
    doc["architecture"]["features"] = ["other"]
    card_path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="other candidate features"):
        load_ranker(path)


def test_ranker_ensemble_averages_and_loads_from_a_card(tmp_path: Path) -> None:
    from medmm.detect.ranker import RankerEnsemble

    rng = np.random.default_rng(3)
    a, b = CandidateRanker(F, hidden=8), CandidateRanker(F, hidden=8)
    with torch.no_grad():
        for p in b.parameters():
            p.add_(0.5)
    x = rng.normal(0, 1, (6, F)).astype(np.float32)
    ens = RankerEnsemble([a, b])
    np.testing.assert_allclose(ens.score(x), (a.score(x) + b.score(x)) / 2, rtol=1e-6)
    assert ens.n_features == F
    with pytest.raises(ValueError, match="at least one"):
        RankerEnsemble([])
    # combine_rankers: one ranker stays itself, several become their ensemble.
    from medmm.detect.ranker import combine_rankers

    assert combine_rankers([a]) is a
    np.testing.assert_allclose(combine_rankers([a, b]).score(x), ens.score(x), rtol=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        combine_rankers([])
    with pytest.raises(ValueError, match="different numbers"):
        RankerEnsemble([a, CandidateRanker(F - 1, hidden=4)])
    # A detector card naming a list of rankers loads their ensemble; one bad hash refuses it.
    refs = []
    for name, r in (("ra", a), ("rb", b)):
        path = tmp_path / f"{name}.safetensors"
        card = json.loads(save_ranker(r, path, {"name": name}).read_text())
        refs.append({"weights_file": path.name, "sha256": card["sha256"]})
    det = tmp_path / "d.safetensors"
    loaded = load_detector_ranker(det, {"candidate_ranker": refs})
    assert isinstance(loaded, RankerEnsemble) and len(loaded.members) == 2
    np.testing.assert_allclose(loaded.score(x), ens.score(x), rtol=1e-6)
    with pytest.raises(CheckpointError, match="not the one"):
        load_detector_ranker(det, {"candidate_ranker": [refs[0], {**refs[1], "sha256": "0" * 64}]})
    # find_candidates takes the ensemble wherever it takes one ranker.
    region, mask = _ball_region([(30, 30, 30)], [4.0])
    idx, _, scores = find_candidates(region, mask, ranker=ens, max_candidates=5)
    assert len(idx) and list(np.diff(scores) <= 0) == [True] * (len(scores) - 1)
