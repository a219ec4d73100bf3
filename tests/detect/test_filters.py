"""The torch filters of the candidate search agree with their SciPy counterparts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medmm.detect import filters

SHAPES = [(17, 23, 29), (1, 9, 12), (2, 2, 40), (30, 3, 5)]


def _volume(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) * 300.0 - 500.0).astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", [0.5, 0.87, 1.88, 6.0])  # 6.0: the kernel is longer than some axes
def test_gaussian_matches_scipy_nearest(shape: tuple[int, int, int], sigma: float) -> None:
    x = _volume(shape)
    want = ndimage.gaussian_filter(x, sigma, mode="nearest")
    np.testing.assert_allclose(filters.gaussian(x, sigma), want, atol=2e-3 * np.abs(x).max() / 100)


@pytest.mark.parametrize("shape", SHAPES)
def test_laplacian_is_the_seven_point_stencil(shape: tuple[int, int, int]) -> None:
    g = _volume(shape, 1)
    got = filters.laplacian(g)
    want = np.zeros_like(g)
    if min(shape) >= 3:
        want[1:-1, 1:-1, 1:-1] = ndimage.laplace(g.astype(np.float64))[1:-1, 1:-1, 1:-1]
    np.testing.assert_allclose(got, want, atol=1e-2)


@pytest.mark.parametrize("shape", SHAPES)
def test_local_max_matches_scipy_maximum_filter(shape: tuple[int, int, int]) -> None:
    x = np.round(_volume(shape, 2) / 200.0)  # coarse values: many ties, which count as maxima
    want = x == ndimage.maximum_filter(x, size=3, mode="nearest")
    got = filters.local_max(x)
    assert got.dtype == bool and (got == want).all()
    assert 0 < got.sum() < x.size


@pytest.mark.parametrize(("shape", "zoom"), [((20, 31, 31), [2.5, 0.703, 0.703]), ((7, 9, 40), [1.0, 1.6, 0.33])])
def test_resampling_matches_scipy_zoom(shape: tuple[int, int, int], zoom: list[float]) -> None:
    x = _volume(shape, 3)
    out_shape = filters.zoomed_shape(shape, zoom)
    linear = ndimage.zoom(x, zoom, order=1, mode="nearest", grid_mode=False)
    assert linear.shape == out_shape
    np.testing.assert_allclose(filters.resample_linear(x, out_shape), linear, atol=0.05)
    m = x > -500
    nearest = ndimage.zoom(m.astype(np.uint8), zoom, order=0, mode="nearest", grid_mode=False) > 0
    got = m[np.ix_(*(filters.nearest_index(n, o) for n, o in zip(shape, out_shape, strict=True)))]
    assert (got == nearest).all()


def test_half_is_a_float16_cast() -> None:
    x = _volume((5, 6, 7), 4)
    assert (filters.half(x) == x.astype(np.float16)).all()
