"""The fixed grid the volume encoder sees: the lungs' box at 2 mm, and its 8 mm tokens.

The lungs' bounding box (+10 mm) is resampled to 2 mm voxels, axis-aligned with the
series grid, and padded to a multiple of :data:`TOKEN_STRIDE` voxels so that each token
covers exactly a 4 x 4 x 4 block (8 mm). Token positions are the blocks' centres in world
LPS mm, so attention maps can be placed back into any grid.

Example:
    >>> grid = lung_grid(volume, anatomy.lobes.labels)          # doctest: +SKIP
    >>> grid.hu.shape, grid.token_shape                         # doctest: +SKIP
    ((152, 112, 144), (38, 28, 36))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medmm.grid import mask_box
from medmm.types import Volume

__all__ = ["GRID_SPACING_MM", "TOKEN_STRIDE", "LungGrid", "lung_grid"]

GRID_SPACING_MM = 2.0
TOKEN_STRIDE = 4
N_LOBES = 5
MARGIN_MM = 10.0


@dataclass(frozen=True, eq=False)
class LungGrid:
    """CT and lobe labels of the lungs' box on the encoder grid.

    Attributes:
        hu: CT values (HU) on the 2 mm grid.
        lobes: Lobe labels (0 outside the lungs, 1 RUL, 2 RML, 3 RLL, 4 LUL, 5 LLL).
        affine: Voxel index ``(k, j, i)`` -> LPS mm (4 x 4), like :class:`medmm.types.Volume`.
        nodules: Nodule labels on the same grid when given (training targets), else None.

    Shapes:
        hu, lobes, nodules: (Z, Y, X), each a multiple of ``TOKEN_STRIDE``.
    """

    hu: np.ndarray
    lobes: np.ndarray
    affine: np.ndarray
    nodules: np.ndarray | None = None

    @property
    def token_shape(self) -> tuple[int, int, int]:
        """Token grid shape (each axis the voxel grid's divided by the stride)."""
        return tuple(n // TOKEN_STRIDE for n in self.hu.shape)  # type: ignore[return-value]

    def token_positions_lps_mm(self) -> np.ndarray:
        """World position of every token's centre, in C order of the token grid.

        Shapes:
            return: (N, 3) with N = prod(token_shape).
        """
        idx = np.stack(np.meshgrid(*[np.arange(n) for n in self.token_shape], indexing="ij"), -1).reshape(-1, 3)
        vox = idx * TOKEN_STRIDE + (TOKEN_STRIDE - 1) / 2.0
        return vox @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lobe_fractions(self) -> np.ndarray:
        """Share of each token's voxels in each lobe (columns RUL..LLL).

        Shapes:
            return: (N, 5).
        """
        s = TOKEN_STRIDE
        z, y, x = self.token_shape
        blocks = self.lobes.reshape(z, s, y, s, x, s)
        out = np.stack([(blocks == lab).mean(axis=(1, 3, 5)) for lab in range(1, N_LOBES + 1)], -1)
        return out.reshape(-1, N_LOBES).astype(np.float32)

    def voxel_to_world(self, idx: np.ndarray) -> np.ndarray:
        """Grid voxel indices ``(k, j, i)`` -> LPS mm. Shapes: idx (N, 3) -> (N, 3)."""
        return np.asarray(idx, float) @ self.affine[:3, :3].T + self.affine[:3, 3]


def lung_grid(
    volume: Volume,
    lobes: np.ndarray,
    *,
    nodules: np.ndarray | None = None,
    spacing_mm: float = GRID_SPACING_MM,
) -> LungGrid:
    """Resample the lungs' box of a CT (and its lobe labels) to the encoder grid.

    Args:
        volume: CT in HU.
        lobes: Lobe labels on the volume's grid (0 outside the lungs).
        nodules: Nodule labels on the volume's grid, resampled alongside (training).
        spacing_mm: Output voxel size.

    Returns:
        The :class:`LungGrid`; padding voxels hold -1000 HU and label 0.

    Raises:
        ValueError: ``lobes`` is empty or not on the volume's grid.
    """
    if lobes.shape != volume.shape:
        raise ValueError(f"lobe labels {lobes.shape} are not on the volume grid {volume.shape}")
    box = mask_box(lobes > 0, volume.spacing_mm, MARGIN_MM)
    if box is None:
        raise ValueError("empty lobe labels")
    start = np.array([b.start for b in box], float)
    n_in = np.array([b.stop - b.start for b in box], float)
    n_out = np.maximum(np.round(n_in * np.array(volume.spacing_mm) / spacing_mm).astype(int), 1)
    step = n_in / n_out  # input voxels per output voxel (output spacing = step * input spacing)
    # Output voxel c covers input [c*step, (c+1)*step): its centre is at c*step + step/2 - 1/2.
    coords = [np.arange(n) * st + st / 2 - 0.5 for n, st in zip(n_out, step, strict=True)]
    mesh = np.meshgrid(*coords, indexing="ij", sparse=True)
    sub_hu = volume.array[box].astype(np.float32, copy=False)
    full = [np.broadcast_to(m, tuple(n_out)) for m in mesh]
    hu = ndimage.map_coordinates(sub_hu, full, order=1, mode="nearest")
    lab = ndimage.map_coordinates(lobes[box], full, order=0, mode="nearest").astype(np.uint8)
    pad = [(0, (-n) % TOKEN_STRIDE) for n in hu.shape]
    hu = np.pad(hu, pad, constant_values=-1000.0).astype(np.float32)
    lab = np.pad(lab, pad, constant_values=0)
    nod = None
    if nodules is not None:
        nod = ndimage.map_coordinates(nodules[box], full, order=0, mode="nearest").astype(np.uint8)
        nod = np.pad(nod, pad, constant_values=0)
    affine = np.array(volume.affine, dtype=np.float64)
    origin_idx = start + step / 2 - 0.5
    affine[:3, 3] = volume.affine[:3, :3] @ origin_idx + volume.affine[:3, 3]
    affine[:3, :3] = volume.affine[:3, :3] * step[None, :]
    return LungGrid(hu=hu, lobes=lab, affine=affine, nodules=nod)
