"""Patches around candidates, cut from the ~1 mm isotropic lung region.

A patch of size ``S`` around voxel ``c`` of the region spans indices ``c - S/2 .. c + S/2 - 1``
along each axis, so the candidate sits at index ``S/2`` of the patch; the network's offset
head measures from there. Beyond the region, the edge value is repeated (chest wall stays
chest wall). Patches are kept as int16 HU; :func:`normalize_hu` maps them for the network.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["PaddedRegion", "normalize_hu"]

HU_MIN = -1000.0
HU_MAX = 400.0


def normalize_hu(hu: torch.Tensor) -> torch.Tensor:
    """Clip to [-1000, 400] HU and map linearly to [-1, 1] (lung ~ -0.8, soft tissue ~ 0.4).

    Shapes:
        - hu: any; output the same shape, float32
    """
    hu = hu.float().clamp(HU_MIN, HU_MAX)
    return (hu + 300.0) / 700.0


class PaddedRegion:
    """A region's HU array padded once, so any patch is a plain slice.

    Args:
        array: Region HU ``(Z, Y, X)``.
        max_patch: Largest patch size that will be cut.
    """

    def __init__(self, array: np.ndarray, max_patch: int) -> None:
        self.pad = max_patch // 2 + 1
        clipped = np.clip(np.rint(array), -1024, 3071).astype(np.int16)
        self.array = np.pad(clipped, self.pad, mode="edge")

    def patches(self, index: np.ndarray, size: int) -> np.ndarray:
        """Cut cubes of ``size`` voxels with each index at position ``size // 2``.

        Shapes:
            - index: ``(N, 3)`` integer region indices (k, j, i)
            - Output: ``(N, size, size, size)`` int16 HU
        """
        index = np.asarray(index, dtype=np.int64).reshape(-1, 3)
        out = np.empty((len(index), size, size, size), dtype=np.int16)
        lo = index + self.pad - size // 2
        for n, (k, j, i) in enumerate(lo):
            out[n] = self.array[k : k + size, j : j + size, i : i + size]
        return out
