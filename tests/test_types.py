from __future__ import annotations

import numpy as np
import pytest

from medmm.types import SeriesInfo, Volume, VolumeGeometry


def _random_affine(rng: np.random.Generator, flip: bool) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # random oblique rotation (maybe improper)
    if flip:
        q[:, 0] *= -1
    aff = np.eye(4)
    aff[:3, :3] = q * rng.uniform(0.3, 5.0, size=3)
    aff[:3, 3] = rng.uniform(-400, 400, size=3)
    return aff


@pytest.mark.parametrize("flip", [False, True])
def test_world_index_round_trip_is_exact_for_oblique_and_flipped_affines(flip: bool) -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        geom = VolumeGeometry((40, 300, 200), _random_affine(rng, flip))
        idx = rng.uniform(-10, 300, size=(1000, 3))
        world = geom.index_to_world(idx)
        back = geom.world_to_index(world)
        # 1e-6 mm in world space, the acceptance bound
        assert np.max(np.abs(geom.index_to_world(back) - world)) < 1e-6
        assert np.max(np.abs(back - idx)) < 1e-6
        lps = rng.uniform(-500, 500, size=(1000, 3))
        assert np.max(np.abs(geom.index_to_world(geom.world_to_index(lps)) - lps)) < 1e-6


def test_derived_geometry_matches_the_affine() -> None:
    direction = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)  # columns: z->I, y->P, x->L
    vol = Volume.from_spacing(np.zeros((3, 4, 5), np.float32), (2.5, 0.7, 0.6), (10, 20, 30), direction)
    assert vol.spacing_mm == pytest.approx((2.5, 0.7, 0.6))
    assert vol.origin_lps_mm == (10.0, 20.0, 30.0)
    np.testing.assert_allclose(vol.direction, direction)
    assert vol.orientation_code == "IPL"
    assert vol.is_orthogonal
    np.testing.assert_allclose(vol.index_to_world([1, 1, 1]), [10 + 0.6, 20 + 0.7, 30 - 2.5])
    assert vol.geometry == VolumeGeometry((3, 4, 5), vol.affine)


def test_sheared_affine_is_not_orthogonal() -> None:
    aff = np.eye(4)
    aff[:3, :3] = [[0, 0, 1], [0.3, 1, 0], [1, 0, 0]]
    assert not VolumeGeometry((2, 2, 2), aff).is_orthogonal


def test_affine_is_read_only_and_validated() -> None:
    vol = Volume.from_spacing(np.zeros((2, 2, 2), np.float32), (1, 1, 1))
    with pytest.raises(ValueError, match="read-only"):
        vol.affine[0, 0] = 5
    with pytest.raises(ValueError, match="singular"):
        Volume(np.zeros((2, 2, 2)), np.diag([1, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"shape \(4, 4\)"):
        Volume(np.zeros((2, 2, 2)), np.eye(3))
    with pytest.raises(ValueError, match="3D"):
        Volume(np.zeros((2, 2)), np.eye(4))
    with pytest.raises(ValueError, match="differs"):
        vol.with_array(np.zeros((3, 2, 2)))


def test_repr_shows_what_a_person_needs() -> None:
    info = SeriesInfo(series_uid="1.2.3")
    vol = Volume.from_spacing(np.zeros((2, 3, 4), np.float32), (2.5, 0.7, 0.7), info=info)
    text = repr(vol)
    for part in ("shape=(2, 3, 4)", "spacing_mm=(2.5, 0.7, 0.7)", "orientation=SPL", "float32", "MiB", "1.2.3"):
        assert part in text


def test_contains_index() -> None:
    geom = VolumeGeometry((2, 3, 4), np.eye(4))
    assert geom.contains_index([[0, 0, 0], [1.4, 2.4, 3.4]]).all()
    assert not geom.contains_index([1.6, 0, 0])
