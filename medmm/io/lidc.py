"""Read LIDC-IDRI radiologist annotation XML and build consensus reference nodules.

An LIDC XML file holds one ``readingSession`` per radiologist. Each
``unblindedReadNodule`` is one reader's mark: nodules >= 3 mm carry per-slice outlines
(``roi`` / ``edgeMap`` pixel coordinates, ``imageZposition``, ``imageSOP_UID``) and nine
characteristic ratings; nodules < 3 mm carry one point. ``nonNodule`` marks a point
judged not to be a nodule. (Armato et al., Med. Phys. 38:915, 2011.)

The LUNA16 reference standard kept nodules >= 3 mm outlined by at least 3 of the 4
readers, merging the readers' marks of the same nodule and averaging their centres and
diameters (Setio et al., Med. Image Anal. 42:1, 2017). :func:`lidc_consensus` does the
same: it rasterizes every outline onto the series grid, takes each mark's centroid and
volume-equivalent sphere diameter, clusters marks whose centres lie inside each other's
extent, and reports how many distinct readers outlined each nodule.

Example:
    >>> marks = read_lidc_xml("069.xml")                       # doctest: +SKIP
    >>> refs = lidc_consensus(marks, volume, min_readers=3)     # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medmm.errors import AnnotationError
from medmm.types import ReferenceNodule, Volume

__all__ = [
    "LidcNodule",
    "LidcRoi",
    "MarkGeometry",
    "ReaderMark",
    "lidc_consensus",
    "measure_mark",
    "read_lidc_xml",
]

CHARACTERISTICS = (
    "subtlety",
    "internalStructure",
    "calcification",
    "sphericity",
    "margin",
    "lobulation",
    "spiculation",
    "texture",
    "malignancy",
)


@dataclass(frozen=True)
class LidcRoi:
    """One reader's outline on one slice.

    Attributes:
        z_position_mm: ``imageZposition`` (the slice's ImagePositionPatient z).
        sop_uid: ``imageSOP_UID`` of the slice.
        inclusion: False for an exclusion (hole) outline.
        points_xy: Outline in pixel coordinates ``(column, row)``.

    Shapes:
        points_xy: ``(N, 2)``
    """

    z_position_mm: float
    sop_uid: str
    inclusion: bool
    points_xy: np.ndarray


@dataclass(frozen=True)
class ReaderMark:
    """One radiologist's mark of one nodule (or non-nodule).

    Attributes:
        reader_index: Position of the reading session in the file (0-3).
        reader_id: ``servicingRadiologistID``.
        mark_id: ``noduleID`` / ``nonNoduleID``.
        kind: ``"nodule"`` (outlined, >= 3 mm), ``"small_nodule"`` (< 3 mm, one point) or
            ``"non_nodule"``.
        characteristics: The nine 1-5 (calcification 1-6) ratings, for outlined nodules.
        rois: Outlines (or the single point, as a one-point outline).
    """

    reader_index: int
    reader_id: str
    mark_id: str
    kind: str
    characteristics: dict[str, int] = field(default_factory=dict)
    rois: tuple[LidcRoi, ...] = ()


@dataclass(frozen=True)
class MarkGeometry:
    """A mark measured on the series grid.

    Attributes:
        center_lps_mm: Centroid of the outlined voxels (or the point), LPS mm.
        diameter_mm: Diameter of the sphere with the outlined volume (None for points).
        volume_mm3: Outlined volume (0 for points).
    """

    center_lps_mm: tuple[float, float, float]
    diameter_mm: float | None
    volume_mm3: float


@dataclass(frozen=True)
class LidcNodule:
    """Readers' marks of one nodule merged.

    Attributes:
        center_lps_mm: Mean of the outlining readers' centroids (all marks if none outlined).
        diameter_mm: Mean of the outlining readers' diameters, None when nobody outlined it.
        outlined_by: Distinct readers that outlined it (marked it as >= 3 mm).
        marked_by: Distinct readers that marked it at all.
        marks: The member marks.
        geometries: Their measurements, same order.
    """

    center_lps_mm: tuple[float, float, float]
    diameter_mm: float | None
    outlined_by: int
    marked_by: int
    marks: tuple[ReaderMark, ...]
    geometries: tuple[MarkGeometry, ...]

    def to_reference(self, series_uid: str) -> ReferenceNodule:
        """As a :class:`~medmm.types.ReferenceNodule` (``reader_count`` = outlining readers)."""
        return ReferenceNodule(series_uid, self.center_lps_mm, self.diameter_mm, self.outlined_by, "lidc-xml")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def _text(el: ET.Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _parse_roi(roi: ET.Element, path: Path) -> LidcRoi:
    try:
        z = float(_text(_child(roi, "imageZposition")))
        pts = [
            (int(float(_text(_child(e, "xCoord")))), int(float(_text(_child(e, "yCoord")))))
            for e in _children(roi, "edgeMap")
        ]
    except (ValueError, OverflowError) as exc:
        raise AnnotationError(f"malformed roi ({exc})", path=path) from exc
    if not pts:
        raise AnnotationError("roi without edgeMap points", path=path)
    return LidcRoi(
        z,
        _text(_child(roi, "imageSOP_UID")),
        _text(_child(roi, "inclusion")).upper() != "FALSE",
        np.asarray(pts, dtype=np.int64),
    )


def read_lidc_xml(path: str | os.PathLike[str]) -> list[ReaderMark]:
    """Parse every reader's nodule and non-nodule marks from an LIDC XML file.

    Raises:
        AnnotationError: The file is not LIDC XML or a mark is malformed.
    """
    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except (ET.ParseError, OSError) as exc:
        raise AnnotationError(f"cannot parse LIDC XML: {exc}", path=p) from exc
    sessions = [el for el in root.iter() if _local(el.tag) == "readingSession"]
    if _local(root.tag) != "LidcReadMessage" or not sessions:
        raise AnnotationError("not an LIDC CT annotation file (no readingSession)", path=p)
    marks: list[ReaderMark] = []
    for r, session in enumerate(sessions):
        reader_id = _text(_child(session, "servicingRadiologistID")) or str(r)
        for nod in _children(session, "unblindedReadNodule"):
            chars_el = _child(nod, "characteristics")
            chars = {}
            if chars_el is not None:
                for c in chars_el:
                    if _local(c.tag) in CHARACTERISTICS and _text(c).isdigit():
                        chars[_local(c.tag)] = int(_text(c))
            rois = tuple(_parse_roi(roi, p) for roi in _children(nod, "roi"))
            outlined = any(len(roi.points_xy) > 1 for roi in rois)
            marks.append(
                ReaderMark(
                    r, reader_id, _text(_child(nod, "noduleID")), "nodule" if outlined else "small_nodule", chars, rois
                )
            )
        for non in _children(session, "nonNodule"):
            locus = _child(non, "locus")
            try:
                z = float(_text(_child(non, "imageZposition")) or "nan")
                xy = (
                    np.asarray(
                        [
                            [
                                int(float(_text(_child(locus, "xCoord")) or 0)),
                                int(float(_text(_child(locus, "yCoord")) or 0)),
                            ]
                        ]
                    )
                    if locus is not None
                    else np.zeros((1, 2), int)
                )
            except (ValueError, OverflowError) as exc:
                raise AnnotationError(f"malformed nonNodule mark ({exc})", path=p) from exc
            marks.append(
                ReaderMark(
                    r,
                    reader_id,
                    _text(_child(non, "nonNoduleID")),
                    "non_nodule",
                    {},
                    (LidcRoi(z, _text(_child(non, "imageSOP_UID")), True, xy),),
                )
            )
    return marks


def _slice_index(roi: LidcRoi, volume: Volume, z_world: np.ndarray) -> int:
    uids = volume.info.slice_sop_uids if volume.info is not None else ()
    if roi.sop_uid and roi.sop_uid in uids:
        return uids.index(roi.sop_uid)
    k = int(np.argmin(np.abs(z_world - roi.z_position_mm)))
    if abs(z_world[k] - roi.z_position_mm) > 0.5 * volume.spacing_mm[0] + 1e-3:
        raise AnnotationError(
            f"outline at z={roi.z_position_mm} mm matches no slice of the series (nearest {z_world[k]:.2f} mm)",
            hint="Check that the XML belongs to this series.",
        )
    return k


def _polygon_mask(points_xy: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Pixels strictly inside a closed outline (even-odd rule), over its bounding box.

    Returns:
        ``(mask[rows, cols], row0, col0)``.
    """
    x0, y0 = points_xy.min(axis=0)
    x1, y1 = points_xy.max(axis=0)
    yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    px, py = xx.astype(float), yy.astype(float)
    inside = np.zeros(px.shape, dtype=bool)
    pts = points_xy.astype(float)
    for (xa, ya), (xb, yb) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        if ya == yb:
            continue
        crosses = (ya > py) != (yb > py)
        x_at = (xb - xa) * (py - ya) / (yb - ya) + xa
        inside ^= crosses & (px < x_at)
    # LIDC readers drew the outline just outside the nodule, so the outline pixels are
    # not part of it (McNitt-Gray et al., Acad. Radiol. 14:1464, 2007). Excluding them
    # reproduces the LUNA16 diameters to within a few per cent.
    inside[points_xy[:, 1] - y0, points_xy[:, 0] - x0] = False
    return inside, int(y0), int(x0)


def measure_mark(mark: ReaderMark, volume: Volume) -> MarkGeometry:
    """Rasterize a mark on the series grid and measure centroid and size.

    Args:
        mark: A reader's mark.
        volume: The series it was drawn on (its ``info.slice_sop_uids`` are used when set).

    Raises:
        AnnotationError: An outline falls on no slice of the series.
    """
    n_slices = volume.shape[0]
    z_world = volume.index_to_world(np.stack([np.arange(n_slices), np.zeros(n_slices), np.zeros(n_slices)], 1))[:, 2]
    if mark.kind != "nodule":
        roi = mark.rois[0]
        k = _slice_index(roi, volume, z_world)
        x, y = roi.points_xy[0]
        c = volume.index_to_world([k, y, x])
        return MarkGeometry((float(c[0]), float(c[1]), float(c[2])), None, 0.0)
    voxels: dict[int, np.ndarray] = {}
    for roi in mark.rois:
        k = _slice_index(roi, volume, z_world)
        mask, r0, c0 = _polygon_mask(roi.points_xy)
        rr, cc = np.nonzero(mask)
        flat = np.stack([rr + r0, cc + c0], 1)
        cur = voxels.get(k, np.zeros((0, 2), np.int64))
        if roi.inclusion:
            voxels[k] = np.unique(np.concatenate([cur, flat]), axis=0)
        else:
            keep = ~(cur[:, None, :] == flat[None, :, :]).all(-1).any(1)
            voxels[k] = cur[keep]
    idx = np.concatenate([np.column_stack([np.full(len(v), k), v]) for k, v in voxels.items()])
    voxel_mm3 = float(abs(np.linalg.det(volume.affine[:3, :3])))
    vol_mm3 = len(idx) * voxel_mm3
    c = volume.index_to_world(idx.mean(axis=0))
    return MarkGeometry((float(c[0]), float(c[1]), float(c[2])), (6.0 * vol_mm3 / math.pi) ** (1.0 / 3.0), vol_mm3)


def lidc_consensus(
    marks: list[ReaderMark],
    volume: Volume,
    *,
    min_readers: int = 1,
    small_nodule_diameter_mm: float = 3.0,
) -> list[LidcNodule]:
    """Merge the readers' nodule marks into nodules with a consensus level.

    Two marks are the same nodule when the distance between their centres is at most
    the larger radius (points count as ``small_nodule_diameter_mm``) plus 1.5 mm.

    Args:
        marks: From :func:`read_lidc_xml` (non-nodule marks are ignored).
        volume: The series the marks were drawn on.
        min_readers: Keep nodules outlined (>= 3 mm) by at least this many distinct readers;
            0 keeps small nodules nobody outlined too.
        small_nodule_diameter_mm: Size assumed for point marks when clustering.

    Returns:
        Nodules, largest consensus first.
    """
    nodule_marks = [m for m in marks if m.kind in ("nodule", "small_nodule")]
    geoms = [measure_mark(m, volume) for m in nodule_marks]
    n = len(nodule_marks)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    centers = np.array([g.center_lps_mm for g in geoms]).reshape(-1, 3)
    radii = np.array([(g.diameter_mm or small_nodule_diameter_mm) / 2 for g in geoms])
    for i in range(n):
        for j in range(i + 1, n):
            if np.linalg.norm(centers[i] - centers[j]) <= max(radii[i], radii[j]) + 1.5:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    out = []
    for members in groups.values():
        outlined = [i for i in members if nodule_marks[i].kind == "nodule"]
        use = outlined or members
        center = centers[use].mean(axis=0)
        diam = float(np.mean([geoms[i].diameter_mm for i in outlined])) if outlined else None
        nod = LidcNodule(
            (float(center[0]), float(center[1]), float(center[2])),
            diam,
            len({nodule_marks[i].reader_index for i in outlined}),
            len({nodule_marks[i].reader_index for i in members}),
            tuple(nodule_marks[i] for i in members),
            tuple(geoms[i] for i in members),
        )
        if nod.outlined_by >= min_readers:
            out.append(nod)
    out.sort(key=lambda x: (-x.outlined_by, -x.marked_by, x.center_lps_mm))
    return out
