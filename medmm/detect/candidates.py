"""Nodule candidates: multi-scale blob enhancement inside the lungs on a ~1 mm grid.

1. The lung region (bounding box + margin) is resampled to an isotropic grid
   (:func:`lung_region_isotropic`, 1 mm by default), with everything outside the lung
   mask set to lung parenchyma (-850 HU) so that the pleura and mediastinum make no edges
   (a juxtapleural nodule is inside the mask, see :mod:`medmm.anatomy.lung_mask`).
2. The scale-normalized Laplacian of Gaussian ``-sigma^2 LoG`` is computed for sigmas
   matched to nodule diameters 3-30 mm (a sphere of radius ``r`` responds most at
   ``sigma = r / sqrt(3)`` in 3D; Lindeberg, IJCV 30:79, 1998). Large scales run on a
   2x coarser grid.
3. Local maxima of each scale's response inside the lung, above a floor, are peaks
   (:func:`blob_peaks`), each with a hand-made score (response capped at 150 HU x Hessian
   blobness x density bonus) and a feature vector (:data:`FEATURE_NAMES`).
4. Peaks are ordered -- by a learned ranker (:mod:`medmm.detect.ranker`) when one is
   given, else by the hand-made score with a per-scale quota -- and suppressed greedily
   in world mm (:func:`suppress`); at most ``max_candidates`` are kept.

Why a learned ranker: on 40 synthetic training-pool scans (76 nodules) the hand-made
order kept 69 nodules in its top 300. Every one of the 7 misses had a filter peak within
its radius, typically in the top 40 of *its own scale*, but juxtapleural and
perifissural nodules score like the hundreds of vessel crossings (see
docs/architecture.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import ndimage

from medmm.detect import filters
from medmm.grid import mask_box
from medmm.types import Volume

if TYPE_CHECKING:
    from medmm.detect.ranker import Ranker

__all__ = [
    "FEATURE_NAMES",
    "BlobPeaks",
    "Candidate",
    "blob_peaks",
    "find_candidates",
    "generate_candidates",
    "lung_region_isotropic",
    "suppress",
]

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
    box = mask_box(lung_mask, volume.spacing_mm, margin_mm)
    if box is None:
        raise ValueError("empty lung mask")
    start = np.array([b.start for b in box], float)
    zoom = [s / spacing_mm for s in volume.spacing_mm]
    shape = filters.zoomed_shape(volume.array[box].shape, zoom)
    hu = filters.resample_linear(volume.array[box], shape)
    nearest = [filters.nearest_index(b.stop - b.start, n) for b, n in zip(box, shape, strict=True)]
    mask = lung_mask[box][np.ix_(*nearest)]  # order-0 resampling
    n_in = np.array([b.stop - b.start for b in box], float)
    n_out = np.array(hu.shape, float)
    # grid_mode=False maps the first and last voxel centres onto each other exactly.
    step = np.where(n_out > 1, (n_in - 1) / np.maximum(n_out - 1, 1), 1.0)
    affine = np.array(volume.affine, dtype=np.float64)
    affine[:3, 3] = volume.affine[:3, :3] @ start + volume.affine[:3, 3]
    affine[:3, :3] = volume.affine[:3, :3] * step[None, :]
    return Volume(hu, affine, volume.info), mask


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


FEATURE_NAMES: tuple[str, ...] = (
    *(f"log_response_{d:g}mm" for d in DEFAULT_DIAMETERS_MM),
    *(f"smoothed_hu_{d:g}mm" for d in DEFAULT_DIAMETERS_MM),
    *(f"own_scale_{d:g}mm" for d in DEFAULT_DIAMETERS_MM),
    "hessian_l2_over_abs_l1",
    "hessian_l3_over_abs_l1",
    "hu",
    "lung_depth_mm",
    "filter_score",
)
"""Per-peak features for the learned candidate ranker (:mod:`medmm.detect.ranker`), in column order.

