"""A sentence's stated descriptors, matched against what the detector saw.

Lobe and size (:mod:`medmm.fusion.site`, :mod:`medmm.fusion.size`) leave one ambiguity:
two nodules of one lobe with nearly the same size. On the third held-out set
(docs/architecture.md) "There is a 13 mm well-circumscribed subpleural pulmonary nodule in
the left lower lobe" pointed at a central 14 mm nodule of that lobe, not at the 12.7 mm one
on the pleura. Reports describe more than size: calcification, attenuation (solid,
part-solid, ground glass) and contact with the pleura or a fissure, and the detector
measures each of them for every nodule it reports:

* calcification: the CNN's calcification probability;
* attenuation: its texture probabilities (solid / part-solid / ground glass);
* contact: the gap between the nodule's surface and the pleura (the lung's edge) or a
  fissure (a boundary between two lobes), measured on the 2 mm lobe grid
  (:func:`contact_gaps`); within :data:`medmm.anatomy.assign.JUXTAPLEURAL_GAP_MM` (2 mm)
  or :data:`medmm.anatomy.assign.PERIFISSURAL_GAP_MM` (3 mm) it counts fully, beyond that
  the match falls off as ``exp(-excess / CONTACT_FALLOFF_MM)``.

Each stated descriptor ``d`` gives detection ``k`` a match ``m_k(d)`` in 0..1, softened to
``DESCRIPTOR_FLOOR + (1 - DESCRIPTOR_FLOOR) * m_k(d)`` so that one wrong CNN call cannot
rule a nodule out; the descriptors' product multiplies the detection's size match in
:func:`medmm.fusion.size.size_prior`. A detection that lacks the attribute (faint
detections carry position and size only) matches :data:`UNKNOWN_MATCH`.

The vocabulary is the Fleischner glossary's (Hansell et al., Radiology 246:697, 2008) and
the wording of Lung-RADS v2022; "non-calcified" and "without calcification" state the
absence.

Example:
    >>> sorted(str(d) for d in stated_descriptors("A 6 mm subpleural calcified granuloma in the RLL."))
    ['calcified', 'juxtapleural']
    >>> sorted(str(d) for d in stated_descriptors("Non-calcified part-solid nodule."))
    ['non_calcified', 'part_solid']
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import numpy as np

from medmm.anatomy.assign import JUXTAPLEURAL_GAP_MM, PERIFISSURAL_GAP_MM
from medmm.fusion.grid import LungGrid
from medmm.grid import box_around
from medmm.types import VolumeGeometry

__all__ = [
    "CONTACT_FALLOFF_MM",
    "DESCRIPTOR_FLOOR",
    "UNKNOWN_MATCH",
    "Descriptor",
    "contact_gaps",
    "descriptor_match",
    "stated_descriptors",
]

DESCRIPTOR_FLOOR = 0.1
"""Least a stated descriptor leaves of a detection's weight when the detection contradicts it."""
UNKNOWN_MATCH = 0.5
"""Match of a detection whose attribute is unknown (a faint detection's texture)."""
CONTACT_FALLOFF_MM = 2.0
"""Scale of the fall-off of a contact match beyond the contact gap."""
_SEARCH_MM = 20.0


class Descriptor(StrEnum):
    """What a sentence can state about a nodule besides its lobe and size."""

    CALCIFIED = "calcified"
    NON_CALCIFIED = "non_calcified"
    SOLID = "solid"
    PART_SOLID = "part_solid"
    GROUND_GLASS = "ground_glass"
    SUBSOLID = "subsolid"
    JUXTAPLEURAL = "juxtapleural"
    PERIFISSURAL = "perifissural"


# (descriptor, pattern); each match is blanked out of the text before the later patterns run,
# so "non-calcified" never also reads as "calcified", nor "part-solid" as "solid".
_PATTERNS: tuple[tuple[Descriptor | None, re.Pattern[str]], ...] = tuple(
    (d, re.compile(p, re.IGNORECASE))
    for d, p in (
        (Descriptor.NON_CALCIFIED, r"\bnon-?\s?calcified\b|\b(?:no|without)\s+(?:\w+\s+)?calcifications?\b"),
        (Descriptor.CALCIFIED, r"\bcalcifi(?:ed|cations?)\b|\bpopcorn\b"),
        (Descriptor.PART_SOLID, r"\bpart[- ]?solid\b|\bsemi-?solid\b|\bmixed[- ]attenuation\b"),
        (Descriptor.SUBSOLID, r"\bsub-?solid\b"),
        (Descriptor.GROUND_GLASS, r"\bground[- ]glass\b|\bnon-?\s?solid\b|\bGG[ON]s?\b"),
        (None, r"\bsolid\s+component\b"),
        (Descriptor.SOLID, r"\bsolid\b"),
        (Descriptor.JUXTAPLEURAL, r"\b(?:sub|juxta)-?pleural\b|\bpleural[- ]based\b|\babutting\s+the\s+pleura\b"),
        (Descriptor.PERIFISSURAL, r"\b(?:peri)?-?fissural\b|\balong\s+the\s+(?:\w+\s+){0,2}fissure\b"),
    )
)


