"""Nodule candidates: multi-scale blob enhancement inside the lungs on a ~1 mm grid.

1. The lung region (bounding box + margin) is resampled to an isotropic grid
   (:func:`lung_region_isotropic`, 1 mm by default), with everything outside the lung
   mask set to lung parenchyma (-850 HU) so that the pleura and mediastinum make no edges
   (a juxtapleural nodule is inside the mask, see :mod:`medmm.anatomy.lung_mask`).
2. The scale-normalized Laplacian of Gaussian ``-sigma^2 LoG`` is computed for sigmas
   matched to nodule diameters 3-30 mm (a sphere of radius ``r`` responds most at
   ``sigma = r / sqrt(3)`` in 3D; Lindeberg, IJCV 30:79, 1998). Large scales run on a
   2x coarser grid.
3. Voxels that are local maxima over space of the best response over scales, inside
   the lung, above a floor, become candidates with the diameter of their best scale;
   candidates within the smaller of two radii (at least 3 mm) of a stronger one are
   suppressed (non-maximum suppression in world mm; a large vessel-crossing blob must not
   hide a small nodule beside it) and at most ``max_candidates`` are kept, strongest first.

The score is the response (capped at 150 HU) times a Hessian blobness factor, doubled
for dense (>= 300 HU, calcified) peaks. On 25 synthetic training cases (46 nodules with a
filter peak) the top 300 held 44; both misses were perifissural nodules, which the
fissure's plate response hides (see docs/architecture.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medmm.types import Volume

__all__ = ["Candidate", "find_candidates", "generate_candidates", "lung_region_isotropic"]

PARENCHYMA_HU = -850.0
RESPONSE_CAP_HU = 150.0
DEFAULT_DIAMETERS_MM = (3.0, 4.5, 6.5, 9.0, 13.0, 19.0, 27.0)


@dataclass(frozen=True)
class Candidate:
    """A place worth a closer look.

    Attributes:
        center_lps_mm: Position (LPS mm).
        diameter_mm: Diameter of the best-matching blob scale.
        score: Scale-normalized blob response (HU); larger is more blob-like.
    """

    center_lps_mm: tuple[float, float, float]
    diameter_mm: float
    score: float


def lung_region_isotropic(
    volume: Volume, lung_mask: np.ndarray, spacing_mm: float = 1.0, margin_mm: float = 10.0
) -> tuple[Volume, np.ndarray]:
    """Resample the lungs' bounding box to an isotropic grid.

    Args:
        volume: CT in HU.
        lung_mask: Boolean lung mask on the volume's grid.
        spacing_mm: Output spacing.
        margin_mm: Margin around the lungs.

    Returns:
        ``(region, mask)``: the resampled HU volume (axis-aligned with the input grid) and
        its lung mask. Outside the lungs the HU values are kept (the CNN sees context).
    """
    sl = ndimage.find_objects(lung_mask.astype(np.uint8))
    if not sl:
        raise ValueError("empty lung mask")
    box = sl[0]
    margin = [math.ceil(margin_mm / s) for s in volume.spacing_mm]
    box = tuple(
        slice(max(b.start - m, 0), min(b.stop + m, n)) for b, m, n in zip(box, margin, volume.shape, strict=True)
    )
    start = np.array([b.start for b in box], float)
    zoom = [s / spacing_mm for s in volume.spacing_mm]
    hu = ndimage.zoom(volume.array[box], zoom, order=1, mode="nearest", grid_mode=False).astype(np.float32)
    mask = ndimage.zoom(lung_mask[box].astype(np.uint8), zoom, order=0, mode="nearest", grid_mode=False) > 0
    n_in = np.array([b.stop - b.start for b in box], float)
    n_out = np.array(hu.shape, float)
    # grid_mode=False maps the first and last voxel centres onto each other exactly.
    step = np.where(n_out > 1, (n_in - 1) / np.maximum(n_out - 1, 1), 1.0)
    affine = np.array(volume.affine, dtype=np.float64)
    affine[:3, 3] = volume.affine[:3, :3] @ start + volume.affine[:3, 3]
    affine[:3, :3] = volume.affine[:3, :3] * step[None, :]
    return Volume(hu, affine, volume.info), mask


def _laplacian(g: np.ndarray) -> np.ndarray:
    """Sum of central second differences (voxel units), zero on the border."""
    lap = np.zeros_like(g)
    c = g[1:-1, 1:-1, 1:-1]
    lap[1:-1, 1:-1, 1:-1] = (
        g[2:, 1:-1, 1:-1]
        + g[:-2, 1:-1, 1:-1]
        + g[1:-1, 2:, 1:-1]
        + g[1:-1, :-2, 1:-1]
        + g[1:-1, 1:-1, 2:]
        + g[1:-1, 1:-1, :-2]
        - 6.0 * c
    )
    return lap


def _hessian_at(g: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Hessians (voxel units) of ``g`` at integer points by central differences.

    Shapes:
        - pts: ``(N, 3)``
        - Output: ``(N, 3, 3)``
    """
    k, j, i = pts.T
    h = np.empty((len(pts), 3, 3), np.float64)
    f = lambda dk, dj, di: g[k + dk, j + dj, i + di].astype(np.float64)  # noqa: E731
    c = f(0, 0, 0)
    h[:, 0, 0] = f(1, 0, 0) + f(-1, 0, 0) - 2 * c
    h[:, 1, 1] = f(0, 1, 0) + f(0, -1, 0) - 2 * c
    h[:, 2, 2] = f(0, 0, 1) + f(0, 0, -1) - 2 * c
    h[:, 0, 1] = h[:, 1, 0] = (f(1, 1, 0) - f(1, -1, 0) - f(-1, 1, 0) + f(-1, -1, 0)) / 4
    h[:, 0, 2] = h[:, 2, 0] = (f(1, 0, 1) - f(1, 0, -1) - f(-1, 0, 1) + f(-1, 0, -1)) / 4
    h[:, 1, 2] = h[:, 2, 1] = (f(0, 1, 1) - f(0, 1, -1) - f(0, -1, 1) + f(0, -1, -1)) / 4
    return h


