"""Pointing game and distance to the nodule centre."""

from __future__ import annotations

import numpy as np
import pytest

from medmm.errors import InputError
from medmm.evaluate import localize, summarize_localization
from medmm.types import ReferenceNodule, Volume
from tests.conftest import axial_affine


def _blob(centre_lps_mm: tuple[float, float, float], sigma_mm: float = 4.0) -> Volume:
    aff = axial_affine((2.0, 1.0, 1.0), (-40.0, -40.0, -30.0))
    k, j, i = np.meshgrid(np.arange(30), np.arange(80), np.arange(80), indexing="ij")
    world = Volume(np.zeros((30, 80, 80), np.float32), aff).index_to_world(np.stack([k, j, i], -1))
    d2 = ((world - np.asarray(centre_lps_mm)) ** 2).sum(-1)
    return Volume(np.exp(-d2 / (2 * sigma_mm**2)).astype(np.float32), aff)


NODULE = ReferenceNodule("1.1", (0.0, 0.0, 0.0), 10.0)


def test_peak_on_the_nodule_is_a_hit_at_zero_distance() -> None:
    r = localize(_blob((0.0, 0.0, 0.0)), [NODULE])
    assert r.hit and r.nearest_nodule == 0
    assert r.peak_distance_mm == pytest.approx(0.0, abs=1e-9)
    assert r.centroid_distance_mm == pytest.approx(0.0, abs=0.05)


def test_peak_beside_the_nodule_is_a_miss_unless_tolerated() -> None:
    vol = _blob((8.0, 0.0, 0.0))
    r = localize(vol, [NODULE])
    assert not r.hit and r.peak_distance_mm == pytest.approx(8.0)
    assert localize(vol, [NODULE], tolerance_mm=3.5).hit
    far = ReferenceNodule("1.1", (8.0, 0.0, 2.0), 5.0)
    r2 = localize(vol, [NODULE, far])
    assert r2.hit and r2.nearest_nodule == 1 and r2.peak_distance_mm == pytest.approx(2.0)


def test_mask_decides_the_hit_when_given() -> None:
    vol = _blob((8.0, 0.0, 0.0))
    peak_idx = np.rint(vol.world_to_index([8.0, 0.0, 0.0])).astype(int)
    mask = np.zeros(vol.shape, bool)
    mask[tuple(peak_idx)] = True
    assert localize(vol, [NODULE], mask=mask).hit
    with pytest.raises(InputError, match="mask shape"):
        localize(vol, [NODULE], mask=np.zeros((2, 2, 2), bool))


def test_flat_map_points_at_its_middle_and_negative_map_has_no_centroid() -> None:
    vol = _blob((0.0, 0.0, 0.0)).with_array(np.full((30, 80, 80), -1.0, np.float32))
    r = localize(vol, [NODULE])
    middle = vol.index_to_world([14.5, 39.5, 39.5])
    assert r.peak_lps_mm == pytest.approx(tuple(middle))
    assert r.centroid_lps_mm is None and r.centroid_distance_mm is None


def test_bad_maps_and_summary() -> None:
    vol = _blob((0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="at least one"):
        localize(vol, [])
    arr = vol.array.copy()
    arr[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        localize(vol.with_array(arr), [NODULE])
    results = [localize(vol, [NODULE]), localize(_blob((8.0, 0.0, 0.0)), [NODULE])]
    s = summarize_localization(results)
    assert s.pointing_game.successes == 1 and s.pointing_game.total == 2 and s.n_maps == 2
    assert s.peak_distance_mm_median == pytest.approx(4.0) and s.to_dict()["pointing_game"]["value"] == 0.5
