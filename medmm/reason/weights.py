"""Shipped reasoning weights: the region GNN, with its card.

``reasoning_v3.safetensors`` holds a :class:`~medmm.reason.gnn.MeanEnsemble` of
:class:`~medmm.reason.gnn.RegionGNN` (a single network, as ``reasoning_v1`` was, loads too);
its JSON card records the architecture (widths, members, the evidence vocabulary the study
vector was built with),
the data, the seed and the held-out figures next to the baseline and the ontology-only
ranking. Written by ``medmm train reasoning``.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from medmm.detect.weights import read_checked, save_with_card
from medmm.errors import CheckpointError
from medmm.reason.evidence import DIFFERENTIAL
from medmm.reason.features import NODE_DIM, study_dim
from medmm.reason.gnn import MeanEnsemble, RegionGNN

__all__ = ["REASONING_WEIGHTS", "default_reasoning_path", "load_reasoning", "save_reasoning"]

REASONING_WEIGHTS = "reasoning_v3"


def default_reasoning_path() -> Path:
    """Path of the shipped reasoning weights."""
    return Path(str(resources.files("medmm") / "weights" / f"{REASONING_WEIGHTS}.safetensors"))


def save_reasoning(
    gnn: RegionGNN | MeanEnsemble,
    path: str | os.PathLike[str],
    card: dict[str, Any],
    vocabulary: tuple[str, ...],
    hidden: int,
    temperature: float = 1.0,
) -> Path:
    """Write the GNN (or an ensemble of GNNs) and its model card atomically; returns the card's path.

    ``temperature`` divides (GNN logits + ontology log-odds) before the softmax (fitted on
    the validation split; it calibrates the probabilities and changes no ranking).
    """
    one = gnn.members[0] if isinstance(gnn, MeanEnsemble) else gnn
    arch = {
        "name": "RegionGNN",
        "node_dim": NODE_DIM,
        "study_dim": study_dim(len(vocabulary)),
        "hidden": hidden,
        "layers": len(one.convs),
        "input_readout": bool(one.input_readout),
        "members": len(gnn.members) if isinstance(gnn, MeanEnsemble) else None,
        "diagnoses": list(DIFFERENTIAL),
        "evidence_vocabulary": list(vocabulary),
        "temperature": float(temperature),
    }
    return save_with_card(gnn, Path(path), card, arch)


def load_reasoning(
    path: str | os.PathLike[str] | None = None,
) -> tuple[RegionGNN | MeanEnsemble, dict[str, Any]]:
    """Load reasoning weights (default: the shipped ones), sha256-checked.

    Raises:
        CheckpointError: Missing, altered, or not matching this medmm's features.
    """
    weights = Path(path) if path is not None else default_reasoning_path()
    hint = "Reinstall medmm or retrain with `medmm train reasoning`; weights are never downloaded."
    state, card = read_checked(weights, "reasoning", hint)
    arch = card["architecture"]
    if arch.get("node_dim") != NODE_DIM or list(arch.get("diagnoses", [])) != list(DIFFERENTIAL):
        raise CheckpointError(
            f"reasoning weights were trained for node width {arch.get('node_dim')} and diagnoses "
            f"{arch.get('diagnoses')}; this medmm builds width {NODE_DIM} over {list(DIFFERENTIAL)}",
            path=weights,
            hint=hint,
        )

    def one() -> RegionGNN:
        return RegionGNN(
            int(arch["node_dim"]),
            int(arch["study_dim"]),
            len(DIFFERENTIAL),
            hidden=int(arch["hidden"]),
            layers=int(arch["layers"]),
            input_readout=bool(arch.get("input_readout", False)),
        )

    members = arch.get("members")
    gnn: RegionGNN | MeanEnsemble = MeanEnsemble([one() for _ in range(int(members))]) if members else one()
    try:
        gnn.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"reasoning weights do not fit the architecture: {exc}", path=weights) from exc
    return gnn.eval(), card
