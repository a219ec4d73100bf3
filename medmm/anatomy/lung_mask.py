"""Lung segmentation on CT without learned weights.

Steps (classical threshold-and-morphology lung segmentation, cf. Hu, Hoffman & Reinhardt,
IEEE TMI 20:490, 2001; Armato & Sensakovic, Acad. Radiol. 11:1011, 2004, on keeping
juxtapleural nodules):

1. **Body**: voxels above -500 HU, largest 3D component (this drops the table and
   anything outside the patient), holes filled slice by slice.
2. **Air inside the body** below -400 HU, on a working grid of about 1.5 mm in-plane.
3. **Airways**: grown from the trachea at the top of the body with a stricter threshold
   (-950 HU), stopping at the first generation that would leak; removed (dilated once)
   from the air mask.
4. **Lungs**: the two largest components; when the lungs touch (a single component),
   the mask is eroded until it splits and the two parts are grown back inside it.
   Left/right come from the component centroids (LPS: +x is the patient's left).
5. **Holes and pleural concavities**: each lung is closed with a 15 mm ball (on a ~3 mm
   grid; half the largest nodule diameter, so a 30 mm juxtapleural mass stays in) and its
   enclosed voids filled (``fill_voids``), so vessels and juxtapleural nodules -- which
   make dents in the pleural surface that a threshold cuts out -- stay inside.
6. Back on the full grid, the lungs are the full-resolution air voxels of each lung plus
   what the closing added, so edges keep the original resolution.

Raises :class:`~medmm.errors.UnsupportedSeriesError` ("no lungs found ...") when the
volume has no lung-sized air regions (head CT, MR, phantoms of other body parts).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cc3d
import fill_voids
import numpy as np
from scipy import ndimage

from medmm.errors import UnsupportedSeriesError
from medmm.types import Volume

__all__ = ["LungSegmentation", "segment_lungs"]

logger = logging.getLogger(__name__)

BODY_HU = -500.0
AIR_HU = -400.0
AIRWAY_HU = -950.0
MIN_LUNG_ML = 150.0
CLOSING_RADIUS_MM = 15.0


@dataclass(frozen=True, eq=False)
class LungSegmentation:
    """Result of :func:`segment_lungs`.

    Attributes:
        lungs: 0 outside, 1 right lung, 2 left lung.
        body: Patient body (no table, no outside air).
        airways: Trachea and main bronchi found by the airway growth.
        notes: What was done that a reader should know (e.g. lungs split by erosion).

    Shapes:
        All masks: the volume's ``(Z, Y, X)``.
    """

    lungs: np.ndarray
    body: np.ndarray
    airways: np.ndarray
    notes: tuple[str, ...] = ()

    @property
    def lung_mask(self) -> np.ndarray:
        """Both lungs as one boolean mask."""
        return self.lungs > 0


def _series(volume: Volume) -> str | None:
    return volume.info.series_uid if volume.info is not None else None


def _working_factors(volume: Volume, target_mm: float = 1.5) -> tuple[int, int, int]:
    dz, dy, dx = volume.spacing_mm
    return (max(1, int(target_mm / dz + 0.25)), max(1, int(target_mm / dy + 0.25)), max(1, int(target_mm / dx + 0.25)))


def _body_mask(hu: np.ndarray) -> np.ndarray:
    body = hu > BODY_HU
    labels = cc3d.largest_k(body, k=1, connectivity=6)
    body = labels > 0
    for k in range(body.shape[0]):
        body[k] = fill_voids.fill(body[k])
    return body


def _grow_airways(air_strict: np.ndarray, body: np.ndarray) -> np.ndarray:
    """Trachea and central bronchi: the strict-air component entering at an end slice.

    The trachea is a compact air column in the most superior body slice. Which end of the
    array is superior depends on the series' orientation, so both end slices are tried;
    in each, the smallest air blob of tracheal size (10-400 voxels on the ~1.5 mm grid) is
    followed in 3D, and kept unless it grows beyond 2 % of the volume (a leak into a lung).
    """
    labels = cc3d.connected_components(air_strict, connectivity=6)
    airway = np.zeros_like(air_strict)
    for k in (air_strict.shape[0] - 1, 0):
        if not body[k].any():
            continue
        lab, count = ndimage.label(air_strict[k] & body[k])
        if not count:
            continue
        sizes = ndimage.sum_labels(np.ones_like(lab), lab, index=np.arange(1, count + 1))
        fitting = [i for i in np.argsort(sizes) if 10 <= sizes[i] <= 400]
        if not fitting:
            continue
        seed = np.argwhere(lab == fitting[0] + 1)[0]
        comp = labels[k, seed[0], seed[1]]
        if comp and (labels == comp).sum() < 0.02 * air_strict.size:
            airway |= labels == comp
    return airway


def _coarse_step(spacing: tuple[float, float, float]) -> tuple[int, int, int]:
    """Stride that brings a grid to about 3 mm (for the morphology that needs no detail)."""
    return tuple(max(1, round(3.0 / s)) for s in spacing)  # type: ignore[return-value]


def _expand_to(small: np.ndarray, step: tuple[int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour upsampling of a strided array back to ``shape``."""
    return small[
        np.ix_(*[np.repeat(np.arange(n_s), f)[:n] for n_s, f, n in zip(small.shape, step, shape, strict=True)])
    ]


