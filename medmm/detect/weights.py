"""Shipped weights: safetensors plus a JSON model card, sha256-checked on load.

The model card (``<name>.json`` beside ``<name>.safetensors``) records the architecture,
the training data and seed, the held-out metrics, the medmm version, and the sha256 of
the weights file. :func:`load_detector` and :func:`load_ranker` refuse weights whose
hash does not match the card, and never unpickle anything (safetensors holds tensors
only).

Two kinds of model ship: the patch CNN (default ``nodule_detector_v11``: v9 retrained
with ground-glass and perifissural-rich sets, behind the mean of rankers v2 and v1 as v9;
v2-v9 stay beside it for comparison) and the candidate ranker (``candidate_ranker_v2``
for v7-v8, ``candidate_ranker_v1`` for the earlier detectors, both for v9 and v11). The
detector's card names the ranker that orders its candidates (``candidate_ranker``: file
and sha256, or a list of them for a :class:`~medmm.detect.ranker.RankerEnsemble` that
averages their logits); :func:`load_detector_ranker` loads it from beside the detector's
weights.

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

import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import load_file, save_file

from medmm.detect.candidates import FEATURE_NAMES
from medmm.detect.model import NoduleNet
from medmm.detect.ranker import CandidateRanker, Ranker, combine_rankers
from medmm.errors import CheckpointError
from medmm.io.atomic import atomic_path

__all__ = [
    "DEFAULT_WEIGHTS",
    "attach_int8_observers",
    "default_weights_path",
    "load_detector",
    "load_detector_ranker",
    "load_int8_observers",
    "load_ranker",
    "read_checked",
    "save_detector",
    "save_ranker",
    "save_with_card",
    "sha256_of",
]

DEFAULT_WEIGHTS = "nodule_detector_v11"


def default_weights_path() -> Path:
    """Path of the shipped detector weights (``medmm/weights/nodule_detector_v11.safetensors``)."""
    return Path(str(resources.files("medmm") / "weights" / f"{DEFAULT_WEIGHTS}.safetensors"))


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_with_card(module: torch.nn.Module, path: Path, card: dict[str, Any], architecture: dict[str, Any]) -> Path:
    """Write a module's tensors (safetensors) and its model card (JSON with the sha256), atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "model": str(architecture["name"])})
    full = {**card, "architecture": architecture, "weights_file": path.name, "sha256": sha256_of(path)}
    card_path = path.with_suffix(".json")
    with atomic_path(card_path) as tmp:
        tmp.write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    return card_path


def read_checked(weights: Path, what: str, hint: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and card of a weights file whose sha256 matches its card."""
    card_path = weights.with_suffix(".json")
    if not weights.is_file() or not card_path.is_file():
        raise CheckpointError(f"{what} weights or model card missing", path=weights, hint=hint)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        expected = str(card["sha256"])
        if not isinstance(card.get("architecture"), dict):
            raise KeyError("architecture")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"unreadable model card ({type(exc).__name__}: {exc})", path=card_path) from exc
    # One read: the bytes whose hash is checked are the bytes parsed (no swap in between).
    try:
        data = weights.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read weights: {exc.strerror or exc}", path=weights, hint=hint) from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise CheckpointError(
            f"weights sha256 {actual[:12]}... does not match the model card's {expected[:12]}...",
            path=weights,
            hint="The file was altered or truncated; reinstall or retrain.",
        )
    try:
        state = safetensors_load(data)
    except Exception as exc:  # safetensors raises SafetensorError (an Exception) on a malformed header
        raise CheckpointError(f"unreadable safetensors file: {exc}", path=weights) from exc
    return state, card


def save_detector(model: NoduleNet, path: str | os.PathLike[str], card: dict[str, Any]) -> Path:
    """Write ``path`` (.safetensors) and its model card (.json), atomically.

    Args:
        model: Trained network.
        path: Weights file to write.
        card: Model card fields; ``architecture``, ``sha256`` and ``weights_file`` are filled in.

    Returns:
        The card's path.
    """
    arch: dict[str, Any] = {"name": "NoduleNet", "width": model.width}
    if model.centre_pool:
        arch["centre_pool"] = True
    return save_with_card(model, Path(path), card, arch)


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
    state, card = read_checked(
        weights, "detector", "Reinstall medmm, or train weights with `medmm train detector` and pass --weights."
    )
    try:
        arch = card["architecture"]
        model = NoduleNet(width=int(arch["width"]), centre_pool=bool(arch.get("centre_pool", False)))
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"weights do not fit the card's NoduleNet: {exc}", path=weights) from exc
    model.eval()
    return model, card


def save_ranker(ranker: CandidateRanker, path: str | os.PathLike[str], card: dict[str, Any]) -> Path:
    """Write a candidate ranker and its model card (atomically); returns the card's path."""
    arch = {
        "name": "CandidateRanker",
        "hidden": ranker.hidden,
        "n_features": ranker.n_features,
        "features": list(FEATURE_NAMES),
    }
    return save_with_card(ranker, Path(path), card, arch)


def load_ranker(path: str | os.PathLike[str]) -> tuple[CandidateRanker, dict[str, Any]]:
    """Load a candidate ranker, checking its sha256 and that its features are this version's.

    Raises:
        CheckpointError: Missing files, hash mismatch, other features, or misfitting tensors.
    """
    weights = Path(path)
    state, card = read_checked(weights, "candidate ranker", "Train one with `medmm train ranker`.")
    arch = card["architecture"]
    if list(arch.get("features", [])) != list(FEATURE_NAMES):
        raise CheckpointError(
            "the ranker was trained on other candidate features than this medmm version computes",
            path=weights,
            hint="Retrain it with `medmm train ranker`.",
        )
    try:
        ranker = CandidateRanker(int(arch["n_features"]), hidden=int(arch["hidden"]))
        ranker.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"weights do not fit the card's CandidateRanker: {exc}", path=weights) from exc
    ranker.eval()
    return ranker, card


