"""Shipped detector weights: safetensors plus a JSON model card, sha256-checked on load.

The model card (``<name>.json`` beside ``<name>.safetensors``) records the architecture
(``width``), the training data and seed, the held-out metrics, the medmm version, and
the sha256 of the weights file. :func:`load_detector` refuses weights whose hash does not
match the card, and never unpickles anything (safetensors holds tensors only).

Example:
    >>> from medmm.detect.weights import load_detector
    >>> model, card = load_detector()          # the weights shipped in medmm/weights/
    >>> card["architecture"]["name"]
    'NoduleNet'
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from medmm.detect.model import NoduleNet
from medmm.errors import CheckpointError
from medmm.io.atomic import atomic_path

__all__ = ["DEFAULT_WEIGHTS", "default_weights_path", "load_detector", "save_detector", "sha256_of"]

DEFAULT_WEIGHTS = "nodule_detector_v1"


def default_weights_path() -> Path:
    """Path of the shipped detector weights (``medmm/weights/nodule_detector_v1.safetensors``)."""
    return Path(str(resources.files("medmm") / "weights" / f"{DEFAULT_WEIGHTS}.safetensors"))


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_detector(model: NoduleNet, path: str | os.PathLike[str], card: dict[str, Any]) -> Path:
    """Write ``path`` (.safetensors) and its model card (.json), atomically.

    Args:
        model: Trained network.
        path: Weights file to write.
        card: Model card fields; ``architecture``, ``sha256`` and ``weights_file`` are filled in.

    Returns:
        The card's path.
    """
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "model": "NoduleNet"})
    full = {
        **card,
        "architecture": {"name": "NoduleNet", "width": model.width},
        "weights_file": path.name,
        "sha256": sha256_of(path),
    }
    card_path = path.with_suffix(".json")
    with atomic_path(card_path) as tmp:
        tmp.write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    return card_path


def load_detector(path: str | os.PathLike[str] | None = None) -> tuple[NoduleNet, dict[str, Any]]:
    """Load detector weights and their model card, checking the sha256.

    Args:
        path: A ``.safetensors`` file with its ``.json`` card beside it (default: shipped).

    Returns:
        ``(model in eval mode, card)``.

    Raises:
        CheckpointError: Missing files, hash mismatch, or tensors that do not fit the architecture.
    """
    weights = Path(path) if path is not None else default_weights_path()
    card_path = weights.with_suffix(".json")
    if not weights.is_file() or not card_path.is_file():
        raise CheckpointError(
            "detector weights or model card missing",
            path=weights,
            hint="Reinstall medmm, or train weights with `medmm train detector` and pass --weights.",
        )
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        expected = str(card["sha256"])
        width = int(card["architecture"]["width"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"unreadable model card ({type(exc).__name__}: {exc})", path=card_path) from exc
    actual = sha256_of(weights)
    if actual != expected:
        raise CheckpointError(
            f"weights sha256 {actual[:12]}... does not match the model card's {expected[:12]}...",
            path=weights,
            hint="The file was altered or truncated; reinstall or retrain.",
        )
    model = NoduleNet(width=width)
    try:
        state = load_file(str(weights))
        model.load_state_dict(state, strict=True)
    except (RuntimeError, OSError, ValueError) as exc:
        raise CheckpointError(f"weights do not fit NoduleNet(width={width}): {exc}", path=weights) from exc
    model.eval()
    return model, card