def stated_descriptors(sentence: str) -> frozenset[Descriptor]:
    """The descriptors a sentence states (module docstring).

    Args:
        sentence: One report sentence.
    """
    text = sentence
    found: set[Descriptor] = set()
    for descriptor, pattern in _PATTERNS:
        if pattern.search(text):
            if descriptor is not None:
                found.add(descriptor)
            text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    return frozenset(found)


def _contact(gap_mm: Any, limit_mm: float) -> float:
    if gap_mm is None:
        return UNKNOWN_MATCH
    return 1.0 if gap_mm <= limit_mm else math.exp(-(float(gap_mm) - limit_mm) / CONTACT_FALLOFF_MM)


def descriptor_match(detection: Mapping[str, Any], descriptors: frozenset[Descriptor]) -> float:
    """How well one detection fits the stated descriptors (1 with none stated).

    Args:
        detection: A detection row (``calcification_probability``,
            ``texture_probabilities``, ``pleura_gap_mm``, ``fissure_gap_mm`` when known).
        descriptors: From :func:`stated_descriptors`.

    Example:
        >>> row = {"calcification_probability": 0.9, "pleura_gap_mm": 0.0}
        >>> round(descriptor_match(row, frozenset({Descriptor.CALCIFIED, Descriptor.JUXTAPLEURAL})), 3)
        0.91
    """
    calc = detection.get("calcification_probability")
    tex = detection.get("texture_probabilities") or {}
    out = 1.0
    for d in descriptors:
        if d is Descriptor.CALCIFIED:
            m = UNKNOWN_MATCH if calc is None else float(calc)
        elif d is Descriptor.NON_CALCIFIED:
            m = UNKNOWN_MATCH if calc is None else 1.0 - float(calc)
        elif d is Descriptor.SUBSOLID:
            m = float(tex["part_solid"] + tex["ground_glass"]) if tex else UNKNOWN_MATCH
        elif d in (Descriptor.SOLID, Descriptor.PART_SOLID, Descriptor.GROUND_GLASS):
            m = float(tex[d.value]) if d.value in tex else UNKNOWN_MATCH
        elif d is Descriptor.JUXTAPLEURAL:
            m = _contact(detection.get("pleura_gap_mm"), JUXTAPLEURAL_GAP_MM)
        else:
            m = _contact(detection.get("fissure_gap_mm"), PERIFISSURAL_GAP_MM)
        out *= DESCRIPTOR_FLOOR + (1.0 - DESCRIPTOR_FLOOR) * min(max(m, 0.0), 1.0)
    return out


def contact_gaps(grid: LungGrid, detections: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Detection rows with their pleura and fissure gaps (mm), measured on the lobe grid.

    The gap is the distance from the detection's centre to the nearest voxel outside the
    lungs (pleura) or of another lobe (fissure), minus its radius, clipped to 0..20 mm (20 reads "20 mm or
    more"); a centre off the grid gives None. Rows that already carry both gaps are kept.

    Args:
        grid: The 2 mm lung grid (its ``lobes`` labels and affine).
        detections: Rows with ``center_lps_mm`` and ``diameter_mm``.
    """
    geometry = VolumeGeometry(grid.lobes.shape, grid.affine)
    out = []
    for row in detections:
        if "pleura_gap_mm" in row and "fissure_gap_mm" in row:
            out.append(dict(row))
            continue
        c = np.asarray(row["center_lps_mm"], float)
        r = float(row["diameter_mm"]) / 2
        gaps: dict[str, Any] = {"pleura_gap_mm": None, "fissure_gap_mm": None}
        found = box_around(geometry, c - r - _SEARCH_MM, c + r + _SEARCH_MM)
        if found is not None:
            sl, (x, y, z) = found
            box = grid.lobes[sl]
            dist = np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2)
            inside = box > 0
            # the centre's lobe: the nearest lung voxel's (the centre may sit just outside the mask)
            own = int(box.flat[np.where(inside, dist, np.inf).argmin()]) if inside.any() else 0
            for key, where in (("pleura_gap_mm", ~inside), ("fissure_gap_mm", inside & (box != own))):
                if own:
                    d = dist[where]
                    gap = float(d.min()) - r if d.size else _SEARCH_MM
                    gaps[key] = round(min(max(0.0, gap), _SEARCH_MM), 2)
        out.append({**row, **gaps})
    return tuple(out)
