"""The acquisitions a detector was trained on, and the check of a series against them.

A CNN trained on one range of voxel sizes says little about much coarser ones: on
``medmm synth`` series with 2.5-3.7 mm pixels (matrix 128), the detector trained on
0.6-2.0 mm pixels (``nodule_detector_v2``) scores a CPM of 0.76 where it scores 0.86 on
0.7 mm pixels, and vessel crossings blurred into blobs pass the 0.5 threshold. So the
training command writes the range of pixel and slice spacings it saw into the model
card (``training_data.pixel_spacing_mm`` / ``slice_spacing_mm``), and
:func:`spacing_warnings` turns a series outside that range into a warning in the result
(an older card without the range gives none).

Example:
    >>> card = {"name": "det", "training_data": {"pixel_spacing_mm": [0.6, 2.0]}}
    >>> spacing_warnings((1.25, 2.8, 2.8), card)  # doctest: +ELLIPSIS
    ['in-plane pixel spacing 2.80 mm is coarser than the series detector det was trained on (0.60-2.00 mm)...']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["COARSER_TOLERANCE", "case_spacing_mm", "spacing_range", "spacing_warnings"]

COARSER_TOLERANCE = 1.1
"""A series is out of range when its spacing exceeds the largest trained one by more than 10 %."""


def case_spacing_mm(case: Any) -> tuple[float, float] | None:
    """``(in-plane pixel, slice)`` spacing of a training case in mm, from headers only.

    Args:
        case: A :class:`~medmm.detect.training_data.TrainingCase` whose loader reads a DICOM
            folder or a LUNA16 MetaImage; other loaders give ``None``.

    Returns:
        The larger of the two pixel spacings and the median slice gap, or ``None`` when the
        headers cannot tell.
    """
    loader = case.load
    folder = getattr(loader, "folder", None)
    if folder is not None:
        return _dicom_spacing(folder)
    path = getattr(loader, "path", None)
    if path is not None and str(path).endswith(".mhd"):
        return _mhd_spacing(path)
    return None


def _dicom_spacing(folder: Any) -> tuple[float, float] | None:
    """Pixel spacing and median slice gap along the slice normal, from :func:`medmm.io.scan`'s headers."""
    from medmm.io import scan

    series = scan(folder, workers=1).series
    if not series:
        return None
    frames = [f for inst in series[0].instances for f in inst.frames]
    pixel = next((f.pixel_spacing_mm for f in frames if f.pixel_spacing_mm), None)
    orientation = next((f.orientation for f in frames if f.orientation), None)
    positions = [f.position_lps_mm for f in frames if f.position_lps_mm is not None]
    if pixel is None or orientation is None or len(positions) < 2:
        return None
    normal = np.cross(orientation[:3], orientation[3:])
    gaps = np.diff(np.unique(np.round(np.asarray(positions) @ normal, 3)))
    if len(gaps) == 0:
        return None
    return max(pixel), float(np.median(gaps))


def _mhd_spacing(path: Any) -> tuple[float, float] | None:
    with open(path, encoding="latin-1") as fh:
        for line in fh:
            key, _, value = line.partition("=")
            if key.strip() == "ElementSpacing":
                sx, sy, sz = (float(v) for v in value.split()[:3])
                return max(sx, sy), sz
    return None


def spacing_range(cases: Sequence[Any]) -> dict[str, Any]:
    """The pixel and slice spacing range of training cases, for the model card.

    Returns:
        ``{"pixel_spacing_mm": [lo, hi], "slice_spacing_mm": [lo, hi], "spacing_cases": n}``
        over the cases whose headers tell (empty when none do).
    """
    found = [s for s in (case_spacing_mm(c) for c in cases) if s is not None]
    if not found:
        return {}
    arr = np.asarray(found)
    return {
        "pixel_spacing_mm": [round(float(arr[:, 0].min()), 3), round(float(arr[:, 0].max()), 3)],
        "slice_spacing_mm": [round(float(arr[:, 1].min()), 3), round(float(arr[:, 1].max()), 3)],
        "spacing_cases": len(found),
    }


def _trained_range(card: Mapping[str, Any], key: str) -> tuple[float, float] | None:
    """The card's range for ``key``; an ensemble's is the union of its members' (None if any lacks it)."""
    members = card.get("members") or [card]
    ranges = [(m.get("training_data") or {}).get(key) for m in members]
    if not ranges or any(r is None for r in ranges):
        return None
    return min(float(r[0]) for r in ranges), max(float(r[1]) for r in ranges)


def spacing_warnings(spacing_mm: Sequence[float], card: Mapping[str, Any]) -> list[str]:
    """Warnings for a series coarser than anything the detector was trained on.

    Args:
        spacing_mm: The series' voxel spacing ``(slice, row, column)`` in mm.
        card: The detector's model card (or an ensemble's, with ``members``).

    Returns:
        One warning per axis (in-plane, slice) beyond ``COARSER_TOLERANCE`` x the trained
        maximum; none when the card does not record its range.
    """
    name = str(card.get("name", "detector"))
    out = []
    checks = (
        ("in-plane pixel spacing", max(float(spacing_mm[1]), float(spacing_mm[2])), "pixel_spacing_mm"),
        ("slice spacing", float(spacing_mm[0]), "slice_spacing_mm"),
    )
    for what, value, key in checks:
        trained = _trained_range(card, key)
        if trained is not None and value > COARSER_TOLERANCE * trained[1]:
            out.append(
                f"{what} {value:.2f} mm is coarser than the series detector {name} was trained on "
                f"({trained[0]:.2f}-{trained[1]:.2f} mm): expect more false positives and missed nodules"
            )
    return out
