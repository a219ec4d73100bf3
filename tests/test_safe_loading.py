"""Weights load only from safetensors whose sha256 matches the model card; nothing is unpickled."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medmm.detect.weights import load_detector, load_ranker
from medmm.errors import CheckpointError
from medmm.fusion.weights import load_alignment
from medmm.reason.weights import load_reasoning

WEIGHTS = Path(__file__).resolve().parents[1] / "medmm" / "weights"
LOADERS: dict[str, Callable[[Path], Any]] = {
    "nodule_detector_v2": load_detector,
    "nodule_detector_v3": load_detector,  # candidate, not the default
    "nodule_detector_v4": load_detector,  # v3 fine-tuned; candidate, not the default
    "nodule_detector_v5": load_detector,  # v4 fine-tuned with coarse (128-matrix) scans
    "nodule_detector_v6": load_detector,  # v5 fine-tuned with vessel-attached nodules
    "nodule_detector_v7": load_detector,  # v6 fine-tuned with perifissural nodules, on ranker v2
    "nodule_detector_v8": load_detector,  # v7 fine-tuned with seed 9595 added
    "nodule_detector_v9": load_detector,  # v8's CNN behind the ranker v2 + v1 ensemble
    "nodule_detector_v11": load_detector,  # v9 retrained with ground glass and perifissural sets; the default
    "candidate_ranker_v1": load_ranker,
    "candidate_ranker_v2": load_ranker,
    "report_alignment_v2": load_alignment,
    "reasoning_v3": load_reasoning,
}


def _copy(stem: str, dest: Path) -> Path:
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS / f"{stem}{suffix}", dest / f"{stem}{suffix}")
    return dest / f"{stem}.safetensors"


@pytest.mark.parametrize("stem", sorted(LOADERS))
def test_shipped_weights_load_and_a_flipped_byte_is_refused(stem: str, tmp_path: Path) -> None:
    path = _copy(stem, tmp_path)
    LOADERS[stem](path)  # the untouched copy loads
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit in the tensor data
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the model card") as err:
        LOADERS[stem](path)
    assert str(path) in str(err.value)


def test_a_pickle_with_a_matching_card_is_still_not_unpickled(tmp_path: Path) -> None:
    path = _copy("reasoning_v3", tmp_path)
    canary = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (canary.write_text, ("unpickled",))

    path.write_bytes(pickle.dumps(Payload()))
    meta = json.loads((tmp_path / "reasoning_v3.json").read_text())
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()  # an attacker can edit the card too
    (tmp_path / "reasoning_v3.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unreadable safetensors"):
        load_reasoning(path)
    assert not canary.exists()
