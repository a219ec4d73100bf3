"""The CNN's parts: patches, augmentation geometry, model shapes, weights files, training loop."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medmm.detect.augment import AugmentConfig, augment_batch, center_crop
from medmm.detect.model import PATCH_SIZE, CentreGlobalPool, NoduleNet, inference_copy
from medmm.detect.patches import PaddedRegion, normalize_hu
from medmm.detect.train import TrainConfig, evaluate_patches, selected_epoch, train_detector
from medmm.detect.training_data import PatchSet
from medmm.detect.weights import attach_int8_observers, load_detector, load_ranker, save_detector
from medmm.errors import CheckpointError


def _ball_patches(offsets: np.ndarray, radius: float = 4.0, size: int = 40) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float32) - size // 2
    k, j, i = torch.meshgrid(r, r, r, indexing="ij")
    balls = []
    for o in offsets:
        inside = (k - o[0]) ** 2 + (j - o[1]) ** 2 + (i - o[2]) ** 2 < radius**2
        balls.append(torch.where(inside, 100.0, -900.0))
    return torch.stack(balls)


def _centroid(x: torch.Tensor) -> np.ndarray:
    n = x.shape[-1]
    r = torch.arange(n, dtype=torch.float32) - n // 2
    k, j, i = torch.meshgrid(r, r, r, indexing="ij")
    w = (x + 900).clamp(min=0)
    w = w / w.sum()
    return np.array([float((w * a).sum()) for a in (k, j, i)])


def test_padded_region_puts_the_index_at_the_patch_centre() -> None:
    arr = np.zeros((20, 30, 25), np.float32)
    arr[3, 27, 1] = 500.0
    patches = PaddedRegion(arr, 16).patches(np.array([[3, 27, 1]]), 16)
    assert patches.shape == (1, 16, 16, 16)
    assert patches[0, 8, 8, 8] == 500
    assert patches.dtype == np.int16


def test_normalize_hu_range() -> None:
    out = normalize_hu(torch.tensor([-3000.0, -1000.0, -300.0, 400.0, 3000.0]))
    assert out.tolist() == pytest.approx([-1.0, -1.0, 0.0, 1.0, 1.0])


def test_center_crop_keeps_the_centre() -> None:
    p = _ball_patches(np.array([[0.0, 0.0, 0.0]]))
    assert _centroid(center_crop(p, PATCH_SIZE)[0]) == pytest.approx([0, 0, 0], abs=1e-4)


def test_augmentation_moves_targets_with_the_image() -> None:
    offsets = np.array([[3.0, -2.0, 1.5], [0.0, 0.0, 0.0], [-1.0, 4.0, -3.0]])
    patches = _ball_patches(offsets)
    cfg = AugmentConfig(hu_offset=0.0, hu_gain=0.0, max_noise_hu=0.0)
    gen = torch.Generator().manual_seed(3)
    out, new_off, new_d = augment_batch(
        patches,
        torch.tensor(offsets, dtype=torch.float32),
        torch.full((3,), 8.0),
        torch.ones(3),
        out_size=PATCH_SIZE,
        config=cfg,
        gen=gen,
    )
    assert out.shape == (3, 1, PATCH_SIZE, PATCH_SIZE, PATCH_SIZE)
    for b in range(3):
        # The ball's centroid in the augmented patch is where the transformed offset says.
        assert _centroid(out[b, 0]) == pytest.approx(new_off[b].numpy(), abs=0.15)
        # Its size changed by the drawn scale, as the diameter target did.
        vol_vox = float((out[b, 0] > -400).sum())
        d_measured = (6 * vol_vox / np.pi) ** (1 / 3)
        assert d_measured == pytest.approx(float(new_d[b]) * 7.8 / 8.0, rel=0.08)


def test_model_output_shapes() -> None:
    model = NoduleNet(width=4).eval()
    out = model(torch.zeros(2, 1, PATCH_SIZE, PATCH_SIZE, PATCH_SIZE))
    assert out.logit.shape == (2,)
    assert out.offset_mm.shape == (2, 3)
    assert out.texture_logits.shape == (2, 3)
    assert out.features.shape == (2, model.feature_dim)


def test_centre_pool_keeps_where_a_feature_lies() -> None:
    pool = CentreGlobalPool(grid=4)
    at_centre, at_corner = torch.zeros(2, 3, 4, 4, 4), torch.zeros(2, 3, 4, 4, 4)
    at_centre[:, :, 2, 1, 2] = 8.0
    at_corner[:, :, 0, 3, 0] = 8.0
    a, b = pool(at_centre), pool(at_corner)
    assert a.shape == (2, 6)
    assert torch.equal(a[:, :3], b[:, :3])  # global average: the same
    assert torch.allclose(a[:, 3:], torch.ones(2, 3)) and torch.equal(b[:, 3:], torch.zeros(2, 3))
    with pytest.raises(ValueError, match="even"):
        CentreGlobalPool(grid=3)


def test_centre_pooled_net_round_trips_and_quantizes(tmp_path: Path) -> None:
    from medmm.detect.quantize import quantize_int8

    torch.manual_seed(0)
    model = NoduleNet(width=4, centre_pool=True).eval()
    path = tmp_path / "c.safetensors"
    save_detector(model, path, {"name": "t"})
    loaded, card = load_detector(path)
    assert card["architecture"] == {"name": "NoduleNet", "width": 4, "centre_pool": True}
    assert loaded.centre_pool
    x = torch.rand(8, 1, PATCH_SIZE, PATCH_SIZE, PATCH_SIZE) * 2 - 1
    with torch.no_grad():
        ref = loaded(x).logit
        assert torch.equal(model(x).logit, ref)
        int8 = quantize_int8(loaded, x)(x).logit
    assert float((int8 - ref).abs().max()) < 0.05 + 0.05 * float(ref.abs().max())


def test_training_builds_the_centre_pooled_net(tmp_path: Path) -> None:
    train, val = _toy_patch_set(24, 0), _toy_patch_set(8, 1)
    cfg = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=8, width=4, seed=0, centre_pool=True)
    model, logs = train_detector(train, val, tmp_path / "run", cfg)
    assert model.centre_pool and len(logs) == 1
    assert model.trunk[0].in_features == 2 * 8 * 4  # global + centre halves


def test_training_starts_from_given_weights(tmp_path: Path) -> None:
    train, val = _toy_patch_set(24, 0), _toy_patch_set(8, 1)
    torch.manual_seed(7)
    start = NoduleNet(width=4).state_dict()
    # A vanishing learning rate leaves the starting weights in place; a random start differs from them.
    cfg = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=8, width=4, seed=0, lr=1e-12, weight_decay=0.0)
    tuned, _ = train_detector(train, val, tmp_path / "a", cfg, init_state=start)
    fresh, _ = train_detector(train, val, tmp_path / "b", cfg)
    w = "trunk.0.weight"
    assert torch.allclose(tuned.state_dict()[w], start[w], atol=1e-6)
    assert not torch.allclose(fresh.state_dict()[w], start[w], atol=1e-3)
    with pytest.raises(ValueError, match="does not fit"):
        train_detector(train, val, tmp_path / "c", TrainConfig(epochs=1, steps_per_epoch=1, width=8), init_state=start)


def test_select_last_keeps_the_final_epoch(tmp_path: Path) -> None:
    train, val = _toy_patch_set(24, 0), _toy_patch_set(8, 1)
    cfg = TrainConfig(epochs=2, steps_per_epoch=2, batch_size=8, width=4, seed=0, select="last")
    model, logs = train_detector(train, val, tmp_path / "run", cfg)
    last = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model"]
    assert len(logs) == 2 and all(torch.equal(v, last[k]) for k, v in model.state_dict().items())
    assert selected_epoch(logs, "last") is logs[-1] and selected_epoch([], "auc") is None
    by_auc = selected_epoch(logs, "auc")
    assert by_auc is not None and by_auc.val_auc == max(e.val_auc for e in logs if e.val_auc is not None)
    # Rerunning on the finished checkpoint exports the same weights without further steps.
    again, logs2 = train_detector(train, val, tmp_path / "run", cfg)
    assert len(logs2) == 2 and all(torch.equal(v, last[k]) for k, v in again.state_dict().items())
    with pytest.raises(ValueError, match="select"):
        TrainConfig(select="best")


def test_shipped_fine_tunes_name_what_they_were_fine_tuned_from() -> None:
    weights = Path(__file__).resolve().parents[2] / "medmm" / "weights"
    versions = ("v3", "v4", "v5", "v6", "v7", "v8")
    cards = {v: load_detector(weights / f"nodule_detector_{v}.safetensors")[1] for v in versions}
    for parent, child in itertools.pairwise(versions):
        p, c = cards[parent], cards[child]
        assert c["training"]["initialized_from"] == {"name": f"nodule_detector_{parent}", "sha256": p["sha256"]}
        assert c["architecture"] == p["architecture"] and c["selection"].startswith("last epoch")
        if child != "v7":  # same ranker, so the same candidates
            assert c["candidate_ranker"] == p["candidate_ranker"]
    # v7 was trained on the candidates of ranker v2, which ships beside it.
    ranker_v2 = load_ranker(weights / "candidate_ranker_v2.safetensors")[1]
    assert cards["v7"]["candidate_ranker"] == {
        "weights_file": "candidate_ranker_v2.safetensors",
        "sha256": ranker_v2["sha256"],
    }
    assert cards["v6"]["candidate_ranker"]["weights_file"] == "candidate_ranker_v1.safetensors"
    # v5 saw the coarse series v4 did not (its card's range reaches 128-matrix pixels).
    assert (
        cards["v4"]["training_data"]["pixel_spacing_mm"][1] < 2.1 < cards["v5"]["training_data"]["pixel_spacing_mm"][1]
    )
    # v6 was fine-tuned on scans with vessel-attached nodules (medmm synth --juxtavascular-rate).
    assert any("--juxtavascular-rate" in c for c in cards["v6"]["training"]["commands"])
    # v7 was fine-tuned with a perifissural-rich set (medmm synth --patterns perifissural_lymph_node=...).
    assert any("perifissural_lymph_node=0.5" in c for c in cards["v7"]["training"]["commands"])
    # v8 added the scans of v7's fresh test set (seed 9595) once they had been scored.
    assert "fresh9595" in cards["v8"]["training_data"]["sources"]


def test_weights_round_trip_and_tamper_check(tmp_path: Path) -> None:
    model = NoduleNet(width=4)
    path = tmp_path / "w.safetensors"
    card_path = save_detector(model, path, {"name": "t"})
    loaded, card = load_detector(path)
    assert card["architecture"] == {"name": "NoduleNet", "width": 4}
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    doc = json.loads(card_path.read_text())
    doc["sha256"] = "0" * 64
    card_path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="does not match"):
        load_detector(path)
    with pytest.raises(CheckpointError, match="missing"):
        load_detector(tmp_path / "absent.safetensors")


def _toy_patch_set(n: int, seed: int) -> PatchSet:
    """Balls (nodules) vs rods (vessels), 40^3 int16 HU."""
    rng = np.random.default_rng(seed)
    r = np.arange(40) - 20
    k, j, i = np.meshgrid(r, r, r, indexing="ij")
    patches, labels, offs, diams = [], [], [], []
    for m in range(n):
        noise = rng.normal(0, 20, (40, 40, 40))
        if m % 2:
            o = rng.uniform(-2, 2, 3)
            d = rng.uniform(5, 12)
            inside = (k - o[0]) ** 2 + (j - o[1]) ** 2 + (i - o[2]) ** 2 < (d / 2) ** 2
            labels.append(1.0)
            offs.append(o)
            diams.append(d)
        else:
            axis = rng.integers(3)
            dd = [(j - 0) ** 2 + (i - 0) ** 2, (k - 0) ** 2 + (i - 0) ** 2, (k - 0) ** 2 + (j - 0) ** 2][axis]
            inside = dd < rng.uniform(2, 5) ** 2
            labels.append(0.0)
            offs.append(np.zeros(3))
            diams.append(0.0)
        patches.append(np.where(inside, 40.0, -850.0) + noise)
    nn = len(labels)
    return PatchSet(
        np.asarray(patches).astype(np.int16),
        np.asarray(labels, np.float32),
        np.asarray(offs, np.float32),
        np.asarray(diams, np.float32),
        np.where(np.asarray(labels) > 0, 0, -1).astype(np.int8),
        np.full(nn, -1, np.int8),
        np.asarray(labels, np.int8),
        np.zeros(nn, np.int32),
    )


def test_training_learns_balls_from_rods_and_resumes(tmp_path: Path) -> None:
    train, val = _toy_patch_set(96, 0), _toy_patch_set(40, 1)
    cfg = TrainConfig(epochs=3, steps_per_epoch=12, batch_size=16, width=4, lr=3e-3, seed=0)
    before = evaluate_patches(NoduleNet(width=4), val)
    _, logs = train_detector(train, val, tmp_path / "run", cfg)
    assert [e.epoch for e in logs] == [1, 2, 3]
    assert logs[-1].val_auc is not None and logs[-1].val_auc > 0.9
    assert min(e.val_loss for e in logs) < before["loss"]
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["epoch"] == 1
    # Resume with more epochs: starts from the checkpoint (epoch 4), not from scratch.
    cfg2 = TrainConfig(epochs=4, steps_per_epoch=12, batch_size=16, width=4, lr=3e-3, seed=0)
    _, logs2 = train_detector(train, val, tmp_path / "run", cfg2)
    assert [e.epoch for e in logs2] == [1, 2, 3, 4]


def test_shipped_int8_observers_match_calibrating_on_the_same_patches(tmp_path: Path) -> None:
    from medmm.detect.detector import NoduleDetector
    from medmm.detect.quantize import quantize_int8

    torch.manual_seed(0)
    model = NoduleNet(width=4).eval()
    path = tmp_path / "w.safetensors"
    save_detector(model, path, {"name": "t"})
    calib = torch.rand(16, 1, PATCH_SIZE, PATCH_SIZE, PATCH_SIZE) * 2 - 1
    obs_path = attach_int8_observers(path, calib, "16 random patches")
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["int8_observers"]["weights_file"] == obs_path.name
    load_detector(path)  # the card edit keeps the weights' sha256 valid
    det = NoduleDetector(path, quantize=True)
    assert det._int8 is not None
    x = torch.rand(4, 1, PATCH_SIZE, PATCH_SIZE, PATCH_SIZE) * 2 - 1
    with torch.no_grad():
        expected = quantize_int8(model, calib)(x).logit
        assert torch.equal(det._int8[0](x).logit, expected)
    with pytest.raises(ValueError, match="exactly one"):
        quantize_int8(model)
    obs_path.write_bytes(obs_path.read_bytes()[:-8])
    with pytest.raises(CheckpointError, match="INT8 observer"):
        NoduleDetector(path, quantize=True)


def test_positive_sampling_gives_every_nodule_the_same_share() -> None:
    from medmm.detect.train import nodule_groups, positive_weights

    # Case 0: a big nodule with 30 candidate patches and a small one with 3; case 1: one
    # nodule whose diameter equals case 0's small one (another nodule: other case).
    n = 30 + 3 + 4 + 5
    label = np.r_[np.ones(37), np.zeros(5)].astype(np.float32)
    diam = np.r_[np.full(30, 19.1), np.full(3, 4.5), np.full(4, 4.5), np.zeros(5)].astype(np.float32)
    case = np.r_[np.zeros(33), np.ones(4), np.zeros(5)].astype(np.int32)
    z = np.zeros(n, np.int8)
    ps = PatchSet(np.zeros((n, 2, 2, 2), np.int16), label, np.zeros((n, 3), np.float32), diam, z, z, z, case)
    pos = np.flatnonzero(label > 0.5)
    groups = nodule_groups(ps, pos)
    assert len(np.unique(groups)) == 3
    w = positive_weights(ps, pos, "nodule")
    assert w.sum() == pytest.approx(1.0)
    shares = np.bincount(groups, weights=w)
    assert np.allclose(shares, 1 / 3)
    w_patch = positive_weights(ps, pos, "patch")
    assert w_patch[:30].sum() == pytest.approx(30 / 37)
    with pytest.raises(ValueError, match="positive_sampling"):
        TrainConfig(positive_sampling="lesion")


def test_training_with_nodule_sampling_also_learns(tmp_path: Path) -> None:
    train, val = _toy_patch_set(96, 0), _toy_patch_set(40, 1)
    cfg = TrainConfig(epochs=3, steps_per_epoch=12, batch_size=16, width=4, seed=0, positive_sampling="nodule")
    _, logs = train_detector(train, val, tmp_path / "run", cfg)
    assert logs[-1].val_auc is not None and logs[-1].val_auc > 0.9


@pytest.mark.parametrize("centre_pool", [False, True])
def test_inference_copy_folds_batch_norm_and_keeps_the_outputs(centre_pool: bool) -> None:
    torch.manual_seed(0)
    net = NoduleNet(width=4, centre_pool=centre_pool)
    with torch.no_grad():  # non-trivial running statistics, as after training
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.randn(6, 1, PATCH_SIZE, PATCH_SIZE, PATCH_SIZE)
    fast = inference_copy(net)
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in fast.modules())
    assert any(isinstance(m, torch.nn.BatchNorm3d) for m in net.modules())  # the original is untouched
    with torch.no_grad():
        want = net(x)
        got = fast(x.contiguous(memory_format=torch.channels_last_3d))
    for name in ("logit", "offset_mm", "log_diameter", "texture_logits", "calcified_logit"):
        torch.testing.assert_close(getattr(got, name), getattr(want, name), atol=1e-4, rtol=1e-4)
