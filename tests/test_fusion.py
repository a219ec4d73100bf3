"""Fusion building blocks: the encoder grid's geometry, gated attention, peaks, counterfactuals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medmm.fusion.attention import GatedCrossAttention
from medmm.fusion.examples import counterfactual_report
from medmm.fusion.grid import TOKEN_STRIDE, lung_grid
from medmm.fusion.model import AlignmentModel
from medmm.fusion.peaks import map_peaks
from medmm.fusion.tokens import N_DETECTION_CHANNELS, SIZE_SCALE_MM, VolumeTokens, detection_channels
from medmm.fusion.train_volume import heatmap_targets
from medmm.fusion.volume_encoder import VolumeEncoder, encoder_input
from medmm.types import Volume


def _oblique_volume() -> tuple[Volume, np.ndarray]:
    """A CT with anisotropic voxels and a flipped, offset axis, with a box of 'lung'."""
    affine = np.array(
        [[0.0, 0.0, -0.7, 120.0], [0.0, 0.8, 0.0, -90.0], [2.5, 0.0, 0.0, -300.0], [0, 0, 0, 1.0]]
    )  # (k, j, i) -> (x, y, z): x flipped
    arr = np.full((40, 160, 180), -1000.0, np.float32)
    lobes = np.zeros(arr.shape, np.uint8)
    lobes[5:35, 20:140, 30:90] = 1
    lobes[5:35, 20:140, 90:150] = 4
    return Volume(arr, affine), lobes


def test_grid_positions_are_world_positions() -> None:
    vol, lobes = _oblique_volume()
    # a bright 6 mm ball at a known world point
    target = vol.index_to_world(np.array([20.0, 80.0, 60.0]))
    k, j, i = np.indices(vol.shape)
    world = np.stack([k, j, i], -1).reshape(-1, 3) @ vol.affine[:3, :3].T + vol.affine[:3, 3]
    ball = (np.linalg.norm(world - target, axis=1) <= 6.0).reshape(vol.shape)
    vol = Volume(np.where(ball, 50.0, vol.array).astype(np.float32), vol.affine)
    grid = lung_grid(vol, lobes)
    assert all(n % TOKEN_STRIDE == 0 for n in grid.hu.shape)
    sizes = np.linalg.norm(grid.affine[:3, :3], axis=0)
    assert np.allclose(sizes, 2.0, atol=0.2)
    hot = np.argwhere(grid.hu > 0)
    centre = grid.voxel_to_world(hot.mean(0))
    assert np.linalg.norm(centre - target) < 1.5
    # the token holding the ball's centre is the one whose position is nearest to it
    pos = grid.token_positions_lps_mm()
    t = np.unravel_index(np.argmin(np.linalg.norm(pos - target, axis=1)), grid.token_shape)
    block = grid.hu[tuple(slice(a * TOKEN_STRIDE, (a + 1) * TOKEN_STRIDE) for a in t)]
    assert (block > 0).any()
    shares = grid.lobe_fractions()
    assert shares.shape == (len(pos), 5) and shares[:, 0].max() == 1.0 and shares[:, 3].max() == 1.0
    assert shares[:, 1].max() == 0.0


def test_grid_rejects_mismatched_labels() -> None:
    vol, lobes = _oblique_volume()
    with pytest.raises(ValueError, match="not on the volume grid"):
        lung_grid(vol, lobes[:-1])
    with pytest.raises(ValueError, match="empty"):
        lung_grid(vol, np.zeros_like(lobes))


def test_attention_shapes_mask_and_closed_gate() -> None:
    torch.manual_seed(0)
    att = GatedCrossAttention(dim=32, heads=4)
    text = torch.randn(2, 5, 32)
    vol = torch.randn(2, 7, 32)
    vmask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    tmask = torch.ones(2, 5, dtype=torch.bool)
    fused, attn = att(text, tmask, vol, vmask)
    assert fused.shape == (2, 5, 32) and attn.shape == (2, 4, 5, 7)
    assert torch.allclose(attn.sum(-1), torch.ones(2, 4, 5))
    assert float(attn[1, :, :, 4:].detach().abs().max()) == 0.0  # padded tokens get no attention
    assert torch.allclose(fused, text)  # tanh(0) = 0: the untrained gate lets nothing in
    with torch.no_grad():
        att.gate.fill_(1.0)
    fused2, _ = att(text, tmask, vol, vmask)
    assert not torch.allclose(fused2, text) and att.gate_value > 0.7


def test_model_and_encoder_shapes() -> None:
    enc = VolumeEncoder()
    feats = enc(torch.zeros(1, 4, 16, 24, 32))
    assert feats.shape == (1, enc.out_features, 4, 6, 8)
    heat, logd = enc.heads(feats)
    assert heat.shape == logd.shape == (1, 4, 6, 8)
    model = AlignmentModel(dim=64, embed_dim=32, heads=4)
    b, t, n = 2, 6, 10
    fused, attn, vol = model(
        torch.randn(b, t, 384),
        torch.ones(b, t, dtype=torch.bool),
        torch.randn(b, n, 54),
        torch.rand(b, n, 5),
        torch.randn(b, n, 3) * 50,
        torch.ones(b, n, dtype=torch.bool),
        torch.zeros(b, 3),
    )
    assert fused.shape == (b, t, 64) and attn.shape == (b, 4, t, n) and vol.shape == (b, n, 64)
    emb = model.volume_embedding(vol, torch.ones(b, n, dtype=torch.bool))
    assert emb.shape == (b, 32) and torch.allclose(emb.norm(dim=-1), torch.ones(b))
    assert model.region_logits(vol, torch.rand(b, n, 5), torch.ones(b, n, dtype=torch.bool)).shape == (b, 5)


def test_encoder_input_blob_channels_peak_on_a_matching_ball() -> None:
    hu = np.full((40, 40, 40), -850.0, np.float32)
    k, j, i = np.indices(hu.shape)
    hu[(k - 20) ** 2 + (j - 20) ** 2 + (i - 20) ** 2 <= 3**2] = 40.0  # a 12 mm ball at 2 mm voxels
    x = encoder_input(hu).numpy()
    assert x.shape == (4, 40, 40, 40)
    assert x[0].min() == pytest.approx((-850 + 300) / 700) and x[0].max() <= 1.0
    centre = x[1:, 20, 20, 20]
    assert (centre > 0).all() and int(np.argmax(centre)) == 1  # the 12 mm scale answers most
    assert np.unravel_index(np.argmax(x[2]), hu.shape) == (20, 20, 20)


def test_peaks_refine_between_tokens_and_separate() -> None:
    pos = torch.tensor([[0.0, 0, 0], [8.0, 0, 0], [16.0, 0, 0], [100.0, 0, 0]])
    w = torch.tensor([0.3, 0.3, 0.0, 0.4])
    peaks = map_peaks(w, pos, k=2)
    assert np.allclose(peaks[0][0], [100, 0, 0]) and peaks[0][1] == pytest.approx(0.4)
    assert np.allclose(peaks[1][0], [4.0, 0, 0])  # the centroid of two equal neighbours
    assert peaks[1][1] == pytest.approx(0.6)


def test_heatmap_targets_mark_tokens_on_the_nodule() -> None:
    pos = np.array([[0.0, 0, 0], [8, 0, 0], [40, 0, 0]])
    heat, logd = heatmap_targets(pos, [{"center_lps_mm": [1.0, 0, 0], "diameter_mm": 16.0}])
    assert heat.tolist() == [1.0, 1.0, 0.0]
    assert logd[0] == pytest.approx(np.log(16.0))
    small, _ = heatmap_targets(pos, [{"center_lps_mm": [3.0, 0, 0], "diameter_mm": 4.0}])
    assert small.tolist() == [1.0, 0.0, 0.0]  # a small nodule still marks the token holding its centre


def test_counterfactual_moves_the_lobe_and_keeps_other_text() -> None:
    text = "Lungs: There is a 9 mm nodule in the right upper lobe. No effusion.\n1. 9 mm RUL nodule."
    spans = [(7, 54), (68, 87)]
    new, new_spans = counterfactual_report(text, spans, {"RUL"}, np.random.default_rng(0))
    assert len(new_spans) == 2
    assert "No effusion." in new and "right upper lobe" not in new and "RUL" not in new
    for a, b in new_spans:
        assert "nodule" in new[a:b]
    assert counterfactual_report(text, spans, {"RUL", "RML", "RLL", "LUL", "LLL"}, np.random.default_rng(0)) == (
        text,
        [],
    )


def test_grounding_mass_equals_indexing_the_attention() -> None:
    from medmm.fusion.train_alignment import grounding_mass

    torch.manual_seed(1)
    attn = torch.rand(4, 9, 30).softmax(-1)
    rows = [torch.tensor([0, 1, 2]), torch.tensor([5, 6])]
    targets = [torch.tensor([3, 4]), torch.tensor([10, 11, 12, 29])]
    fast = grounding_mass(attn, rows, targets)
    slow = torch.stack([attn[:, r][:, :, t].sum(-1).mean() for r, t in zip(rows, targets, strict=True)])
    assert torch.allclose(fast, slow, atol=1e-6)


def test_detection_channels_peak_on_the_detection_and_carry_its_size() -> None:
    # tokens on an 8 mm line through two detections: a confident 12 mm one and a weak 4 mm one
    pos = np.stack([np.arange(-80.0, 81.0, 8.0), np.zeros(21), np.zeros(21)], 1)
    centers = np.array([[-40.0, 0.0, 0.0], [41.0, 3.0, 0.0]])
    ch = detection_channels(pos, centers, np.array([12.0, 4.0]), np.array([0.9, 0.6]))
    assert ch.shape == (21, N_DETECTION_CHANNELS)
    assert int(ch[:, 0].argmax()) == 5  # token at x = -40
    assert ch[5, 0] == pytest.approx(0.9) and ch[5, 1] == pytest.approx(12.0 / SIZE_SCALE_MM)
    near_weak = int(np.abs(pos[:, 0] - 40).argmin())
    assert 0.3 < ch[near_weak, 0] < 0.6 and ch[near_weak, 1] < 4.0 / SIZE_SCALE_MM
    assert ch[10, 0] < 1e-3  # the lung centre, far from both
    assert (ch[:, 0] <= 0.9 + 1e-6).all()
    # no detections: all zero, same shape
    assert not detection_channels(pos, np.zeros((0, 3)), np.zeros(0), np.zeros(0)).any()


def test_alignment_cache_without_detections_is_refused(tmp_path) -> None:
    import json

    from medmm.errors import InputError
    from medmm.fusion.training_data import load_case

    meta = {"case_id": "train/case0000", "report": "", "nodules": [], "phrases": [], "disagreement": "none"}
    path = tmp_path / "train__case0000.npz"
    z = np.zeros((4, 4, 4), np.uint8)

    def write() -> None:
        blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        np.savez(path, hu=z.astype(np.int16), lobes=z, nodules=z, affine=np.eye(4), meta=blob)

    write()
    with pytest.raises(InputError, match="no detections"):
        load_case(path)
    meta["detections"] = [{"center_lps_mm": [0.0, 0.0, 0.0], "diameter_mm": 8.0, "probability": 0.9}]
    write()
    assert load_case(path).detections[0]["diameter_mm"] == 8.0


def test_stated_lobe_reads_one_lobe_and_its_prior_moves_the_peak() -> None:
    from medmm.fusion.site import SITE_FLOOR, site_weighted, stated_lobe_and_size

    def stated_lobe(sentence: str) -> str | None:
        return stated_lobe_and_size(sentence)[0]

    assert stated_lobe("A well-circumscribed nodular opacity is seen in the right lower lobe.") == "RLL"
    assert stated_lobe("16 mm left upper lobe solid nodule, consistent with metastatic disease.") == "LUL"
    assert stated_lobe("Multiple bilateral pulmonary nodules are present.") is None
    assert stated_lobe("No nodule in the right upper lobe.") is None  # negated: no site claim
    # two tokens: a strong one in the LUL, a weaker one in the RLL
    lobes = torch.tensor([[0, 0, 0, 1.0, 0], [0, 0, 1.0, 0, 0], [0, 0, 0.5, 0, 0]])
    w = torch.tensor([0.6, 0.3, 0.1])
    assert torch.equal(site_weighted(w, lobes, None), w)
    out = site_weighted(w, lobes, "RLL")
    assert int(out.argmax()) == 1 and float(out.sum()) == pytest.approx(1.0)
    assert float(out[0] / out[1]) == pytest.approx(0.6 * SITE_FLOOR / (0.3 * (1 + SITE_FLOOR)))
    # per-head maps keep their leading dimension
    assert site_weighted(torch.stack([w, w]), lobes, "LUL").shape == (2, 3)


def _two_rll_one_lul_tokens(pos: torch.Tensor) -> VolumeTokens:
    """Three tokens at ``pos``: two in the RLL, one in the LUL."""
    return VolumeTokens(
        features=torch.zeros(3, 4),
        detection=torch.zeros(3, 2),
        lobes=torch.tensor([[0, 0, 1.0, 0, 0], [0, 0, 1.0, 0, 0], [0, 0, 0, 1.0, 0]]),
        positions_lps_mm=pos,
        index=torch.arange(3),
        token_shape=(1, 1, 3),
    )


def test_stated_size_prior_prefers_the_detection_of_that_size() -> None:
    from medmm.fusion.site import stated_lobe_and_size
    from medmm.fusion.size import SIZE_FLOOR, size_prior, size_weighted, stated_weighted

    assert stated_lobe_and_size("RML: well-circumscribed nodular opacity measuring 8 x 7 mm.") == ("RML", 8.0)
    assert stated_lobe_and_size("A 1.3 cm nodule in the right lower lobe.") == ("RLL", 13.0)
    assert stated_lobe_and_size("Multiple bilateral pulmonary nodules.") == (None, None)
    pos = torch.tensor([[0.0, 0, 0], [60.0, 0, 0], [200.0, 0, 0]])
    dets = [
        {"center_lps_mm": [0.0, 0, 0], "diameter_mm": 13.0, "probability": 0.9},
        {"center_lps_mm": [60.0, 0, 0], "diameter_mm": 6.2, "probability": 0.7},
    ]
    prior = size_prior(pos.numpy(), dets, 6.0)
    assert prior is not None and prior[1] > 0.9 + SIZE_FLOOR and prior[2] == pytest.approx(SIZE_FLOOR)
    assert prior[0] < 0.2  # 13 mm is not "6 mm"
    w = torch.tensor([0.7, 0.2, 0.1])  # attention leans on the big nodule
    out = size_weighted(w, pos, dets, 6.0)
    assert int(out.argmax()) == 1 and float(out.sum()) == pytest.approx(1.0)
    # no stated size, or no detections: unchanged
    assert torch.equal(size_weighted(w, pos, dets, None), w) and torch.equal(size_weighted(w, pos, [], 6.0), w)
    # both priors, read from the sentence; per-head maps keep their leading dimension
    tokens = _two_rll_one_lul_tokens(pos)
    lobe, size = stated_lobe_and_size("A 6 mm nodule in the RLL.")
    heads = stated_weighted(torch.stack([w, w]), tokens, dets, lobe, size)
    assert (lobe, size) == ("RLL", 6.0) and heads.shape == (2, 3) and int(heads[0].argmax()) == 1
    assert float(heads[0, 2]) < 0.01  # the LUL token loses to the lobe prior


def test_stated_facts_overrule_a_peaked_attention_only_after_tempering() -> None:
    from medmm.fusion.size import ATTENTION_TEMPER, size_weighted, stated_weighted

    pos = torch.tensor([[0.0, 0, 0], [60.0, 0, 0], [200.0, 0, 0]])
    dets = [
        {"center_lps_mm": [0.0, 0, 0], "diameter_mm": 13.0, "probability": 0.9},
        {"center_lps_mm": [60.0, 0, 0], "diameter_mm": 6.0, "probability": 0.3},  # a faint one
    ]
    tokens = _two_rll_one_lul_tokens(pos)
    w = torch.tensor([0.969, 0.001, 0.03])  # the trained attention's lean on the conspicuous nodule
    assert int(size_weighted(w, pos, dets, 6.0).argmax()) == 0  # the raw map overrules the prior
    out = stated_weighted(w, tokens, dets, "RLL", 6.0)
    assert int(out.argmax()) == 1 and float(out.sum()) == pytest.approx(1.0)
    assert 0.0 < ATTENTION_TEMPER < 1.0
    # nothing stated: the map is returned as it is (no tempering)
    assert torch.equal(stated_weighted(w, tokens, dets, None, None), w)
    # tempering keeps the order of a map with only a lobe stated and one lobe token
    assert int(stated_weighted(w, tokens, [], "LUL", None).argmax()) == 2


def test_faint_detections_are_kept_for_the_size_prior_only() -> None:
    from medmm.fusion.align import EncodedVolume, _detection_rows
    from medmm.fusion.size import FAINT_MIN_PROBABILITY, faint_detections
    from medmm.types import ScoredPoint

    pts = [
        ScoredPoint((0.0, 0.0, 0.0), 0.9, 8.0),
        ScoredPoint((10.0, 0.0, 0.0), 0.3, 6.0),
        ScoredPoint((20.0, 0.0, 0.0), FAINT_MIN_PROBABILITY - 0.01, 6.0),
        ScoredPoint((30.0, 0.0, 0.0), 0.3),  # no diameter (an older result): unusable
    ]
    faint = faint_detections(pts, 0.5)
    assert [p.center_lps_mm[0] for p in faint] == [10.0]
    rows = _detection_rows(faint)
    assert rows == ({"center_lps_mm": [10.0, 0.0, 0.0], "diameter_mm": 6.0, "probability": 0.3},)
    enc = EncodedVolume(grid=None, tokens=None, detections=_detection_rows(pts[:1]), faint=rows)  # type: ignore[arg-type]
    assert [r["probability"] for r in enc.prior_detections] == [0.9, 0.3]


def test_detection_rows_runs_the_detector_it_is_given() -> None:
    """A candidate detector (evaluate_pointing --detector-weights) replaces the shipped one."""
    from medmm.fusion.align import detection_rows
    from medmm.fusion.size import FAINT_MIN_PROBABILITY
    from medmm.types import ScoredPoint

    class Stub:
        def __init__(self) -> None:
            self.floors: list[float] = []

        def detect(self, volume: object, lung_mask: object, *, min_probability: float) -> list[ScoredPoint]:
            self.floors.append(min_probability)
            return [ScoredPoint((1.0, 2.0, 3.0), 0.9, 7.0), ScoredPoint((4.0, 5.0, 6.0), 0.3, 5.0)]

    stub = Stub()
    reported, faint = detection_rows(None, None, stub)  # type: ignore[arg-type]
    assert stub.floors == [FAINT_MIN_PROBABILITY]
    assert [r["center_lps_mm"] for r in reported] == [[1.0, 2.0, 3.0]]
    assert [r["probability"] for r in faint] == [0.3]
