"""Pulmonary vessel trees: grown from each hilum, tapering towards the periphery.

Vessels are the main source of false positives in real CAD (a vessel seen end-on is a
round blob on one slice), so the phantom needs many of them, of every calibre, branching.
Each tree is grown from hilar roots by bifurcation: children radii follow Murray's law
(``r^3 = r1^3 + r2^3``; Murray, PNAS 12:207, 1926) with random asymmetry, segment length
is a multiple of the radius, and branches stop at the lung edge or below a minimum
radius. Arteries and veins are grown as separate trees from slightly different roots.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from medmm.grid import box_around, edge_fraction, segment_distance
from medmm.types import VolumeGeometry

__all__ = ["VesselSegment", "grow_vessel_trees", "paint_segments"]


@dataclass(frozen=True)
class VesselSegment:
    """One straight, tapering piece of vessel (LPS mm)."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    radius_start_mm: float
    radius_end_mm: float


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-12)


def _perpendicular(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return _unit(v - (v @ d) * d)


def _rotate(d: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    return _unit(d * np.cos(angle) + np.cross(axis, d) * np.sin(angle) + axis * (axis @ d) * (1 - np.cos(angle)))


def grow_vessel_trees(
    geometry: VolumeGeometry,
    lung: np.ndarray,
    scale: float,
    rng: np.random.Generator,
    *,
    max_segments: int = 15000,
    n_subsegmental: int = 120,
) -> list[VesselSegment]:
    """Grow arterial and venous trees in both lungs.

    Args:
        geometry: The grid ``lung`` lives on.
        lung: Boolean lung mask.
        scale: Patient size factor (``PatientShape.scale``; sets root positions and calibres).
        rng: Randomness.
        max_segments: Safety cap.
        n_subsegmental: Extra small trees seeded inside the lungs (for an average-size patient).

    Returns:
        Segments, roots first.
    """
    s = scale
    voxel = float(min(geometry.spacing_mm))
    r_min = max(0.35, 0.35 * voxel)

    def inside(p: np.ndarray) -> bool:
        k, j, i = np.rint(geometry.world_to_index(p)).astype(int)
        return bool(0 <= k < lung.shape[0] and 0 <= j < lung.shape[1] and 0 <= i < lung.shape[2] and lung[k, j, i])

    roots = []
    for side in (-1.0, 1.0):
        hilum_a = np.array([side * 44 * s, 10 * s, -32 * s])
        hilum_v = np.array([side * 40 * s, -2 * s, -58 * s])
        for hilum, r0 in ((hilum_a, 5.0 * s), (hilum_v, 4.5 * s)):
            # Segmental trunks fan out over the lateral hemisphere, up and down.
            n_trunks = 10
            for n in range(n_trunks):
                polar = np.arccos(1 - 2 * (n + rng.uniform(0.2, 0.8)) / n_trunks)  # even in cos(polar)
                azimuth = rng.uniform(-1.2, 1.2)
                d = np.array([side * np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)])
                roots.append((hilum, _unit(d + np.array([side * 0.35, 0.0, 0.0])), r0 * rng.uniform(0.6, 1.0)))
    # Subsegmental trees seeded through the lung: each starts as a branch of a hilar
    # tree would (radius 1-2.5 mm, heading away from its hilum), so vessels of every
    # calibre appear everywhere, including end-on, without growing every generation.
    lung_idx = np.argwhere(lung)
    hila = np.array([[-44 * s, 10 * s, -32 * s], [44 * s, 10 * s, -32 * s]])
    if len(lung_idx):
        n_seeds = int(n_subsegmental * s**3)
        for point in geometry.index_to_world(lung_idx[rng.integers(len(lung_idx), size=n_seeds)]):
            hilum = hila[int(point[0] > 0)]
            d = _unit(point - hilum + rng.normal(0, 15.0, 3))
            roots.append((point, d, float(rng.uniform(1.0, 2.5))))
    segments: list[VesselSegment] = []
    # Breadth-first, so every root grows to the same generation before the cap bites.
    queue = deque((p, d, r, hila[int(p[0] > 0)] if r < 3.0 else p) for p, d, r in roots)
    while queue and len(segments) < max_segments:
        start, direction, radius, hilum = queue.popleft()
        length = float(np.clip(radius * rng.uniform(4.0, 7.0), 2.0, 25.0))
        # Bias outwards from the hilum so trees fill the lung instead of curling back.
        outward = _unit(start - hilum) if np.linalg.norm(start - hilum) > 1 else direction
        direction = _unit(direction + 0.15 * outward + rng.normal(0, 0.1, 3))
        end = start + direction * length
        # Near the pleura a branch turns back into the lung rather than ending (space filling).
        for _ in range(4):
            if inside(end):
                break
            direction = _rotate(direction, _perpendicular(direction, rng), float(rng.uniform(0.4, 1.2)))
            end = start + direction * length
        else:
            if not inside(end):
                continue
        r_end = radius * 0.93
        segments.append(VesselSegment(tuple(start), tuple(end), float(radius), float(r_end)))  # type: ignore[arg-type]
        if r_end < r_min * 1.3:
            continue
        asym = rng.uniform(0.3, 0.75)  # monopodial: the trunk continues, side branches are thinner
        r1 = r_end / (1 + asym**3) ** (1 / 3)
        r2 = asym * r1
        axis = _perpendicular(direction, rng)
        for r_child, angle in ((r1, rng.uniform(0.25, 0.55)), (r2, -rng.uniform(0.55, 1.0))):
            if r_child >= r_min:
                queue.append((end, _rotate(direction, axis, angle), r_child, hilum))
    return segments


def paint_segments(geometry: VolumeGeometry, segments: Iterable[VesselSegment], voxel_mm: float) -> np.ndarray:
    """Partial-volume fraction (0..1) of all segments on the grid.

    Shapes:
        Output: ``geometry.shape`` float32.
    """
    out = np.zeros(geometry.shape, np.float32)
    for seg in segments:
        p0, p1 = np.asarray(seg.start), np.asarray(seg.end)
        r = max(seg.radius_start_mm, seg.radius_end_mm)
        box = box_around(geometry, np.minimum(p0, p1) - r - voxel_mm, np.maximum(p0, p1) + r + voxel_mm)
        if box is None:
            continue
        sl, (x, y, z) = box
        dist, t = segment_distance(x, y, z, p0, p1)
        radius = seg.radius_start_mm + (seg.radius_end_mm - seg.radius_start_mm) * t
        np.maximum(out[sl], edge_fraction(dist - radius, voxel_mm), out=out[sl])
    return out