def load_detector_ranker(detector_weights: str | os.PathLike[str] | None, card: dict[str, Any]) -> Ranker | None:
    """The candidate ranker a detector's card names (None when it names none).

    ``candidate_ranker`` is one reference (``weights_file`` and ``sha256``) or a list of
    them: a :class:`~medmm.detect.ranker.RankerEnsemble` averaging their logits. Each file
    lies beside the detector's weights; its sha256 must match both its own card and the
    detector card's record.

    Raises:
        CheckpointError: A named ranker is missing or does not match.
    """
    ref = card.get("candidate_ranker")
    if not ref:
        return None
    refs = ref if isinstance(ref, list) else [ref]
    base = Path(detector_weights) if detector_weights is not None else default_weights_path()
    members = []
    for r in refs:
        path = base.parent / str(r["weights_file"])
        ranker, rcard = load_ranker(path)
        if rcard["sha256"] != r.get("sha256"):
            raise CheckpointError(
                "the candidate ranker beside the detector is not the one it was trained with",
                path=path,
                hint="Keep the detector and ranker files of one training run together.",
            )
        members.append(ranker)
    return combine_rankers(members)


def _int8_path(weights: Path) -> Path:
    return weights.with_name(weights.stem + ".int8.safetensors")


def attach_int8_observers(weights: str | os.PathLike[str], patches: torch.Tensor, note: str) -> Path:
    """Calibrate INT8 activation ranges once and ship them beside the detector weights.

    Writes ``<stem>.int8.safetensors`` (the observers' state,
    :func:`medmm.detect.quantize.calibrate_observers`) and records its file, sha256 and
    ``note`` (what it was calibrated on) under ``int8_observers`` in the model card.

    Shapes:
        - patches: ``(N, 1, 32, 32, 32)`` normalized patches
    """
    from medmm.detect.quantize import calibrate_observers

    weights = Path(weights)
    model, card = load_detector(weights)
    observers = calibrate_observers(model, patches)
    out = _int8_path(weights)
    with atomic_path(out) as tmp:
        save_file({k: v.contiguous() for k, v in observers.items()}, str(tmp), metadata={"format": "pt"})
    card["int8_observers"] = {"weights_file": out.name, "sha256": sha256_of(out), "calibrated_on": note}
    card_path = weights.with_suffix(".json")
    with atomic_path(card_path) as tmp:
        tmp.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return out


def load_int8_observers(
    detector_weights: str | os.PathLike[str] | None, card: dict[str, Any]
) -> dict[str, torch.Tensor] | None:
    """The shipped INT8 observer state of a detector (None when its card has none).

    Raises:
        CheckpointError: The file is missing or its sha256 does not match the card.
    """
    ref = card.get("int8_observers")
    if not ref:
        return None
    base = Path(detector_weights) if detector_weights is not None else default_weights_path()
    path = base.parent / str(ref["weights_file"])
    if not path.is_file() or sha256_of(path) != ref.get("sha256"):
        raise CheckpointError(
            "INT8 observer file missing or not the one the model card names",
            path=path,
            hint="Reinstall medmm or recalibrate with medmm.detect.weights.attach_int8_observers.",
        )
    return load_file(str(path))
