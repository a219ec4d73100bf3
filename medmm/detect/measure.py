"""Nodule extent on a voxel grid: the thresholded component around a detected centre.

One rule, used twice: the detector measures ``volume_mm3`` with it on the 1 mm lung region,
and the pipeline paints each reported nodule into a label map on the CT's own grid (what
DICOM SEG, NIfTI and the HTML outlines show).

The rule: voxels above a texture-dependent threshold (-400 HU solid, -650 HU part-solid,
-750 HU ground glass) within 0.75 predicted diameters of the centre, connected (6-neighbour)
to the centre voxel; when the centre voxel is below threshold (a cavity), the largest such
component.

Example:
    >>> box, mask = nodule_mask(volume, center_idx, 8.0, NoduleTexture.SOLID)   # doctest: +SKIP
    >>> float(mask.sum() * np.prod(volume.spacing_mm))                          # mm^3  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medmm.types import NoduleTexture, Volume

__all__ = ["THRESHOLD_HU", "nodule_mask"]

THRESHOLD_HU: dict[NoduleTexture, float] = {
    NoduleTexture.SOLID: -400.0,
    NoduleTexture.PART_SOLID: -650.0,
    NoduleTexture.GROUND_GLASS: -750.0,
}


def nodule_mask(
    volume: Volume, center_idx: npt.ArrayLike, diameter_mm: float, texture: NoduleTexture | str
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """The nodule's voxels in a box around its centre.

    Args:
        volume: CT in HU (any spacing; the sphere is measured in mm).
        center_idx: Centre as fractional array indices ``(k, j, i)``.
        diameter_mm: Predicted diameter.
        texture: Attenuation class; picks the HU threshold.

    Returns:
        ``(box, mask)``: the box as array slices and a boolean mask of the box's shape
        (all False when nothing is above threshold or the box is empty).

    Shapes:
        mask: ``(box_z, box_y, box_x)``, at most ``1.5 * diameter`` mm per side plus a voxel.
    """
    spacing = np.asarray(volume.spacing_mm, dtype=float)
    center = np.asarray(center_idx, dtype=float)
    radius_mm = 0.75 * float(diameter_mm)
    reach = np.ceil(radius_mm / spacing).astype(int) + 1
    c = np.rint(center).astype(int)
    lo = np.clip(c - reach, 0, volume.shape)
    hi = np.clip(c + reach + 1, 0, volume.shape)
    box = (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2])))
    if np.any(hi <= lo):
        return box, np.zeros(tuple(int(v) for v in np.maximum(hi - lo, 0)), dtype=bool)
    sub = volume.array[box]
    axes = [(np.arange(lo[a], hi[a]) - center[a]) * spacing[a] for a in range(3)]
    dist2 = axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2
    fg = (sub > THRESHOLD_HU[NoduleTexture(texture)]) & (dist2 <= radius_mm**2)
    labels, _ = ndimage.label(fg)
    local = np.clip(c - lo, 0, np.asarray(sub.shape) - 1)
    lab = int(labels[tuple(local)])
    if lab == 0:
        counts = np.bincount(labels.ravel())
        counts[0] = 0
        if counts.max() == 0:
            return box, np.zeros(sub.shape, dtype=bool)
        lab = int(np.argmax(counts))
    return box, labels == lab
