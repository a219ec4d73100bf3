"""Reasoning case files: the scored detections kept beside the inputs; resumable builds."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from medmm.reason import dataset
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


def test_an_interrupted_case_build_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_case(args: tuple[int, int, int, float]) -> dict:
        seed, i, matrix, _ = args
        if i == 3 and not calls.count(-1):
            calls.append(-1)
            raise KeyboardInterrupt  # the user stops the build during case 3
        calls.append(i)
        return {"case_id": f"case{i:04d}", "seed": seed, "matrix": matrix}

    monkeypatch.setattr(dataset, "collect_case", fake_case)
    out = tmp_path / "cases.jsonl"
    with pytest.raises(KeyboardInterrupt):
        dataset.collect_cases(out, dataset_seed=7, n_cases=6, matrix=64)
    assert not out.exists() and calls == [0, 1, 2, -1]
    # A half-written line (the process killed mid-write) is dropped, not read.
    with open(str(out) + ".partial", "a") as fh:
        fh.write('{"case_id": "case00')
    seen: list[tuple[int, int]] = []
    dataset.collect_cases(out, dataset_seed=7, n_cases=6, matrix=64, progress=lambda d, t: seen.append((d, t)))
    assert calls == [0, 1, 2, -1, 3, 4, 5] and seen == [(4, 6), (5, 6), (6, 6)]
    assert [c["case_id"] for c in dataset.read_cases(out)] == [f"case{i:04d}" for i in range(6)]
    assert not (tmp_path / "cases.jsonl.partial").exists()
    # Other settings never mix with a stale partial file: the build starts over.
    (tmp_path / "b.jsonl.partial").write_text(json.dumps({"settings": {"dataset_seed": 8}}) + "\n" + out.read_text())
    calls.clear()
    dataset.collect_cases(tmp_path / "b.jsonl", dataset_seed=7, n_cases=2, matrix=64)
    assert calls == [0, 1]
