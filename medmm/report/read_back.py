"""Read medmm's DICOM SR and SEG back (for round-trip checks and for downstream tools).

:func:`read_sr` returns one :class:`SrNodule` per TID 1411 group; :func:`read_seg` returns
the segments painted onto a volume grid. Both use highdicom's readers, so they also read
objects written by other software that follow the same templates.

Example:
    >>> [n.center_lps_mm for n in read_sr("sr.dcm")]                  # doctest: +SKIP
    >>> labels, info = read_seg("seg.dcm", volume.affine, volume.shape)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom

__all__ = ["SegSegment", "SrNodule", "read_seg", "read_sr"]


@dataclass(frozen=True)
class SrNodule:
    """One measurement group of a TID 1500 report.

    Attributes:
        tracking_id: Tracking Identifier, e.g. ``"Nodule 1"``.
        tracking_uid: Tracking Unique Identifier.
        center_lps_mm: The SCOORD3D point (LPS mm).
        finding: ``(value, scheme)`` of the finding type.
        finding_site: ``(value, scheme)`` of the finding site, or ``None``.
        measurements: Concept meaning -> ``(value, UCUM unit)``.
        evaluations: Concept meaning -> ``(value, scheme)`` of the coded answer.
    """

    tracking_id: str
    tracking_uid: str
    center_lps_mm: tuple[float, float, float]
    finding: tuple[str, str]
    finding_site: tuple[str, str] | None
    measurements: dict[str, tuple[float, str]]
    evaluations: dict[str, tuple[str, str]]


@dataclass(frozen=True)
class SegSegment:
    """One segment of a SEG.

    Attributes:
        number: Segment number.
        label: Segment label.
        property_type: ``(value, scheme)`` of the segmented property type.
        tracking_uid: Tracking UID, if any.
    """

    number: int
    label: str
    property_type: tuple[str, str]
    tracking_uid: str | None


def _pair(code: object) -> tuple[str, str]:
    return (str(code.value), str(code.scheme_designator))  # type: ignore[attr-defined]


def read_sr(path: str | Path) -> list[SrNodule]:
    """The volumetric measurement groups of a TID 1500 SR, in document order."""
    sr = hd.sr.srread(path)
    out = []
    for group in sr.content.get_volumetric_roi_measurement_groups():
        surface = group.roi
        data = np.asarray(surface.graphic_data if not isinstance(surface, list) else surface[0].value)  # type: ignore[union-attr]
        point = data.reshape(-1, 3)[0]
        sites = group.finding_sites
        meas = {
            str(m.name.meaning): (float(m.value), str(m.unit.value))
            for m in group.get_measurements()  # type: ignore[union-attr]
        }
        evals = {str(e.name.meaning): _pair(e.value) for e in group.get_qualitative_evaluations()}
        out.append(
            SrNodule(
                tracking_id=str(group.tracking_identifier),
                tracking_uid=str(group.tracking_uid),
                center_lps_mm=(float(point[0]), float(point[1]), float(point[2])),
                finding=_pair(group.finding_type),
                finding_site=_pair(sites[0].value) if sites else None,
                measurements=meas,
                evaluations=evals,
            )
        )
    return out


def read_seg(path: str | Path, affine: np.ndarray, shape: tuple[int, int, int]) -> tuple[np.ndarray, list[SegSegment]]:
    """A SEG's segments painted onto a volume grid.

    Args:
        path: The SEG file.
        affine: Target grid's 4x4 index ``(k, j, i)`` -> LPS mm affine (same frame of reference).
        shape: Target grid shape ``(Z, Y, X)``.

    Returns:
        ``(masks, segments)``: a boolean array with one channel per segment (in segment
        order) and the segments' descriptions.

    Shapes:
        masks: ``(Z, Y, X, S)``.

    Raises:
        ValueError: A frame does not lie on the target grid (another geometry).
    """
    ds = pydicom.dcmread(path)
    segments = [
        SegSegment(
            number=int(s.SegmentNumber),
            label=str(s.SegmentLabel),
            property_type=(
                str(s.SegmentedPropertyTypeCodeSequence[0].CodeValue),
                str(s.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator),
            ),
            tracking_uid=str(s.TrackingUID) if "TrackingUID" in s else None,
        )
        for s in ds.SegmentSequence
    ]
    order = {s.number: n for n, s in enumerate(segments)}
    masks = np.zeros((*shape, len(segments)), dtype=bool)
    frames = ds.pixel_array
    if frames.ndim == 2:
        frames = frames[None]
    inverse = np.linalg.inv(np.asarray(affine, dtype=float))
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        position = np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient] + [1.0])
        index = (inverse @ position)[:3]
        k, j, i = np.rint(index).astype(int)
        if not np.allclose(index, (k, j, i), atol=1e-3):
            raise ValueError(f"SEG frame {f + 1} is not on the target grid (index {index})")
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        rows, cols = frames[f].shape
        masks[k, j : j + rows, i : i + cols, order[number]] |= frames[f].astype(bool)
    return masks, segments