def _scale_candidates(
    hu: np.ndarray, mask: np.ndarray, spacing_mm: float, diameter_mm: float, min_score: float
) -> tuple[np.ndarray, np.ndarray]:
    """Blob peaks at one scale: (indices on the full grid, scores).

    The score is the scale-normalized LoG response times a blobness factor from the
    Hessian at the peak: the ratio of the smallest to the largest eigenvalue magnitude
    when all three are negative (1 for a sphere, near 0 for a vessel or a plate), square-rooted.
    """
    sigma_mm = diameter_mm / 2.0 / math.sqrt(3.0)
    step = 2 if sigma_mm >= 2.0 * spacing_mm else 1
    img = hu[::step, ::step, ::step]
    msk = mask[::step, ::step, ::step]
    sigma_vox = sigma_mm / (spacing_mm * step)
    g = ndimage.gaussian_filter(img, sigma_vox, mode="nearest")
    resp = -(sigma_vox**2) * _laplacian(g)
    peaks = (resp == ndimage.maximum_filter(resp, size=3)) & msk & (resp >= min_score)
    peaks[[0, -1], :, :] = False
    peaks[:, [0, -1], :] = False
    peaks[:, :, [0, -1]] = False
    pts = np.argwhere(peaks)
    if len(pts) == 0:
        return np.zeros((0, 3), int), np.zeros(0)
    ev = np.linalg.eigvalsh(_hessian_at(g, pts))  # ascending: ev[:, 0] most negative
    # |l3| / sqrt(|l1| |l2|): 1 for a sphere, ~0 for a vessel (l3 ~ 0), and still fair for a
    # lentiform nodule lying on a bright fissure (l1 large, l2 ~ l3).
    blob = np.where(ev[:, 2] < 0, np.abs(ev[:, 2]) / np.sqrt(np.maximum(ev[:, 0] * ev[:, 1], 1e-12)), 0.0)
    # Contrast beyond ~150 HU says little more (vessels are as dense as solid nodules),
    # so shape decides the ranking; faint ground glass is not outranked by bright vessels.
    full = np.minimum(pts * step, np.asarray(hu.shape) - 1)
    # Calcified nodules are denser than any vessel of their calibre: up to 2x for a peak
    # at >= 300 HU, so small calcified granulomas are not lost among vessel crossings.
    density = 1.0 + np.clip((hu[tuple(full.T)] - 100.0) / 200.0, 0.0, 1.0)
    scores = np.minimum(resp[tuple(pts.T)], RESPONSE_CAP_HU) * blob * density
    return full, scores


