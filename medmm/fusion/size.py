"""A sentence's stated size as a prior on its attention map.

The trained attention finds *a* nodule well but leans on the most conspicuous one: on the
validation scans, "A round solid nodule is seen in the RLL, measuring 6 mm" put 41 % of
its attention on the token of a 13 mm nodule in the same lobe and under 1 % on the 6 mm
nodule's token, so the stated-lobe prior (:mod:`medmm.fusion.site`) cannot tell them
apart. The report states the size, which finding extraction reads exactly, and the
detector measured every nodule it reports. When a sentence states one size ``s``
(:func:`medmm.fusion.site.stated_lobe_and_size`), each token's weight is multiplied by how
well a detection there matches it:

    prior(t) = SIZE_FLOOR + max_k foot_k(t) * exp(-(ln(d_k / s))^2 / (2 * SIZE_LOG_SD^2))

where ``foot_k`` is detection k's Gaussian footprint on the tokens (the same one as in
:func:`medmm.fusion.tokens.detection_channels`) and ``d_k`` its measured diameter; the
map is then renormalized. ``SIZE_LOG_SD = 0.35`` lets a detection within about +-40 % of the
stated size count fully (report sizes are rounded, often to the long axis, and the
detector's diameter has its own error); the floor is :data:`medmm.fusion.site.SITE_FLOOR`.
Both were fixed before the held-out evaluation (docs/architecture.md). A sentence stating
no size, or several, and a scan without detections keep the map as it is.

Three refinements (each chosen on data other than the fresh held-out set it was then
scored on once; docs/architecture.md):

* **Faint detections count.** The detections matched against the stated size are the
  reported ones *and* those the CNN scores between :data:`FAINT_MIN_PROBABILITY` and the
  reporting threshold (``analyze`` keeps them for ``candidates.csv`` anyway). A sentence
  that states "a 6 mm nodule in the RLL" is evidence the image alone lacks; a faint 6 mm
  detection there is the likeliest place it means. They never enter the volume tokens
  (the model was trained on reported detections only) nor the report/image agreement.
* **Tempered attention.** When a sentence states a lobe or a size, the attention is
  raised to :data:`ATTENTION_TEMPER` (and renormalized) before the priors: the trained
  attention leans on the most conspicuous nodule (41 % against under 1 % in the example
  above), enough to overrule both priors' floors. Tempering keeps its order (the peak of a map
  without a stated fact is unchanged) but lets the stated facts decide between nodules.
  0.25 was chosen on the validation scans; 0.1 since the descriptor prior (below), chosen
  with it on validation plus the three earlier held-out sets.
* **Stated descriptors.** A detection's size match is multiplied by how well it fits what
  the sentence says of the nodule -- calcified, solid / part-solid / ground glass,
  subpleural, perifissural (:mod:`medmm.fusion.descriptors`); with a lobe but no size
  stated, the descriptors alone weigh the detections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from medmm.fusion.descriptors import Descriptor, descriptor_match
from medmm.fusion.site import SITE_FLOOR, site_weighted
from medmm.fusion.tokens import MIN_FOOTPRINT_MM, VolumeTokens
from medmm.types import ScoredPoint

__all__ = [
    "ATTENTION_TEMPER",
    "CLAIMED_WEIGHT",
    "FAINT_MIN_PROBABILITY",
    "SIZE_FLOOR",
    "SIZE_LOG_SD",
    "faint_detections",
    "size_prior",
    "size_weighted",
    "stated_weighted",
]

SIZE_FLOOR = SITE_FLOOR
"""Weight kept by tokens with no detection of the stated size."""
SIZE_LOG_SD = 0.35
"""Spread of the size match on a log scale (0.35 ~ a factor of 1.4)."""
FAINT_MIN_PROBABILITY = 0.2
"""Lowest detector probability a detection needs to count for the size prior."""
ATTENTION_TEMPER = 0.1
"""Power the attention is raised to before a stated lobe or size reweights it."""
CLAIMED_WEIGHT = 0.1
"""Share of its size match a detection keeps in a sentence when another finding of the
report claims it (:mod:`medmm.fusion.claims`)."""


def faint_detections(points: Sequence[ScoredPoint], threshold: float) -> tuple[ScoredPoint, ...]:
    """The scored points from :data:`FAINT_MIN_PROBABILITY` up to the reporting ``threshold``.

    Args:
        points: Every detection of a scan (``AnalysisResult.candidates``).
        threshold: The reporting threshold (``AnalysisResult.nodule_threshold``).

    Example:
        >>> from medmm.types import ScoredPoint
        >>> pts = [ScoredPoint((0.0, 0.0, 0.0), p, 6.0) for p in (0.9, 0.3, 0.1)]
        >>> [p.probability for p in faint_detections(pts, 0.5)]
        [0.3]
    """
    return tuple(p for p in points if p.diameter_mm is not None and FAINT_MIN_PROBABILITY <= p.probability < threshold)


def size_prior(
    positions_lps_mm: np.ndarray,
    detections: Sequence[Mapping[str, Any]],
    size_mm: float | None,
    descriptors: frozenset[Descriptor] = frozenset(),
    claimed: frozenset[int] = frozenset(),
) -> np.ndarray | None:
    """Per-token prior of the stated size and descriptors (module docstring), or None.

    Each detection's size match is multiplied by its descriptor match
    (:func:`medmm.fusion.descriptors.descriptor_match`); with no size stated the size
    match is 1, and with neither stated there is no prior. A detection that another
    finding of the report claims (:func:`medmm.fusion.claims.claimed_elsewhere`) keeps
    :data:`CLAIMED_WEIGHT` of its match.

    Args:
        positions_lps_mm: Token centres.
        detections: Detections (``center_lps_mm``, ``diameter_mm``, and the attributes
            :func:`~medmm.fusion.descriptors.descriptor_match` reads).
        size_mm: The stated size, or None.
        descriptors: The stated descriptors (:func:`medmm.fusion.descriptors.stated_descriptors`).
        claimed: Indices of ``detections`` that other findings claim
            (:func:`medmm.fusion.claims.claimed_elsewhere`).

    Shapes:
        positions_lps_mm: (N, 3) -> (N,)
    """
    if not detections or ((size_mm is None or size_mm <= 0) and not descriptors):
        return None
    pos = np.asarray(positions_lps_mm, np.float64).reshape(-1, 3)
    centers = np.array([d["center_lps_mm"] for d in detections], np.float64).reshape(-1, 3)
    diam = np.maximum(np.array([d["diameter_mm"] for d in detections], np.float64), 1e-3)
    width = np.maximum(diam / 2, MIN_FOOTPRINT_MM)
    foot = np.exp(-((pos[:, None, :] - centers[None]) ** 2).sum(-1) / (2 * width[None] ** 2))  # (N, M)
    match = np.ones_like(diam)
    if size_mm is not None and size_mm > 0:
        match = np.exp(-0.5 * (np.log(diam / size_mm) / SIZE_LOG_SD) ** 2)
    if descriptors:
        match = match * np.array([descriptor_match(d, descriptors) for d in detections])
    if claimed:
        match[sorted(k for k in claimed if 0 <= k < len(match))] *= CLAIMED_WEIGHT
    return SIZE_FLOOR + (foot * match[None]).max(1)


def size_weighted(
    weights: torch.Tensor,
    positions_lps_mm: torch.Tensor,
    detections: Sequence[Mapping[str, Any]],
    size_mm: float | None,
    descriptors: frozenset[Descriptor] = frozenset(),
    claimed: frozenset[int] = frozenset(),
) -> torch.Tensor:
    """Attention reweighted by the stated size and descriptors (see the module docstring).

    Args:
        weights: Attention over tokens (any leading dimensions, e.g. heads).
        positions_lps_mm: Token centres.
        detections: Detections behind the tokens' detector channels (and faint ones).
        size_mm: The stated size, or None.
        descriptors: The stated descriptors; with neither, ``weights`` come back unchanged.
        claimed: Indices of ``detections`` that other findings claim.

    Shapes:
        weights: (..., N); positions_lps_mm: (N, 3) -> (..., N)
    """
    if size_mm is None and not descriptors:
        return weights
    prior = size_prior(positions_lps_mm.detach().cpu().numpy(), detections, size_mm, descriptors, claimed)
    if prior is None:
        return weights
    w = weights * torch.from_numpy(prior).to(weights.dtype)
    return w / w.sum(-1, keepdim=True).clamp_min(1e-12)


def stated_weighted(
    weights: torch.Tensor,
    tokens: VolumeTokens,
    detections: Sequence[Mapping[str, Any]],
    lobe: str | None,
    size_mm: float | None,
    descriptors: frozenset[Descriptor] = frozenset(),
    claimed: frozenset[int] = frozenset(),
) -> torch.Tensor:
    """Attention after the priors a sentence states: its lobe, then its size and descriptors.

    When a lobe or size is stated, the attention is first tempered (:data:`ATTENTION_TEMPER`).

    Args:
        weights: Attention over the tokens (any leading dimensions).
        tokens: The volume tokens (lobe shares and positions).
        detections: Detections to match the stated size against: the reported ones and
            the faint ones (:data:`FAINT_MIN_PROBABILITY`).
        lobe: The stated lobe, or None.
        size_mm: The stated size, or None
            (both from :func:`medmm.fusion.site.stated_lobe_and_size`).
        descriptors: The stated descriptors (:func:`medmm.fusion.descriptors.stated_descriptors`);
            they only refine a lobe or size prior, never act alone.
        claimed: Indices of ``detections`` that the report's other findings claim
            (:func:`medmm.fusion.claims.claimed_elsewhere`).

    Shapes:
        weights: (..., N) -> (..., N)
    """
    if lobe is None and size_mm is None:
        return weights
    w = weights.clamp_min(0.0) ** ATTENTION_TEMPER
    w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
    w = site_weighted(w, tokens.lobes, lobe)
    return size_weighted(w, tokens.positions_lps_mm, detections, size_mm, descriptors, claimed)