def _split_joined(lung: np.ndarray, spacing: tuple[float, float, float]) -> tuple[np.ndarray, str]:
    """Split one component holding both lungs by eroding (on a ~3 mm grid) until it falls apart."""
    step = _coarse_step(spacing)
    coarse = lung[:: step[0], :: step[1], :: step[2]]
    struct = ndimage.generate_binary_structure(3, 1)
    eroded = coarse.copy()
    for it in range(1, 10):
        eroded = ndimage.binary_erosion(eroded, struct)
        labels, count = ndimage.label(eroded)
        if count < 2:
            continue
        sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
        order = np.argsort(sizes)[::-1]
        if sizes[order[1]] <= 0.2 * sizes[order[0]]:
            continue
        seeds = np.zeros(coarse.shape, np.uint8)
        seeds[labels == order[0] + 1] = 1
        seeds[labels == order[1] + 1] = 2
        c_spacing = tuple(s * f for s, f in zip(spacing, step, strict=True))
        _, nearest = ndimage.distance_transform_edt(seeds == 0, sampling=c_spacing, return_indices=True)
        grown = seeds[tuple(nearest)] * coarse
        out = _expand_to(grown, step, lung.shape) * lung
        # Voxels the coarse grid missed take a neighbour's label.
        for _ in range(4):
            missing = lung & (out == 0)
            if not missing.any():
                break
            out[missing] = ndimage.grey_dilation(out, size=3)[missing]
        out[lung & (out == 0)] = 1
        return out.astype(np.uint8), f"lungs touching: separated after {it} erosion step(s) on a 3 mm grid"
    raise ValueError("could not separate the lungs")


