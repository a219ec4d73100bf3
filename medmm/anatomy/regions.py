"""Anatomical regions of the chest: names, codes, and the per-case region maps.

Region codes are RadLex IDs (RSNA RadLex): right upper lobe RID1303, right middle lobe
RID1310, right lower lobe RID1315, left upper lobe RID1327 (which includes the lingula,
RID1333), left lower lobe RID1338, mediastinum RID1384, trachea RID1247, pleura RID1362.
The pleura/chest-wall region of each side is coded as pleura (RID1362) with the side as
a qualifier. The ontology issue owns the authoritative table with a source per code.

Zones and bands are what radiologists use alongside lobes:

* **zones** upper/middle/lower: thirds of each lung's craniocaudal extent;
* **bands** central/intermediate/peripheral: thirds of the distance from the hilum to the
  pleural surface along the ray through the point (the "inner/middle/outer third").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from medmm.anatomy.lobes import LobeSegmentation, segment_lobes
from medmm.anatomy.lung_mask import LungSegmentation, segment_lungs
from medmm.types import Volume

__all__ = [
    "LEFT_LOBES",
    "LOBE_LABELS",
    "LOBE_NAMES",
    "REGIONS",
    "RIGHT_LOBES",
    "Anatomy",
    "Band",
    "Region",
    "RegionInfo",
    "Zone",
    "segment_anatomy",
]


class Region(StrEnum):
    """Graph regions, in their fixed node order."""

    RUL = "RUL"
    RML = "RML"
    RLL = "RLL"
    LUL = "LUL"
    LLL = "LLL"
    MEDIASTINUM = "mediastinum"
    CENTRAL_AIRWAYS = "central_airways"
    RIGHT_PLEURA = "right_pleura_chest_wall"
    LEFT_PLEURA = "left_pleura_chest_wall"


class Zone(StrEnum):
    """Craniocaudal third of a lung."""

    UPPER = "upper"
    MIDDLE = "middle"
    LOWER = "lower"


class Band(StrEnum):
    """Radial third between hilum and pleura."""

    CENTRAL = "central"
    INTERMEDIATE = "intermediate"
    PERIPHERAL = "peripheral"


@dataclass(frozen=True)
class RegionInfo:
    """Static description of a region."""

    region: Region
    label: str
    radlex: str
    side: str


REGIONS: tuple[RegionInfo, ...] = (
    RegionInfo(Region.RUL, "right upper lobe", "RID1303", "right"),
    RegionInfo(Region.RML, "right middle lobe", "RID1310", "right"),
    RegionInfo(Region.RLL, "right lower lobe", "RID1315", "right"),
    RegionInfo(Region.LUL, "left upper lobe (including the lingula, RID1333)", "RID1327", "left"),
    RegionInfo(Region.LLL, "left lower lobe", "RID1338", "left"),
    RegionInfo(Region.MEDIASTINUM, "mediastinum", "RID1384", "midline"),
    RegionInfo(Region.CENTRAL_AIRWAYS, "trachea and main bronchi", "RID1247", "midline"),
    RegionInfo(Region.RIGHT_PLEURA, "right pleura and chest wall", "RID1362", "right"),
    RegionInfo(Region.LEFT_PLEURA, "left pleura and chest wall", "RID1362", "left"),
)
LOBE_LABELS: dict[int, Region] = {1: Region.RUL, 2: Region.RML, 3: Region.RLL, 4: Region.LUL, 5: Region.LLL}
#: Lobe names in label order (label ``k`` is ``LOBE_NAMES[k - 1]``).
LOBE_NAMES: tuple[str, ...] = tuple(LOBE_LABELS[k].value for k in sorted(LOBE_LABELS))


def _lobes_of(side: str) -> frozenset[str]:
    return frozenset(i.region.value for i in REGIONS if i.region.value in LOBE_NAMES and i.side == side)


#: The lobes of each lung.
RIGHT_LOBES: frozenset[str] = _lobes_of("right")
LEFT_LOBES: frozenset[str] = _lobes_of("left")


@dataclass(frozen=True, eq=False)
class Anatomy:
    """Everything known about one case's anatomy.

    Attributes:
        volume: The CT it was computed on.
        lungs: Lung segmentation (1 right, 2 left).
        lobes: Lobe labels and fissures.
        hila_lps_mm: Hilum point of the right and left lung (LPS mm).
        lung_z_range_mm: (lowest, highest) z of each lung, for zones.
        methods: How each region was obtained, e.g. ``{"RUL": "fissure", ...}``.
    """

    volume: Volume
    lungs: LungSegmentation
    lobes: LobeSegmentation
    hila_lps_mm: dict[str, np.ndarray]
    lung_z_range_mm: dict[str, tuple[float, float]]
    methods: dict[str, str]

    def zone(self, point_lps_mm: np.ndarray, side: str) -> Zone:
        """Upper/middle/lower third of the lung's height at this point."""
        lo, hi = self.lung_z_range_mm[side]
        frac = (float(point_lps_mm[2]) - lo) / max(hi - lo, 1e-6)
        return Zone.LOWER if frac < 1 / 3 else Zone.MIDDLE if frac < 2 / 3 else Zone.UPPER

    def band(self, point_lps_mm: np.ndarray, side: str, step_mm: float = 1.0) -> Band:
        """Inner/middle/outer third along the ray from the hilum through the point."""
        hilum = self.hila_lps_mm[side]
        p = np.asarray(point_lps_mm, float)
        direction = p - hilum
        r = float(np.linalg.norm(direction))
        if r < 1e-6:
            return Band.CENTRAL
        direction /= r
        mask = self.lungs.lungs == (1 if side == "right" else 2)
        geom = self.volume.geometry
        # March outwards until the lung ends (allowing gaps for vessels and fissures).
        t, last_inside = r, r
        while t < r + 300.0:
            k, j, i = np.rint(geom.world_to_index(hilum + direction * t)).astype(int)
            if not (0 <= k < mask.shape[0] and 0 <= j < mask.shape[1] and 0 <= i < mask.shape[2]):
                break
            if mask[k, j, i]:
                last_inside = t
            elif t - last_inside > 6.0:
                break
            t += step_mm
        frac = r / max(last_inside, 1e-6)
        return Band.CENTRAL if frac < 1 / 3 else Band.INTERMEDIATE if frac < 2 / 3 else Band.PERIPHERAL