The LoG responses and Gaussian-smoothed HU at every scale give the peak's radial
profile; the Hessian eigenvalue ratios at its own scale say blob, tube or plate; the
depth inside the lung mask (mm from its boundary, capped at 40) tells juxtapleural and
perifissural places from central ones; ``filter_score`` is the hand-made score.
"""

_LUNG_DEPTH_CAP_MM = 40.0


@dataclass
class BlobPeaks:
    """Local maxima of the blob filter, every scale, before ranking and suppression.

    Attributes:
        index: Voxel indices (k, j, i) on the isotropic region.
        diameter_mm: Diameter of the scale the peak belongs to.
        score: Hand-made score (response capped at 150 HU x blobness x density bonus).
        features: Ranker features, columns as :data:`FEATURE_NAMES`.

    Shapes:
        - index: ``(N, 3)``
        - diameter_mm: ``(N,)``
        - score: ``(N,)``
        - features: ``(N, F)`` with ``F = len(FEATURE_NAMES)``
    """

    index: np.ndarray
    diameter_mm: np.ndarray
    score: np.ndarray
    features: np.ndarray

    def __len__(self) -> int:
        return len(self.score)


def _sample(arr: np.ndarray, step: int, full_idx: np.ndarray) -> np.ndarray:
    """Values of a (possibly subsampled by ``step``) array at full-grid indices."""
    k = np.minimum(full_idx // step, np.asarray(arr.shape) - 1)
    return arr[tuple(k.T)].astype(np.float32)


def blob_peaks(
    region: Volume,
    mask: np.ndarray,
    *,
    diameters_mm: tuple[float, ...] = DEFAULT_DIAMETERS_MM,
    min_score: float = 20.0,
    with_features: bool = True,
) -> BlobPeaks:
    """Scale-normalized LoG peaks of every scale inside the lungs, with ranker features.

    A peak is a local maximum (3x3x3) of one scale's response above ``min_score``. Its
    score is the response (capped at 150 HU) times a Hessian blobness factor -- the
    ratio of the smallest to the largest eigenvalue magnitude when all three are
    negative (1 for a sphere, near 0 for a vessel or a plate), against the geometric mean
    of the two largest -- times a density bonus up to 2x for peaks at >= 300 HU (small
    calcified granulomas are denser than any vessel of their calibre).

    Args:
        region: Isotropic HU region (:func:`lung_region_isotropic`).
        mask: Its lung mask.
        diameters_mm: Blob scales to test. The feature columns follow
            :data:`DEFAULT_DIAMETERS_MM`; other scales give features a ranker was not
            trained on.
        min_score: Floor on the LoG response (HU after scale normalization).
        with_features: Compute the ranker features (else ``features`` has no columns and
            the per-scale maps are not kept).

    Returns:
        All peaks, unordered.
    """
    spacing_mm = float(np.mean(region.spacing_mm))
    hu = np.where(mask, np.clip(region.array, -1000.0, 400.0), PARENCHYMA_HU).astype(np.float32)
    maps: list[tuple[int, np.ndarray, np.ndarray]] = []  # (step, response, smoothed) per scale
    idx_l, score_l, diam_l, scale_l, ratio_l = [], [], [], [], []
    for s, d in enumerate(diameters_mm):
        sigma_mm = d / 2.0 / math.sqrt(3.0)
        step = 2 if sigma_mm >= 2.0 * spacing_mm else 1
        img = hu[::step, ::step, ::step]
        msk = mask[::step, ::step, ::step]
        sigma_vox = sigma_mm / (spacing_mm * step)
        g = filters.gaussian(img, sigma_vox)
        resp = -(sigma_vox**2) * filters.laplacian(g)
        peaks = filters.local_max(resp) & msk & (resp >= min_score)
        peaks[[0, -1], :, :] = False
        peaks[:, [0, -1], :] = False
        peaks[:, :, [0, -1]] = False
        if with_features:
            maps.append((step, filters.half(resp), filters.half(g)))
        pts = np.argwhere(peaks)
        if len(pts) == 0:
            continue
        ev = np.linalg.eigvalsh(_hessian_at(g, pts))  # ascending: ev[:, 0] most negative
        # |l3| / sqrt(|l1| |l2|): 1 for a sphere, ~0 for a vessel (l3 ~ 0), and still fair
        # for a lentiform nodule lying on a bright fissure (l1 large, l2 ~ l3).
        blob = np.where(ev[:, 2] < 0, np.abs(ev[:, 2]) / np.sqrt(np.maximum(ev[:, 0] * ev[:, 1], 1e-12)), 0.0)
        full = np.minimum(pts * step, np.asarray(hu.shape) - 1)
        density = 1.0 + np.clip((hu[tuple(full.T)] - 100.0) / 200.0, 0.0, 1.0)
        # Contrast beyond ~150 HU says little more (vessels are as dense as solid nodules),
        # so shape decides the ranking; faint ground glass is not outranked by bright vessels.
        idx_l.append(full)
        score_l.append(np.minimum(resp[tuple(pts.T)], RESPONSE_CAP_HU) * blob * density)
        diam_l.append(np.full(len(pts), d))
        scale_l.append(np.full(len(pts), s))
        l1 = np.minimum(ev[:, 0], -1e-6)
        ratio_l.append(np.stack([ev[:, 1] / -l1, ev[:, 2] / -l1], axis=1))
    n_feat = 3 * len(diameters_mm) + 5
    if not idx_l:
        return BlobPeaks(np.zeros((0, 3), np.int64), np.zeros(0), np.zeros(0), np.zeros((0, n_feat), np.float32))
    idx = np.concatenate(idx_l).astype(np.int64)
    score = np.concatenate(score_l)
    if not with_features:
        return BlobPeaks(idx, np.concatenate(diam_l), score, np.zeros((len(idx), 0), np.float32))
    scale = np.concatenate(scale_l)
    depth_step = 2
    depth = ndimage.distance_transform_edt(mask[::depth_step, ::depth_step, ::depth_step]) * depth_step * spacing_mm
    feats = np.empty((len(idx), n_feat), np.float32)
    n_s = len(diameters_mm)
    for s, (step, resp, g) in enumerate(maps):
        feats[:, s] = _sample(resp, step, idx) / 100.0
        feats[:, n_s + s] = _sample(g, step, idx) / 1000.0
    feats[:, 2 * n_s : 3 * n_s] = np.eye(n_s, dtype=np.float32)[scale]
    feats[:, 3 * n_s : 3 * n_s + 2] = np.clip(np.concatenate(ratio_l), -2.0, 2.0)
    feats[:, 3 * n_s + 2] = hu[tuple(idx.T)] / 1000.0
    feats[:, 3 * n_s + 3] = np.minimum(_sample(depth, depth_step, idx), _LUNG_DEPTH_CAP_MM) / _LUNG_DEPTH_CAP_MM
    feats[:, 3 * n_s + 4] = score / 100.0
    return BlobPeaks(idx, np.concatenate(diam_l), score, feats)


def suppress(
    centres_mm: np.ndarray,
    diameter_mm: np.ndarray,
    order: np.ndarray,
    max_keep: int,
    *,
    radius: Literal["smaller", "larger"] = "smaller",
) -> list[int]:
    """Greedy non-maximum suppression in world mm.

    A peak is dropped when it lies within the smaller (``radius="smaller"``, for
    candidates: a large vessel-crossing blob must not hide a small nodule beside it) or
    the larger (``"larger"``, for detections: one nodule, one detection) of its and a
    kept peak's radius, at least 3 mm, of that kept peak.

    Shapes:
        - centres_mm: ``(N, 3)``
        - diameter_mm: ``(N,)``
        - order: ``(N,)`` visiting order, best first

    Returns:
        Kept positions into the inputs, best first, at most ``max_keep``.
    """
    pick = np.minimum if radius == "smaller" else np.maximum
    kept: list[int] = []
    for n in order:
        if len(kept) >= max_keep:
            break
        if kept:
            dist = np.linalg.norm(centres_mm[kept] - centres_mm[n], axis=1)
            if np.any(dist < np.maximum(pick(diameter_mm[kept], diameter_mm[n]) / 2.0, 3.0)):
                continue
        kept.append(int(n))
    return kept


def find_candidates(
    region: Volume,
    mask: np.ndarray,
    *,
    ranker: Ranker | None = None,
    diameters_mm: tuple[float, ...] = DEFAULT_DIAMETERS_MM,
    max_candidates: int = 300,
    min_score: float = 20.0,
    per_scale_quota: int = 15,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blob candidates on an isotropic lung region (from :func:`lung_region_isotropic`).

    With a ``ranker`` (:class:`medmm.detect.ranker.CandidateRanker`), peaks are ordered by
    its learned score. Without one, each scale's ``per_scale_quota`` strongest peaks go
    first (large blobs are rare, and a 23 mm nodule must not be crowded out by hundreds
    of small vessel peaks), then the rest, by hand-made score.

    Args:
        region: Isotropic HU region.
        mask: Its lung mask.
        ranker: Learned peak ranker (None: the hand-made order).
        diameters_mm: Blob scales to test.
        max_candidates: Keep at most this many.
        min_score: Floor on the LoG response (HU after scale normalization).
        per_scale_quota: Without a ranker, the strongest peaks of each scale considered first.

    Returns:
        ``(index, diameter_mm, score)`` best first, after non-maximum suppression in
        world mm; ``score`` is the ranker's logit, or the hand-made score.

    Shapes:
        - index: ``(N, 3)`` integer voxel indices (k, j, i) of ``region``
        - diameter_mm: ``(N,)``
        - score: ``(N,)``
    """
    peaks = blob_peaks(region, mask, diameters_mm=diameters_mm, min_score=min_score, with_features=ranker is not None)
    if len(peaks) == 0:
        return np.zeros((0, 3), np.int64), np.zeros(0), np.zeros(0)
    if ranker is not None:
        scores = ranker.score(peaks.features)
        order = np.argsort(-scores, kind="stable")
    else:
        scores = peaks.score
        rank_in_scale = np.zeros(len(peaks), np.int64)
        for d in np.unique(peaks.diameter_mm):
            sel = np.flatnonzero(peaks.diameter_mm == d)
            rank_in_scale[sel] = np.argsort(np.argsort(-scores[sel], kind="stable"), kind="stable")
        order = np.lexsort((-scores, rank_in_scale >= per_scale_quota))
        order = order[scores[order] > 0]
    centres = region.index_to_world(peaks.index.astype(np.float64))
    kept = suppress(centres, peaks.diameter_mm, order, max_candidates)
    return peaks.index[kept], peaks.diameter_mm[kept], scores[kept]


