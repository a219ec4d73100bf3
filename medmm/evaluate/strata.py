"""Per-nodule sensitivity broken down by size and texture.

A nodule counts as detected at a threshold when a scored mark hitting it (LUNA16 hit
rule, :mod:`medmm.evaluate.matching`) has a score ``>= threshold``; that is, its best
score reaches the threshold. Summed over the strata this is the FROC sensitivity at
that threshold. Intervals are Wilson 95 % (:func:`medmm.evaluate.binary.proportion`).

Size bins are half-open ``[low, high)`` in mm of the reference diameter. The default
edges 4, 6, 8, 10, 15, 20 and 30 mm contain the Lung-RADS v2022 solid-nodule cut-offs
(6, 8, 15 mm; American College of Radiology, 2022) and the LUNA16 lower limit of 3 mm
falls in the first bin. Nodules of unknown size form an ``unknown`` stratum.

Example:
    >>> strata = sensitivity_by_size([5.0, 12.0], [True, False])
    >>> [(s.label, s.detected.successes, s.detected.total) for s in strata]
    [('4-6 mm', 1, 1), ('10-15 mm', 0, 1)]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medmm.evaluate.binary import Proportion, proportion

__all__ = ["DEFAULT_SIZE_EDGES_MM", "Stratum", "sensitivity_by_size", "sensitivity_by_texture"]

DEFAULT_SIZE_EDGES_MM: tuple[float, ...] = (4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0)


@dataclass(frozen=True)
class Stratum:
    """Detected nodules of one stratum.

    Attributes:
        kind: ``"size"`` or ``"texture"``.
        label: e.g. ``"6-8 mm"`` or ``"part_solid"``.
        low_mm: Lower size bound (size strata only).
        high_mm: Upper size bound, exclusive (size strata only; inf for the last).
        detected: Detected / all nodules of the stratum, with its interval.
    """

    kind: str
    label: str
    detected: Proportion
    low_mm: float | None = None
    high_mm: float | None = None


def _size_label(lo: float, hi: float) -> str:
    if lo <= 0:
        return f"<{hi:g} mm"
    if not np.isfinite(hi):
        return f">={lo:g} mm"
    return f"{lo:g}-{hi:g} mm"


def sensitivity_by_size(
    diameters_mm: Sequence[float | None],
    detected: Sequence[bool],
    edges_mm: Sequence[float] = DEFAULT_SIZE_EDGES_MM,
    confidence: float = 0.95,
) -> tuple[Stratum, ...]:
    """Sensitivity in each size bin holding at least one nodule, smallest first."""
    if len(diameters_mm) != len(detected):
        raise ValueError("one detection flag per diameter")
    bounds = [0.0, *sorted(float(e) for e in edges_mm), float("inf")]
    out = []
    found = np.asarray(detected, bool)
    known = np.array([d is not None for d in diameters_mm], bool)
    diam = np.array([d if d is not None else np.nan for d in diameters_mm], np.float64)
    for lo, hi in itertools.pairwise(bounds):
        inside = known & (diam >= lo) & (diam < hi)
        if inside.any():
            hit = int(found[inside].sum())
            out.append(Stratum("size", _size_label(lo, hi), proportion(hit, int(inside.sum()), confidence), lo, hi))
    if (~known).any():
        out.append(Stratum("size", "unknown", proportion(int(found[~known].sum()), int((~known).sum()), confidence)))
    return tuple(out)


def sensitivity_by_texture(
    textures: Sequence[str | None],
    detected: Sequence[bool],
    confidence: float = 0.95,
) -> tuple[Stratum, ...]:
    """Sensitivity per texture (solid, part_solid, ground_glass, then others, unknown)."""
    if len(textures) != len(detected):
        raise ValueError("one detection flag per texture")
    preferred = ["solid", "part_solid", "ground_glass"]
    labels = [t if t is not None else "unknown" for t in textures]
    present = sorted(set(labels), key=lambda t: (preferred.index(t) if t in preferred else 3, t == "unknown", t))
    found = np.asarray(detected, bool)
    lab = np.asarray(labels, dtype=object)
    return tuple(
        Stratum("texture", t, proportion(int(found[lab == t].sum()), int((lab == t).sum()), confidence))
        for t in present
    )
