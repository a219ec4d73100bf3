"""The alignment metrics: pointing game (per nodule, random-peak baseline) and retrieval recall."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from medmm.fusion import evaluate
from medmm.fusion.evaluate import _hit_chance, _recall, pointing_game


def _tokens_on_a_line() -> torch.Tensor:
    """21 tokens at x = 0, 4, ..., 80 mm (y = z = 0)."""
    x = torch.arange(0, 84, 4, dtype=torch.float32)
    return torch.stack([x, torch.zeros_like(x), torch.zeros_like(x)], 1)


def _example(case_id: str, nodules: list[dict]) -> SimpleNamespace:
    volume = SimpleNamespace(positions_lps_mm=_tokens_on_a_line())
    return SimpleNamespace(case_id=case_id, volume=volume, nodules=nodules)


def test_pointing_game_hits_per_nodule_random_baseline_and_records(monkeypatch: pytest.MonkeyPatch) -> None:
    pos = _tokens_on_a_line()
    big = {"label": 1, "center_lps_mm": [40.0, 0.0, 0.0], "diameter_mm": 10.0, "texture": "solid", "lobe": "RUL"}
    small = {"label": 2, "center_lps_mm": [8.0, 0.0, 0.0], "diameter_mm": 4.0, "texture": "solid", "lobe": "LLL"}
    # The impression repeats nodule 1: only its first sentence (the FINDINGS one) is scored.
    ex = _example("a/case0", [big, small, big])

    def one_hot(i: int) -> torch.Tensor:
        m = torch.full((len(pos),), 1e-6)
        m[i] = 1.0
        return m

    # Sentence 1 peaks at x = 48 (8 mm from the 10 mm nodule: limit 5 + 5 = 10 mm, a hit);
    # sentence 2 at x = 28 (20 mm from the 4 mm nodule: limit 7 mm, a miss); sentence 3
    # (the repeat) at x = 80, which must not count.
    maps = [one_hot(12), one_hot(7), one_hot(20)]
    monkeypatch.setattr(evaluate, "phrase_maps", lambda model, example, **kw: maps)
    res = pointing_game(SimpleNamespace(eval=lambda: None), [ex])
    assert (res.hits_6mm.successes, res.hits_6mm.total) == (1, 1)
    assert (res.hits_all.successes, res.hits_all.total) == (1, 2)
    # Random peak: the share of tokens inside each nodule's radius + 5 mm.
    share_big = float((np.abs(pos[:, 0].numpy() - 40) <= 10).mean())  # x = 32..48: 5 of 21
    share_small = float((np.abs(pos[:, 0].numpy() - 8) <= 7).mean())  # x = 4..12: 3 of 21 (x=1..15)
    assert res.random_6mm == pytest.approx(share_big)
    assert res.random_all == pytest.approx((share_big + share_small) / 2)
    assert [r["label"] for r in res.nodules] == [1, 2]
    first, second = res.nodules
    assert first["hit"] and not second["hit"]
    assert first["case_id"] == "a/case0" and first["lobe"] == "RUL" and first["limit_mm"] == 10.0
    assert first["distance_mm"] == pytest.approx(8.0, abs=0.6)  # the refined peak may sit between tokens
    assert second["distance_mm"] == pytest.approx(20.0, abs=0.6)
    np.testing.assert_allclose(res.distances_mm, [r["distance_mm"] for r in res.nodules], atol=0.01)


def test_hit_chance_orders_ties_at_random() -> None:
    good = np.array([True, False, False, False])
    assert _hit_chance(np.array([0.9, 0.1, 0.2, 0.3]), good, 1) == 1.0
    assert _hit_chance(np.array([0.1, 0.9, 0.2, 0.3]), good, 1) == 0.0
    assert _hit_chance(np.array([0.1, 0.9, 0.2, 0.3]), good, 2) == 0.0
    assert _hit_chance(np.array([0.1, 0.9, 0.2, 0.3]), good, 4) == 1.0
    # All four tied: the own report is first with probability 1/4, in the top 2 with 1/2.
    tied = np.zeros(4)
    assert _hit_chance(tied, good, 1) == pytest.approx(0.25)
    assert _hit_chance(tied, good, 2) == pytest.approx(0.5)


def test_recall_perfect_constant_and_identical_reports() -> None:
    n = 12
    reports = [f"report {i}" for i in range(n)]
    perfect = _recall(np.eye(n), reports, n_candidates=10, draws=3, seed=0)
    assert perfect.recall_at_1 == 1.0 and perfect.recall_at_5 == 1.0
    assert perfect.chance_at_1 == pytest.approx(0.1) and perfect.chance_at_5 == pytest.approx(0.5)
    # A model that scores every pair the same is exactly at chance (ties never favour the own report).
    flat = _recall(np.zeros((n, n)), reports, n_candidates=10, draws=3, seed=0)
    assert flat.recall_at_1 == pytest.approx(0.1) and flat.recall_at_5 == pytest.approx(0.5)
    # An anti-model (own report scored lowest) is at 0.
    anti = _recall(1 - np.eye(n), reports, n_candidates=10, draws=3, seed=0)
    assert anti.recall_at_1 == 0.0 and anti.recall_at_5 == 0.0
    # Two volumes with the same report text (whitespace aside) count as each other's match.
    same = [*reports[:-1], " report  0 "]
    sim = np.eye(n)
    sim[n - 1, 0], sim[n - 1, n - 1] = 2.0, 0.0  # the last volume prefers report 0, same text as its own
    r = _recall(sim, same, n_candidates=n, draws=1, seed=0)
    assert r.recall_at_1 == 1.0


def test_variant_row_and_ablation_table() -> None:
    from medmm.evaluate.binary import proportion
    from medmm.fusion.evaluate import PointingResult, RetrievalResult
    from medmm.fusion.training import ablation_table, variant_row

    pg = PointingResult(proportion(3, 4), proportion(4, 6), 0.01, 0.02, np.array([1.0, 2.0, 9.0]))
    rr = RetrievalResult(0.1, 0.4, 1 / 30, 5 / 30, 30, 40)
    row = variant_row(pg, rr, 0.01234)
    assert row["pointing_6mm"]["successes"] == 3 and row["pointing_all"]["total"] == 6
    assert row["median_peak_distance_mm"] == 2.0 and row["gate"] == 0.0123
    assert row["retrieval"]["recall_at_5"] == 0.4
    table = ablation_table({"v": row})
    assert "| v | 0.75 [" in table and "(3/4)" in table and "0.100 (0.033)" in table
