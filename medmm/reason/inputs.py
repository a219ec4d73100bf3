"""What the reasoning stage reads from the earlier stages of one study.

:class:`ReasoningInputs` is the hand-over between the image/text stages and the
differential: the detected nodules as :class:`NoduleObservation` (lobe, size, attenuation,
calcification, pleura/fissure contact, Brock risk), the report's findings, and per region
of the anatomical graph its measurements and the volume encoder's pooled image features.

The pipeline builds it (:func:`observe_nodules`, :func:`region_image_features`); the
training set builds the same thing from the synthetic generator's truth plus detector-like
noise (:mod:`medmm.reason.simulate`). Both can be stored as JSON + arrays
(:meth:`ReasoningInputs.to_dict` / :meth:`ReasoningInputs.from_dict`).

Example:
    >>> obs = NoduleObservation("RUL", 14.0, 0.9, (0.8, 0.15, 0.05), 0.02, False, False)
    >>> ReasoningInputs((obs,), ()).nodules[0].texture
    'solid'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from medmm.anatomy.graph import ANATOMY_FEATURES, NODE_NAMES
from medmm.anatomy.regions import LOBE_NAMES
from medmm.types import DetectedNodule, ReportFinding

__all__ = [
    "IMAGE_FEATURES",
    "NoduleObservation",
    "ReasoningInputs",
    "observe_nodules",
    "region_image_features",
]

TEXTURE_NAMES: tuple[str, ...] = ("solid", "part_solid", "ground_glass")
#: Width of the per-region image embedding (volume-encoder token features + block statistics).
IMAGE_FEATURES = 52


@dataclass(frozen=True)
class NoduleObservation:
    """One nodule as the reasoning stage sees it.

    Attributes:
        lobe: ``"RUL"`` ... ``"LLL"``, or ``""`` when outside the lobes.
        diameter_mm: Diameter.
        probability: Detector probability (1.0 for a nodule given by a person).
        texture_probabilities: ``(solid, part_solid, ground_glass)``.
        calcification_probability: Probability that it is calcified.
        juxtapleural: Touches the pleura.
        perifissural: Touches a fissure.
        brock_probability: Brock (PanCan) malignancy probability, if computed (0..1).
    """

    lobe: str
    diameter_mm: float
    probability: float
    texture_probabilities: tuple[float, float, float]
    calcification_probability: float
    juxtapleural: bool
    perifissural: bool
    brock_probability: float | None = None

    @property
    def texture(self) -> str:
        """Most probable attenuation class."""
        return TEXTURE_NAMES[int(np.argmax(self.texture_probabilities))]

    @property
    def calcified(self) -> bool:
        """Calcification probability at least 0.5."""
        return self.calcification_probability >= 0.5


@dataclass(frozen=True, eq=False)
class ReasoningInputs:
    """Everything the differential is computed from, for one study.

    Attributes:
        nodules: Observed nodules.
        findings: The report's findings (empty without a report).
        anatomy_features: Per region, :data:`~medmm.anatomy.graph.ANATOMY_FEATURES`.
        image_features: Per region, the volume encoder's pooled features (zeros where the
            region holds no lung tokens); ``None`` when no encoder ran.
        has_report: Whether a report was read (an empty report still counts).

    Shapes:
        anatomy_features: ``(9, 3)``; image_features: ``(9, IMAGE_FEATURES)``.
    """

    nodules: tuple[NoduleObservation, ...]
    findings: tuple[ReportFinding, ...]
    anatomy_features: np.ndarray = field(
        default_factory=lambda: np.zeros((len(NODE_NAMES), len(ANATOMY_FEATURES)), np.float32)
    )
    image_features: np.ndarray | None = None
    has_report: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (arrays as nested lists)."""
        return {
            "nodules": [asdict(n) for n in self.nodules],
            "findings": [asdict(f) for f in self.findings],
            "anatomy_features": np.asarray(self.anatomy_features, float).round(6).tolist(),
            "image_features": None
            if self.image_features is None
            else np.asarray(self.image_features, float).round(5).tolist(),
            "has_report": self.has_report,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReasoningInputs:
        """Inverse of :meth:`to_dict`."""
        nodules = tuple(
            NoduleObservation(**{**n, "texture_probabilities": tuple(n["texture_probabilities"])})
            for n in data["nodules"]
        )
        findings = tuple(
            ReportFinding(
                **{
                    **f,
                    "attention_peak_lps_mm": None
                    if f.get("attention_peak_lps_mm") is None
                    else tuple(f["attention_peak_lps_mm"]),
                }
            )
            for f in data["findings"]
        )
        image = data.get("image_features")
        return cls(
            nodules,
            findings,
            np.asarray(data["anatomy_features"], np.float32),
            None if image is None else np.asarray(image, np.float32),
            bool(data.get("has_report", bool(findings))),
        )


def observe_nodules(
    nodules: Sequence[DetectedNodule],
    juxtapleural: Sequence[bool],
    perifissural: Sequence[bool],
    brock: Sequence[float | None] | None = None,
) -> tuple[NoduleObservation, ...]:
    """Detection-stage nodules as observations.

    Args:
        nodules: Detected nodules.
        juxtapleural: Per nodule, touches the pleura (from :func:`medmm.anatomy.assign`).
        perifissural: Per nodule, touches a fissure.
        brock: Per nodule, Brock probability (0..1) or None.
    """
    risks = list(brock) if brock is not None else [None] * len(nodules)
    return tuple(
        NoduleObservation(
            lobe=n.lobe,
            diameter_mm=float(n.diameter_mm),
            probability=float(n.probability),
            texture_probabilities=tuple(float(n.texture_probabilities.get(t, 0.0)) for t in TEXTURE_NAMES),  # type: ignore[arg-type]
            calcification_probability=float(n.calcification_probability),
            juxtapleural=bool(jp),
            perifissural=bool(pf),
            brock_probability=r,
        )
        for n, jp, pf, r in zip(nodules, juxtapleural, perifissural, risks, strict=True)
    )


def region_image_features(token_features: torch.Tensor, token_lobes: torch.Tensor) -> np.ndarray:
    """Per-region mean of the volume encoder's token features, weighted by lobe share.

    Lobes get the mean of their tokens; the other regions (mediastinum, airways, pleura)
    hold no lung tokens and stay zero.

    Args:
        token_features: Token features (:attr:`medmm.fusion.tokens.VolumeTokens.features`).
        token_lobes: Share of each token in each lobe.

    Shapes:
        - token_features: ``(N, IMAGE_FEATURES)``
        - token_lobes: ``(N, 5)``
        - Output: ``(9, IMAGE_FEATURES)``
    """
    feats = token_features.detach().float().cpu().numpy()
    share = token_lobes.detach().float().cpu().numpy()
    if feats.ndim != 2 or feats.shape[1] != IMAGE_FEATURES:
        raise ValueError(f"token features must be (N, {IMAGE_FEATURES}), got {feats.shape}")
    out = np.zeros((len(NODE_NAMES), IMAGE_FEATURES), np.float32)
    for k, lobe in enumerate(LOBE_NAMES):
        w = share[:, k]
        if w.sum() > 0:
            out[NODE_NAMES.index(lobe)] = (w[:, None] * feats).sum(0) / w.sum()
    return out