def _hilum(volume: Volume, lung_mask: np.ndarray) -> np.ndarray:
    """Hilum estimate: the lung's most medial voxels at mid-height, centred in y."""
    idx = np.argwhere(lung_mask)
    pts = volume.index_to_world(idx[:: max(1, len(idx) // 200000)])
    z_lo, z_hi = np.percentile(pts[:, 2], [2, 98])
    mid = pts[np.abs(pts[:, 2] - (z_lo + 0.55 * (z_hi - z_lo))) < 0.1 * (z_hi - z_lo)]
    if len(mid) == 0:
        return pts.mean(0)
    y_lo, y_hi = np.percentile(mid[:, 1], [5, 95])
    mid = mid[np.abs(mid[:, 1] - 0.5 * (y_lo + y_hi)) < (y_hi - y_lo) / 6]  # middle third front-to-back
    if len(mid) == 0:
        return pts.mean(0)
    medial_x = np.percentile(np.abs(mid[:, 0]), 5)
    near = mid[np.abs(np.abs(mid[:, 0]) - medial_x) < 10.0]
    return np.array([np.sign(mid[:, 0].mean()) * medial_x, np.median(near[:, 1]), np.median(near[:, 2])])


def segment_anatomy(volume: Volume) -> Anatomy:
    """Lungs, lobes, hila and zone extents of a chest CT.

    Raises:
        UnsupportedSeriesError: Not a chest CT (no lungs found).
    """
    lungs = segment_lungs(volume)
    lobes = segment_lobes(volume, lungs.lungs)
    hila, zr = {}, {}
    for side, code in (("right", 1), ("left", 2)):
        mask = lungs.lungs == code
        if not mask.any():
            continue
        hila[side] = _hilum(volume, mask)
        ks = np.flatnonzero(mask.any(axis=(1, 2)))
        z = volume.index_to_world(np.stack([ks, np.zeros_like(ks), np.zeros_like(ks)], 1))[:, 2]
        zr[side] = (float(z.min()), float(z.max()))
    methods = {r.value: lobes.method(r.value) for r in LOBE_LABELS.values()}
    methods |= {
        Region.MEDIASTINUM.value: "between the lungs (lung mask complement)",
        Region.CENTRAL_AIRWAYS.value: "airway growth from the trachea",
        Region.RIGHT_PLEURA.value: "lung surface",
        Region.LEFT_PLEURA.value: "lung surface",
    }
    return Anatomy(volume, lungs, lobes, hila, zr, methods)
