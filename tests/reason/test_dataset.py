"""Reasoning case files: the scored detections kept beside the inputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from medmm.reason.dataset import _candidate_rows
from medmm.types import ScoredPoint, Volume


def test_candidate_rows_carry_the_lobe_at_each_centre() -> None:
    # (k, j, i) -> (x, y, z) with x flipped and 2.5 mm slices, as a real series may be.
    affine = np.array([[0.0, 0.0, -0.7, 120.0], [0.0, 0.8, 0.0, -90.0], [2.5, 0.0, 0.0, -300.0], [0, 0, 0, 1.0]])
    vol = Volume(np.zeros((20, 40, 60), np.float32), affine)
    lobes = np.zeros(vol.shape, np.uint8)
    lobes[:, :, :30] = 1  # RUL on low i (high x)
    lobes[:, :, 30:] = 4  # LUL
    at = lambda k, j, i: tuple(float(v) for v in vol.geometry.index_to_world((k, j, i)))  # noqa: E731
    result = SimpleNamespace(
        maps=SimpleNamespace(lobes=lobes),
        candidates=(
            ScoredPoint(at(10, 20, 5), 0.91, 7.0),
            ScoredPoint(at(10, 20, 50), 0.12, None),
            ScoredPoint((500.0, 0.0, 0.0), 0.05, 4.0),  # outside the volume
        ),
    )
    rows = _candidate_rows(vol, result)
    assert [r["lobe"] for r in rows] == ["RUL", "LUL", ""]
    assert rows[0] == {"probability": 0.91, "diameter_mm": 7.0, "lobe": "RUL"}
    assert rows[1]["diameter_mm"] is None
