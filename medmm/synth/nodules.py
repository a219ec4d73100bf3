"""Lung nodules: shape, texture, calcification and position, rendered into a phantom.

Appearance categories follow the Fleischner Society glossary (Hansell et al., Radiology
246:697, 2008) and the LIDC-IDRI rating scales (Armato et al., Med. Phys. 38:915, 2011):

* texture: solid, part-solid (ground glass with a solid component), pure ground glass
  (attenuation roughly -750..-300 HU, vessels stay visible through it);
* calcification: none, central, popcorn (chondroid, typical of hamartoma), diffuse;
* margin: smooth, lobulated (a cluster of merged lobes), spiculated (radiating strands);
* position: isolated in the parenchyma, juxtapleural (abutting the chest wall),
  juxtavascular (touching a vessel), perifissural (lentiform, on a fissure).

Sizes and rating frequencies come from the LIDC-IDRI annotation statistics shipped with
medmm (:mod:`medmm.synth.lidc_stats`) when the case generator draws a nodule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from medmm.grid import box_around, edge_fraction, segment_distance
from medmm.synth.phantom import Lobe, Phantom, Tissue
from medmm.types import NoduleTexture

__all__ = [
    "Calcification",
    "NodulePosition",
    "NoduleSpec",
    "NoduleTexture",
    "RenderedNodule",
    "find_nodule_centre",
    "render_nodule",
]


class Calcification(StrEnum):
    """Calcification pattern (none = not calcified)."""

    NONE = "none"
    CENTRAL = "central"
    POPCORN = "popcorn"
    DIFFUSE = "diffuse"


class NodulePosition(StrEnum):
    """Where the nodule sits relative to its neighbours."""

    ISOLATED = "isolated"
    JUXTAPLEURAL = "juxtapleural"
    JUXTAVASCULAR = "juxtavascular"
    PERIFISSURAL = "perifissural"


@dataclass(frozen=True)
class NoduleSpec:
    """What to draw.

    Attributes:
        diameter_mm: Nominal (longest axial) diameter.
        texture: Attenuation pattern.
        calcification: Calcification pattern.
        spiculation: 0 (none) to 1 (marked).
        lobulation: 0 (round) to 1 (marked).
        position: Relation to pleura, vessels or fissures.
        solid_fraction: Solid core diameter over total diameter (part-solid only).
        lobe: Preferred lobe, or None for anywhere.
    """

    diameter_mm: float
    texture: NoduleTexture = NoduleTexture.SOLID
    calcification: Calcification = Calcification.NONE
    spiculation: float = 0.0
    lobulation: float = 0.0
    position: NodulePosition = NodulePosition.ISOLATED
    solid_fraction: float = 0.5
    lobe: Lobe | None = None


@dataclass(frozen=True)
class RenderedNodule:
    """Ground truth of a nodule drawn into a phantom.

    Attributes:
        spec: What was asked for.
        label: Its value in the nodule label map.
        center_lps_mm: Centre (LPS mm).
        diameter_mm: Nominal diameter.
        volume_mm3: Rendered volume (sum of partial-volume fractions x voxel volume).
        lobe: Lobe at the centre.
        solid_diameter_mm: Diameter of the solid component (= diameter for solid nodules).
    """

    spec: NoduleSpec
    label: int
    center_lps_mm: tuple[float, float, float]
    diameter_mm: float
    volume_mm3: float
    lobe: Lobe
    solid_diameter_mm: float


_DIRECTIONS = np.array(
    [[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) != (0, 0, 0)], float
)
_DIRECTIONS /= np.linalg.norm(_DIRECTIONS, axis=1, keepdims=True)


def _sample(phantom: Phantom, points: np.ndarray, array: np.ndarray) -> np.ndarray:
    idx = np.rint(phantom.hu.world_to_index(points)).astype(int)
    shape = np.asarray(array.shape)
    ok = np.all((idx >= 0) & (idx < shape), axis=1)
    out = np.zeros(len(points), dtype=array.dtype)
    out[ok] = array[idx[ok, 0], idx[ok, 1], idx[ok, 2]]
    return out


def find_nodule_centre(
    phantom: Phantom,
    spec: NoduleSpec,
    rng: np.random.Generator,
    occupied: np.ndarray,
    *,
    attempts: int = 4000,
) -> np.ndarray | None:
    """Pick a centre that satisfies the spec's position, away from other nodules.

    Args:
        phantom: Where to place it.
        spec: Size and position type.
        rng: Randomness.
        occupied: Nodule label map; candidates near existing nodules are rejected.
        attempts: Candidates to try.

    Returns:
        LPS centre in mm, or None when no place fits.
    """
    r = spec.diameter_mm / 2
    lobe_ok = phantom.lobe > 0 if spec.lobe is None else phantom.lobe == spec.lobe
    if spec.position == NodulePosition.PERIFISSURAL:
        lobe_ok = lobe_ok & (np.abs(phantom.fissure_distance_mm) < max(0.6, 0.5 * min(phantom.hu.spacing_mm)))
    if spec.position == NodulePosition.JUXTAVASCULAR:
        lobe_ok = lobe_ok & (phantom.vessel_fraction > 0.95)
    candidates = np.argwhere(lobe_ok)
    if len(candidates) == 0:
        return None
    lung = phantom.lung_mask
    for _ in range(attempts):
        base = phantom.hu.index_to_world(candidates[rng.integers(len(candidates))])
        if spec.position == NodulePosition.JUXTAVASCULAR:
            base = base + _DIRECTIONS[rng.integers(len(_DIRECTIONS))] * (r + 1.0)
        near = base + _DIRECTIONS * (r + 4.0)
        if np.any(_sample(phantom, near, occupied) > 0) or _sample(phantom, base[None], occupied)[0] > 0:
            continue
        if not _sample(phantom, base[None], lung)[0]:
            continue
        shell_in = _sample(phantom, base + _DIRECTIONS * (r + 2.0), lung)
        half_in = _sample(phantom, base + _DIRECTIONS * (0.5 * r), lung)
        if spec.position == NodulePosition.JUXTAPLEURAL:
            # Abutting the pleura: inside the lung, its surface within ~1.5 mm of the chest wall.
            body_in = _sample(phantom, base + _DIRECTIONS * (0.85 * r), lung)
            wall = _sample(phantom, base + _DIRECTIONS * (r + 1.5), phantom.tissue)
            touches_wall = np.isin(wall, [Tissue.MUSCLE, Tissue.CORTICAL_BONE, Tissue.MARROW, Tissue.FAT])
            if half_in.all() and body_in.all() and touches_wall.any():
                return base
        elif shell_in.all():  # isolated, juxtavascular, perifissural: fully inside the lung
            return base
    return None


def _unit_rows(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def render_nodule(
    phantom: Phantom,
    spec: NoduleSpec,
    centre_lps_mm: np.ndarray,
    label: int,
    nodule_map: np.ndarray,
    rng: np.random.Generator,
) -> RenderedNodule:
    """Draw a nodule into ``phantom.hu`` (in place) and its mask into ``nodule_map``.

    Args:
        phantom: Target phantom (its HU array is modified).
        spec: Appearance.
        centre_lps_mm: Where.
        label: Value written into ``nodule_map`` where the nodule covers >= half a voxel.
        nodule_map: Label map, same shape as the phantom.
        rng: Randomness (lobes, spicules, texture).
    """
    geom = phantom.hu.geometry
    voxel = float(min(geom.spacing_mm))
    voxel_mm3 = float(abs(np.linalg.det(geom.affine[:3, :3])))
    r = spec.diameter_mm / 2
    c = np.asarray(centre_lps_mm, float)
    reach = r * (1.0 + 1.3 * spec.spiculation) + 2 * voxel
    box = box_around(geom, c - reach, c + reach)
    if box is None:
        raise ValueError("nodule centre lies outside the grid")
    sl, (x, y, z) = box
    dx, dy, dz = x - c[0], y - c[1], z - c[2]

    # Body: one sphere, or a cluster of merged lobes; perifissural nodules are flattened.
    if spec.position == NodulePosition.PERIFISSURAL:
        normal = _fissure_normal(phantom, c)
        along = dx * normal[0] + dy * normal[1] + dz * normal[2]
        dist = np.sqrt(dx**2 + dy**2 + dz**2 - along**2 + (along / 0.45) ** 2)
        sd = dist - r
    else:
        sd = np.sqrt(dx**2 + dy**2 + dz**2) - r
        n_lobes = round(2 + 4 * spec.lobulation) if spec.lobulation > 0.15 else 0
        if n_lobes:
            sd = sd + 0.12 * r * spec.lobulation  # the core shrinks a little; lobes bulge out
            dirs = _unit_rows(rng.normal(size=(n_lobes, 3)))
            for d in dirs:
                rl = r * rng.uniform(0.45, 0.65)
                off = d * (r - rl) * rng.uniform(0.8, 1.15)
                sd = np.minimum(sd, np.sqrt((dx - off[0]) ** 2 + (dy - off[1]) ** 2 + (dz - off[2]) ** 2) - rl)
    frac = edge_fraction(sd, voxel)
    # Spicules: thin tapering strands radiating from the surface.
    if spec.spiculation > 0.1:
        n_sp = round(5 + 14 * spec.spiculation)
        for d in _unit_rows(rng.normal(size=(n_sp, 3))):
            length = r * rng.uniform(0.8, 1.8) * spec.spiculation
            p0, p1 = c + d * r * 0.6, c + d * (r + length)
            dist, t = segment_distance(x, y, z, p0, p1)
            rad = np.maximum(0.25, 0.18 * r * (1 - t) + 0.3 * t)
            np.maximum(frac, edge_fraction(dist - rad, voxel), out=frac)

    inside_hu = _texture_hu(spec, sd, dx, dy, dz, r, rng, voxel)
    region = phantom.hu.array[sl]
    if spec.texture == NoduleTexture.GROUND_GLASS:
        # Ground glass adds density but keeps what is inside it (vessels) visible.
        blended = np.maximum(region, region * (1 - frac) + inside_hu * frac)
    else:
        blended = region * (1 - frac) + inside_hu * frac
    region[...] = blended
    labels = nodule_map[sl]
    labels[frac >= 0.5] = label
    phantom.tissue[sl][frac >= 0.5] = Tissue.NODULE
    lobe = _sample(phantom, c[None], phantom.lobe)[0]
    solid_d = (
        spec.diameter_mm
        if spec.texture == NoduleTexture.SOLID
        else (spec.diameter_mm * spec.solid_fraction if spec.texture == NoduleTexture.PART_SOLID else 0.0)
    )
    return RenderedNodule(
        spec,
        label,
        (float(c[0]), float(c[1]), float(c[2])),
        float(spec.diameter_mm),
        float(frac.sum() * voxel_mm3),
        Lobe(int(lobe)),
        float(solid_d),
    )


def _fissure_normal(phantom: Phantom, c: np.ndarray) -> np.ndarray:
    p = phantom.fissure_planes
    slope = p["oblique_right_slope"] if c[0] < 0 else p["oblique_left_slope"]
    if c[0] < 0:
        z_ob = p["oblique_right_offset_mm"] + slope * c[1]
        if c[2] > z_ob and abs(c[2] - p["horizontal_z_mm"]) < abs(c[2] - z_ob) / np.sqrt(1 + slope**2):
            return np.array([0.0, 0.0, 1.0])
    n = np.array([0.0, -slope, 1.0])
    return n / np.linalg.norm(n)


def _texture_hu(
    spec: NoduleSpec,
    sd: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    dz: np.ndarray,
    r: float,
    rng: np.random.Generator,
    voxel: float,
) -> np.ndarray:
    """HU inside the nodule by texture and calcification."""
    dist = np.sqrt(dx**2 + dy**2 + dz**2)
    if spec.texture == NoduleTexture.GROUND_GLASS:
        hu = np.full(sd.shape, rng.uniform(-680, -450), np.float32)
    elif spec.texture == NoduleTexture.PART_SOLID:
        hu = np.full(sd.shape, rng.uniform(-650, -450), np.float32)
        rc = max(r * spec.solid_fraction, 0.75)
        off = rng.normal(size=3) * 0.15 * r
        core = edge_fraction(np.sqrt((dx - off[0]) ** 2 + (dy - off[1]) ** 2 + (dz - off[2]) ** 2) - rc, voxel)
        hu = hu * (1 - core) + rng.uniform(10, 50) * core
    else:
        hu = np.full(sd.shape, rng.uniform(15, 55), np.float32)
    if spec.calcification == Calcification.CENTRAL:
        core = edge_fraction(dist - 0.35 * r, voxel)
        hu = hu * (1 - core) + rng.uniform(350, 900) * core
    elif spec.calcification == Calcification.DIFFUSE:
        hu = np.full(sd.shape, rng.uniform(300, 900), np.float32)
    elif spec.calcification == Calcification.POPCORN:
        for _ in range(int(rng.integers(4, 9))):
            off = _unit_rows(rng.normal(size=(1, 3)))[0] * r * rng.uniform(0.1, 0.6)
            rb = r * rng.uniform(0.1, 0.2)
            blob = edge_fraction(np.sqrt((dx - off[0]) ** 2 + (dy - off[1]) ** 2 + (dz - off[2]) ** 2) - rb, voxel)
            hu = hu * (1 - blob) + rng.uniform(500, 1000) * blob
    return hu.astype(np.float32)
