"""Place a nodule in anatomy: lobe, zone, band, and its relation to pleura, fissures, vessels.

Definitions (Fleischner glossary, Hansell et al., Radiology 246:697, 2008, for the terms):

* ``distance_to_pleura_mm``: gap between the nodule's surface (a sphere of the given
  diameter) and the nearest pleural surface (costal, mediastinal or diaphragmatic), i.e.
  the distance from the centre to the lung edge minus the radius, floored at 0.
* **juxtapleural**: that gap is at most 2 mm.
* **perifissural**: the gap to a lobe boundary (fissure) is at most 3 mm.
* **juxtavascular**: vessel-density voxels (> -400 HU, inside the lung) touch the nodule:
  they make up at least 1 % of a shell 0.5-3 mm outside its surface.

Distances are computed on a box around the nodule only, so assignment is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from medmm.anatomy.regions import LOBE_LABELS, Anatomy, Band, Region, Zone
from medmm.grid import box_around

__all__ = ["RegionAssignment", "assign"]

JUXTAPLEURAL_GAP_MM = 2.0
PERIFISSURAL_GAP_MM = 3.0


@dataclass(frozen=True)
class RegionAssignment:
    """Where a nodule is.

    Attributes:
        lobe: Lobe region, or None when the centre is outside both lungs.
        side: ``"right"``, ``"left"`` or ``""``.
        zone: Upper/middle/lower third of that lung.
        band: Central/intermediate/peripheral third.
        distance_to_pleura_mm: Gap between nodule surface and pleura.
        juxtapleural: Touches the pleura.
        perifissural: Touches a fissure (lobe boundary).
        juxtavascular: Touches a vessel.
        inside_lung: The centre lies in the lung mask.
        lobe_method: How the lobe's boundaries were obtained.
    """

    lobe: Region | None
    side: str
    zone: Zone | None
    band: Band | None
    distance_to_pleura_mm: float | None
    juxtapleural: bool
    perifissural: bool
    juxtavascular: bool
    inside_lung: bool
    lobe_method: str = ""


def assign(center_lps_mm: npt.ArrayLike, diameter_mm: float, anatomy: Anatomy) -> RegionAssignment:
    """Assign a nodule (centre in LPS mm, diameter in mm) to regions.

    Args:
        center_lps_mm: Nodule centre.
        diameter_mm: Nodule diameter.
        anatomy: From :func:`medmm.anatomy.segment_anatomy`.
    """
    c = np.asarray(center_lps_mm, float)
    r = diameter_mm / 2.0
    vol = anatomy.volume
    geom = vol.geometry
    reach = r + 25.0
    box = box_around(geom, c - reach, c + reach)
    if box is None:
        return RegionAssignment(None, "", None, None, None, False, False, False, False)
    sl, (x, y, z) = box
    lungs = anatomy.lungs.lungs[sl]
    lobes = anatomy.lobes.labels[sl]
    hu = vol.array[sl]
    k, j, i = np.rint(geom.world_to_index(c)).astype(int) - np.array([s.start for s in sl])
    inside = bool(0 <= k < lungs.shape[0] and 0 <= j < lungs.shape[1] and 0 <= i < lungs.shape[2] and lungs[k, j, i])
    lobe_code = int(lobes[k, j, i]) if inside else 0
    if lobe_code == 0:
        # Nearest lobe voxel within the box (a centre just outside the mask, e.g. on the pleura).
        cand = np.argwhere(lobes > 0)
        if len(cand) == 0:
            return RegionAssignment(None, "", None, None, None, False, False, False, inside)
        nearest = cand[np.argmin(np.sum((cand - np.array([k, j, i])) ** 2 * np.square(geom.spacing_mm), axis=1))]
        lobe_code = int(lobes[tuple(nearest)])
    lobe = LOBE_LABELS[lobe_code]
    side = "right" if lobe_code <= 3 else "left"
    dist = np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2)
    # Pleura: distance from the centre to the nearest non-lung voxel.
    non_lung = lungs == 0
    d_pleura = float(dist[np.broadcast_to(non_lung, dist.shape)].min()) if non_lung.any() else reach
    gap_pleura = max(0.0, d_pleura - r)
    # Fissures: lung voxels whose lobe differs from a neighbour's (both in the lung).
    boundary = np.zeros(lobes.shape, bool)
    for axis in range(3):
        a = np.take(lobes, range(lobes.shape[axis] - 1), axis=axis)
        b = np.take(lobes, range(1, lobes.shape[axis]), axis=axis)
        edge = (a != b) & (a > 0) & (b > 0)
        idx = [slice(None)] * 3
        idx[axis] = slice(0, -1)
        boundary[tuple(idx)] |= edge
    gap_fissure = float(dist[np.broadcast_to(boundary, dist.shape)].min()) - r if boundary.any() else np.inf
    shell = (dist > r + 0.5) & (dist < r + 3.0) & np.broadcast_to(lungs > 0, dist.shape)
    dense = shell & (hu > -400)
    juxtavascular = bool(shell.any() and dense.sum() >= max(3, 0.01 * shell.sum()) and gap_pleura > JUXTAPLEURAL_GAP_MM)
    return RegionAssignment(
        lobe=lobe,
        side=side,
        zone=anatomy.zone(c, side),
        band=anatomy.band(c, side),
        distance_to_pleura_mm=round(gap_pleura, 2),
        juxtapleural=gap_pleura <= JUXTAPLEURAL_GAP_MM,
        perifissural=gap_fissure <= PERIFISSURAL_GAP_MM,
        juxtavascular=juxtavascular,
        inside_lung=inside,
        lobe_method=anatomy.methods.get(lobe.value, ""),
    )
