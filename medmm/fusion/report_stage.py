"""The text and fusion stages of :func:`medmm.pipeline.analyze`.

Text: the report's findings (:func:`medmm.text.mentions.extract_mentions`). Fusion: the
sentence of each nodule finding is grounded in the volume (attention peak, image
support). Then the agreement with the detected nodules (:mod:`medmm.fusion.agreement`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from medmm.anatomy.regions import LOBE_NAMES
from medmm.fusion.agreement import FaintDetection, check_agreement, nodule_like
from medmm.grid import box_around
from medmm.types import DetectedNodule, ReportAnalysis, ScoredPoint, Volume

if TYPE_CHECKING:
    from medmm.fusion.align import EncodedVolume, ReportAligner
    from medmm.reason.ontology import Ontology

__all__ = ["analyze_report", "faint_with_lobes", "lobe_at"]

NEAREST_LOBE_MM = 10.0
"""How far from a point outside the lobe map its nearest lobe voxel may lie."""

log = logging.getLogger(__name__)


def analyze_report(
    volume: Volume,
    lobes: np.ndarray,
    text: str,
    nodules: tuple[DetectedNodule, ...] | None,
    *,
    aligner: ReportAligner | Callable[[], ReportAligner] | None,
    encoded: EncodedVolume | None = None,
    ontology: Ontology | None = None,
    faint: Sequence[ScoredPoint] = (),
) -> tuple[ReportAnalysis, list[str]]:
    """Findings of a (cleaned) report, grounded when an aligner is given, and the agreement.

    Args:
        volume: The CT.
        lobes: Lobe labels on the CT grid (anatomy stage).
        text: Report text after :func:`medmm.text.clean.prepare_report_text`.
        nodules: Reported detections (None when detection did not run).
        aligner: Report aligner (or a function that loads one, called only when a nodule
            finding needs grounding), or None to skip the fusion stage.
        encoded: The volume already encoded by that aligner (else encoded here when needed).
        ontology: Vocabulary for reading the findings (default: shipped; e.g. with a site
            extension merged).
        faint: Sub-threshold detections for the stated-size prior when the volume is
            encoded here (:meth:`~medmm.fusion.align.ReportAligner.encode_volume`).

    Returns:
        The :class:`ReportAnalysis` and the stage names that ran (``text``, ``fusion``).
    """
    from medmm.reason.ontology import load_ontology
    from medmm.text.mentions import extract_mentions, split_sentences

    onto = ontology or load_ontology()
    mentions = extract_mentions(text, onto) if text.strip() else []
    like = nodule_like(mentions, onto)
    stages = ["text"]
    groundings: list = [None] * len(mentions)
    models: dict[str, str] = {}
    wanted = [i for i, ok in enumerate(like) if ok and not mentions[i].negated]
    if aligner is not None and wanted:
        if callable(aligner) and not hasattr(aligner, "ground"):
            aligner = aligner()
        sentences = [(a, b) for a, b, _ in split_sentences(text)]
        spans = []
        for m in mentions:
            spans.append(next(((a, b) for a, b in sentences if a <= m.start < b), (m.start, m.end)))
        if encoded is None:
            # no detection stage: tokens without detector channels (weaker grounding)
            encoded = aligner.encode_volume(volume, lobes, nodules if nodules is not None else (), faint)
        for i, g in zip(wanted, aligner.ground(encoded, text, [spans[i] for i in wanted], ontology=onto), strict=True):
            groundings[i] = g
        stages.append("fusion")
        models = aligner.describe()
    findings = tuple(
        dataclasses.replace(m, attention_peak_lps_mm=g.peak_lps_mm, image_support=g.support) if g is not None else m
        for m, g in zip(mentions, groundings, strict=True)
    )
    # rule 5 (second look) stays off: it did not pass its held-out test (docs/architecture.md)
    agreement = check_agreement(findings, nodules, like, text=text) if nodules is not None else None
    return ReportAnalysis(findings, agreement, models, len(text)), stages


def lobe_at(volume: Volume, lobes: np.ndarray, center_lps_mm: Sequence[float]) -> str:
    """Lobe name at a point (``""`` when no lobe voxel lies within :data:`NEAREST_LOBE_MM`).

    The point's own voxel label, else the nearest lobe voxel's (a centre just outside the
    lobe map, e.g. on the pleura).

    Args:
        volume: The CT (its grid is the label map's).
        lobes: Lobe labels on the CT grid (0 outside, 1-5 in :data:`LOBE_NAMES` order).
        center_lps_mm: The point, LPS mm.

    Shapes:
        - lobes: ``(Z, Y, X)``, the volume's shape
    """
    c = np.asarray(center_lps_mm, float)
    box = box_around(volume.geometry, c - NEAREST_LOBE_MM, c + NEAREST_LOBE_MM)
    if box is None:
        return ""
    sl, (x, y, z) = box
    sub = lobes[sl]
    dist2 = (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2
    inside = (sub > 0) & (dist2 <= NEAREST_LOBE_MM**2)
    if not inside.any():
        return ""
    code = int(sub[inside][np.argmin(dist2[inside])])
    return LOBE_NAMES[code - 1]


def faint_with_lobes(
    volume: Volume, lobes: np.ndarray, points: Sequence[ScoredPoint], min_probability: float
) -> tuple[FaintDetection, ...]:
    """The scored points from ``min_probability`` on (with a diameter), each with its lobe.

    For the agreement's opt-in second look (``check_agreement(..., faint=...)``, rule 5).

    Example:
        >>> below = [p for p in result.candidates if p.probability < result.nodule_threshold]  # doctest: +SKIP
        >>> faint = faint_with_lobes(volume, result.maps.lobes, below, 0.2)  # doctest: +SKIP
    """
    return tuple(
        FaintDetection(p.center_lps_mm, p.probability, p.diameter_mm, lobe_at(volume, lobes, p.center_lps_mm))
        for p in points
        if p.diameter_mm is not None and p.probability >= min_probability
    )