def segment_lungs(volume: Volume) -> LungSegmentation:
    """Segment body, airways and the right and left lungs of a chest CT.

    Args:
        volume: CT in HU.

    Returns:
        The masks on the volume's grid.

    Raises:
        UnsupportedSeriesError: No lung-sized air regions (not a chest CT).
    """
    hu = volume.array
    factors = _working_factors(volume)
    small = hu[:: factors[0], :: factors[1], :: factors[2]]
    spacing = tuple(s * f for s, f in zip(volume.spacing_mm, factors, strict=True))
    voxel_ml = float(np.prod(spacing)) / 1000.0
    notes: list[str] = []

    body = _body_mask(small)
    air = (small < AIR_HU) & body
    airways = _grow_airways((small < AIRWAY_HU) & body, body)
    if airways.any():
        air &= ~ndimage.binary_dilation(airways, iterations=1)
    labels = cc3d.connected_components(air, connectivity=6)
    stats = cc3d.statistics(labels)
    sizes = np.asarray(stats["voxel_counts"][1:], dtype=np.int64)
    order = np.argsort(sizes)[::-1]
    keep = [int(i) + 1 for i in order[:2] if sizes[i] * voxel_ml >= MIN_LUNG_ML]
    if not keep:
        largest = float(sizes.max()) * voxel_ml if sizes.size else 0.0
        raise UnsupportedSeriesError(
            f"no lungs found: the largest air region inside the body is {largest:.0f} mL "
            f"(a lung is at least {MIN_LUNG_ML:.0f} mL)",
            series_uid=_series(volume),
            hint="medmm analyses chest CT; check that this series is a CT of the chest in HU.",
        )
    lungs_small = np.zeros(small.shape, np.uint8)
    if len(keep) == 2 and sizes[keep[1] - 1] > 0.15 * sizes[keep[0] - 1]:
        for n, lab in enumerate(keep, 1):
            lungs_small[labels == lab] = n
    else:
        try:
            lungs_small, note = _split_joined(labels == keep[0], spacing)
            notes.append(note)
        except ValueError:
            lungs_small[labels == keep[0]] = 1
            notes.append("only one lung region found; left/right not separated")
    # Name right (1) and left (2) by centroid: LPS +x is the patient's left.
    centroids_x = []
    for n in (1, 2):
        idx = np.argwhere(lungs_small == n)
        if len(idx):
            centroids_x.append(volume.index_to_world(idx.mean(0) * np.asarray(factors))[0])
    if len(centroids_x) == 2 and centroids_x[0] > centroids_x[1]:
        lungs_small = np.where(lungs_small == 1, 2, np.where(lungs_small == 2, 1, 0)).astype(np.uint8)

    # Close each lung (keeps juxtapleural nodules and vessels) and fill enclosed voids.
    # Closing = dilation then erosion by a ball, done with distance transforms (much
    # faster than a structuring element of this size).
    closed_small = np.zeros_like(lungs_small)
    step = _coarse_step(spacing)
    c_spacing = tuple(s * f for s, f in zip(spacing, step, strict=True))
    pad = tuple(int(np.ceil(CLOSING_RADIUS_MM / s)) + 1 for s in c_spacing)
    for n in (1, 2):
        mask = lungs_small == n
        if not mask.any():
            continue
        sl = ndimage.find_objects(mask.astype(np.uint8))[0]
        sub = mask[sl]
        coarse = np.pad(sub[:: step[0], :: step[1], :: step[2]], [(p, p) for p in pad])
        dilated = ndimage.distance_transform_edt(~coarse, sampling=c_spacing) <= CLOSING_RADIUS_MM
        closed = ndimage.distance_transform_edt(dilated, sampling=c_spacing) > CLOSING_RADIUS_MM
        closed = closed[tuple(slice(p, closed.shape[a] - p) for a, p in enumerate(pad))]
        closed = _expand_to(closed, step, sub.shape)
        closed = fill_voids.fill(closed | sub) & body[sl]
        region = closed_small[sl]
        region[closed & (region == 0)] = n

    # Back to full resolution. Inside each closed lung (one coarse voxel in from its edge)
    # every voxel belongs to the lung, vessels included; on the edge only air voxels, plus
    # whatever the closing added (pleural dents, juxtapleural nodules).
    interior = np.zeros(closed_small.shape, bool)
    for n in (1, 2):
        interior |= ndimage.binary_erosion(closed_small == n)
    # Pack what the full grid needs into one byte so it is expanded once.
    packed = (
        closed_small
        | (interior.astype(np.uint8) << 2)
        | ((lungs_small == 0).astype(np.uint8) << 3)
        | (body.astype(np.uint8) << 4)
        | (airways.astype(np.uint8) << 5)
    )
    full = _expand_to(packed, factors, hu.shape)
    air_full = hu < AIR_HU
    up = full & 3
    keep_full = ((full & 12) > 0) | air_full
    body_full = (full & 16) > 0
    lungs = np.where((up > 0) & keep_full & body_full, up, 0).astype(np.uint8)
    airways_full = ((full & 32) > 0) & air_full
    lungs[airways_full] = 0
    for note in notes:
        logger.info("series %s: %s", _series(volume), note)
    return LungSegmentation(lungs, body_full, airways_full, tuple(notes))