def find_candidates(
    region: Volume,
    mask: np.ndarray,
    *,
    diameters_mm: tuple[float, ...] = DEFAULT_DIAMETERS_MM,
    max_candidates: int = 300,
    min_score: float = 20.0,
    per_scale_quota: int = 15,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blob candidates on an isotropic lung region (from :func:`lung_region_isotropic`).

    Args:
        region: Isotropic HU region.
        mask: Its lung mask.
        diameters_mm: Blob scales to test.
        max_candidates: Keep at most this many.
        min_score: Floor on the LoG response (HU after scale normalization).
        per_scale_quota: The strongest peaks of each scale considered before all others.

    Returns:
        ``(index, diameter_mm, score)`` -- each scale's ``per_scale_quota`` strongest
        peaks first, then the rest, each group by score, descending -- after non-maximum
        suppression in world mm.

    Shapes:
        - index: ``(N, 3)`` integer voxel indices (k, j, i) of ``region``
        - diameter_mm: ``(N,)``
        - score: ``(N,)``
    """
    spacing_mm = float(np.mean(region.spacing_mm))
    hu = np.where(mask, np.clip(region.array, -1000.0, 400.0), PARENCHYMA_HU).astype(np.float32)
    all_idx, all_scores, all_diam = [], [], []
    for d in diameters_mm:
        idx, scores = _scale_candidates(hu, mask, spacing_mm, d, min_score)
        all_idx.append(idx)
        all_scores.append(scores)
        all_diam.append(np.full(len(scores), d))
    # The strongest few peaks of every scale go first: large blobs are rare, and a 23 mm
    # nodule must not be crowded out by hundreds of small vessel peaks with higher scores.
    priority = [np.argsort(np.argsort(-s)) < per_scale_quota for s in all_scores]
    idx = np.concatenate(all_idx)
    scores = np.concatenate(all_scores)
    diam = np.concatenate(all_diam)
    first = np.concatenate(priority) if priority else np.zeros(0, bool)
    order = np.lexsort((-scores, ~first))
    idx, scores, diam = idx[order], scores[order], diam[order]
    centres = region.index_to_world(idx.astype(np.float64)) if len(idx) else np.zeros((0, 3))
    kept: list[int] = []
    for n in range(len(idx)):
        if len(kept) >= max_candidates or scores[n] <= 0:
            break
        if kept:
            dist = np.linalg.norm(centres[kept] - centres[n], axis=1)
            if np.any(dist < np.maximum(np.minimum(diam[kept], diam[n]) / 2.0, 3.0)):
                continue
        kept.append(n)
    return idx[kept].astype(np.int64), diam[kept], scores[kept]


def generate_candidates(
    volume: Volume,
    lung_mask: np.ndarray,
    *,
    spacing_mm: float = 1.0,
    diameters_mm: tuple[float, ...] = DEFAULT_DIAMETERS_MM,
    max_candidates: int = 300,
    min_score: float = 20.0,
) -> list[Candidate]:
    """Blob candidates inside the lungs, strongest first.

    Args:
        volume: CT in HU.
        lung_mask: Boolean lung mask (nodules inside, as :func:`medmm.anatomy.segment_lungs` gives).
        spacing_mm: Isotropic working spacing.
        diameters_mm: Blob scales to test.
        max_candidates: Keep at most this many.
        min_score: Floor on the LoG response (HU after scale normalization).

    Returns:
        Candidates, each scale's strongest first, then by score (see :func:`find_candidates`).
    """
    region, mask = lung_region_isotropic(volume, lung_mask, spacing_mm)
    idx, diam, scores = find_candidates(
        region, mask, diameters_mm=diameters_mm, max_candidates=max_candidates, min_score=min_score
    )
    centres = region.index_to_world(idx.astype(np.float64)) if len(idx) else np.zeros((0, 3))
    return [
        Candidate((float(c[0]), float(c[1]), float(c[2])), float(d), float(s))
        for c, d, s in zip(centres, diam, scores, strict=True)
    ]