def generate_candidates(
    volume: Volume,
    lung_mask: np.ndarray,
    *,
    spacing_mm: float = 1.0,
    ranker: Ranker | None = None,
    diameters_mm: tuple[float, ...] = DEFAULT_DIAMETERS_MM,
    max_candidates: int = 300,
    min_score: float = 20.0,
) -> list[Candidate]:
    """Blob candidates inside the lungs, strongest first.

    Args:
        volume: CT in HU.
        lung_mask: Boolean lung mask (nodules inside, as :func:`medmm.anatomy.segment_lungs` gives).
        spacing_mm: Isotropic working spacing.
        ranker: Learned peak ranker (None: the hand-made order).
        diameters_mm: Blob scales to test.
        max_candidates: Keep at most this many.
        min_score: Floor on the LoG response (HU after scale normalization).

    Returns:
        Candidates, best first (see :func:`find_candidates`).
    """
    region, mask = lung_region_isotropic(volume, lung_mask, spacing_mm)
    idx, diam, scores = find_candidates(
        region,
        mask,
        ranker=ranker,
        diameters_mm=diameters_mm,
        max_candidates=max_candidates,
        min_score=min_score,
    )
    centres = region.index_to_world(idx.astype(np.float64)) if len(idx) else np.zeros((0, 3))
    return [
        Candidate((float(c[0]), float(c[1]), float(c[2])), float(d), float(s))
        for c, d, s in zip(centres, diam, scores, strict=True)
    ]
