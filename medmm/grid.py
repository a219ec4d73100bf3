"""Voxel-grid helpers in world coordinates: voxel centres, boxes around shapes, edges.

Used to rasterize analytic shapes (synthetic phantoms) and to look at the voxels around
a point (anatomy assignment).

Every shape is defined in LPS millimetres; these helpers find the voxels a shape can
touch (a bounding box in index space), give their world coordinates, and paint a partial-
volume fraction so that edges are smooth at any voxel size.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt

from medmm.types import VolumeGeometry

__all__ = ["box_around", "edge_fraction", "mask_box", "segment_distance", "world_grid"]


def world_grid(geometry: VolumeGeometry, dtype: npt.DTypeLike = np.float32) -> tuple[np.ndarray, ...]:
    """World coordinates of every voxel centre.

    Returns:
        ``(X, Y, Z)`` LPS mm, each broadcastable to the grid shape (full arrays only
        when the grid is oblique).

    Shapes:
        Each output broadcasts to ``geometry.shape``.
    """
    a = geometry.affine
    axes = (
        np.arange(geometry.shape[0], dtype=np.float64)[:, None, None],
        np.arange(geometry.shape[1], dtype=np.float64)[None, :, None],
        np.arange(geometry.shape[2], dtype=np.float64)[None, None, :],
    )
    out = []
    for c in range(3):
        # Terms with a zero coefficient are left out, so an axial grid gives x (1,1,X),
        # y (1,Y,1), z (Z,1,1): shape arithmetic then runs on 2D slices, not the volume.
        coord = np.full((1, 1, 1), a[c, 3])
        for axis in range(3):
            if abs(a[c, axis]) > 1e-12:
                coord = coord + a[c, axis] * axes[axis]
        out.append(coord.astype(dtype))
    return tuple(out)


def box_around(
    geometry: VolumeGeometry, lo_lps_mm: npt.ArrayLike, hi_lps_mm: npt.ArrayLike
) -> tuple[tuple[slice, slice, slice], tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """Index-space box covering a world-space axis-aligned box, with its voxels' world coordinates.

    Args:
        geometry: The grid.
        lo_lps_mm: Lower corner (x, y, z) of the world box.
        hi_lps_mm: Upper corner.

    Returns:
        ``(slices, (X, Y, Z))`` for the voxels in the box, or None if it misses the grid.
    """
    lo, hi = np.asarray(lo_lps_mm, float), np.asarray(hi_lps_mm, float)
    corners = np.array(list(itertools.product(*zip(lo, hi, strict=True))))
    idx = geometry.world_to_index(corners)
    start = np.maximum(np.floor(idx.min(0)).astype(int), 0)
    stop = np.minimum(np.ceil(idx.max(0)).astype(int) + 1, geometry.shape)
    if np.any(stop <= start):
        return None
    sl = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
    sub = VolumeGeometry(tuple(int(b - a) for a, b in zip(start, stop, strict=True)), _shifted(geometry.affine, start))
    return sl, world_grid(sub)  # type: ignore[return-value]


def mask_box(
    mask: np.ndarray, spacing_mm: tuple[float, float, float], margin_mm: float
) -> tuple[slice, slice, slice] | None:
    """Bounding box of a mask's true voxels, grown by ``margin_mm`` and clipped to the array.

    Returns:
        Index slices, or None for an empty mask.
    """
    from scipy import ndimage

    found = ndimage.find_objects(mask.astype(np.uint8))
    if not found or found[0] is None:
        return None
    margin = [math.ceil(margin_mm / s) for s in spacing_mm]
    return tuple(  # type: ignore[return-value]
        slice(max(b.start - m, 0), min(b.stop + m, n)) for b, m, n in zip(found[0], margin, mask.shape, strict=True)
    )


def _shifted(affine: np.ndarray, start: np.ndarray) -> np.ndarray:
    out = np.array(affine, dtype=np.float64)
    out[:3, 3] = affine[:3, :3] @ start + affine[:3, 3]
    return out


def segment_distance(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, p0: npt.ArrayLike, p1: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from points to a segment, and the position along it (0 at p0, 1 at p1).

    Shapes:
        x, y, z broadcast together; both outputs have their broadcast shape.
    """
    a, b = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    d = b - a
    length2 = float(d @ d) or 1e-12
    t = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / length2, 0.0, 1.0)
    dist = np.sqrt((x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (z - a[2] - t * d[2]) ** 2)
    return dist, t


def edge_fraction(signed_distance_mm: np.ndarray, voxel_mm: float) -> np.ndarray:
    """Partial-volume fraction from a signed distance (negative inside), over one voxel width."""
    return np.clip(0.5 - signed_distance_mm / max(voxel_mm, 1e-6), 0.0, 1.0).astype(np.float32)
