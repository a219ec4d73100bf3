"""Closed-form eigenvalues of symmetric 3x3 matrices against LAPACK."""

from __future__ import annotations

import numpy as np
import pytest

from medmm.eigen3 import eigvalsh3, symmetric3


def _entries(m: np.ndarray) -> tuple[np.ndarray, ...]:
    return m[:, 0, 0], m[:, 1, 1], m[:, 2, 2], m[:, 0, 1], m[:, 0, 2], m[:, 1, 2]


def test_random_matrices_match_lapack() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(scale=rng.uniform(1e-3, 1e3, size=(20000, 1, 1)), size=(20000, 3, 3))
    m = (a + a.transpose(0, 2, 1)) / 2
    got = eigvalsh3(*_entries(m))
    want = np.linalg.eigvalsh(m)
    scale = np.abs(want).max(axis=1, keepdims=True)
    assert got.shape == (20000, 3)
    assert np.all(np.abs(got - want) <= 1e-9 * scale)
    assert np.all(np.diff(got, axis=1) >= -1e-12 * scale)  # ascending


@pytest.mark.parametrize(
    "diag",
    [(0.0, 0.0, 0.0), (4.0, 4.0, 4.0), (-2.0, -2.0, 5.0), (-7.0, 1.0, 1.0), (-3.0, 0.0, 0.0)],
    ids=["zero", "sphere", "two-equal-low", "plate", "rank-one"],
)
def test_repeated_eigenvalues_in_any_orientation(diag: tuple[float, float, float]) -> None:
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(50, 3, 3)))
    m = q @ np.diag(diag) @ q.transpose(0, 2, 1)
    m = (m + m.transpose(0, 2, 1)) / 2
    got = eigvalsh3(*_entries(m))
    np.testing.assert_allclose(got, np.broadcast_to(sorted(diag), got.shape), atol=1e-6)


def test_float32_input_is_computed_in_float64_and_empty_input_works() -> None:
    m = np.array([[[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, -1.0]]], np.float32)
    got = eigvalsh3(*_entries(m))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got[0], [-1.0, 1.0, 3.0], atol=1e-12)
    assert eigvalsh3(*(np.zeros(0, np.float32) for _ in range(6))).shape == (0, 3)


def test_symmetric3_rebuilds_the_matrix() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(7, 3, 3))
    m = (a + a.transpose(0, 2, 1)) / 2
    np.testing.assert_array_equal(symmetric3(*_entries(m)), m)
