"""Shared fixtures: tiny synthetic CT series built in tmp_path, and the shared real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medmm.types import Volume

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
LIDC_DIR = SHARED_DATA / "lidc-idri-0001"


def require_shared(path: Path) -> Path:
    """Skip the calling test (with the reason) when a shared data path is absent."""
    if not path.exists():
        pytest.skip(f"shared real data not present: {path} (see ../shared/data/README.md)")
    return path


def sphere_phantom(
    shape: tuple[int, int, int],
    affine: np.ndarray,
    center_lps_mm: tuple[float, float, float],
    radius_mm: float,
    inside_hu: float = 40.0,
    outside_hu: float = -850.0,
) -> Volume:
    """A volume whose voxels are `inside_hu` within a world-space sphere, with a smooth edge.

    The value of each voxel is computed from its own world position (through `affine`),
    so any affine -- oblique, flipped or sheared -- samples the same physical object.
    """
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    idx = np.stack([k, j, i], axis=-1).astype(np.float64)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    dist = np.linalg.norm(world - np.asarray(center_lps_mm), axis=-1)
    frac = np.clip(radius_mm + 0.5 - dist, 0.0, 1.0)  # 1 mm soft edge
    arr = outside_hu + frac * (inside_hu - outside_hu)
    return Volume(arr.astype(np.float32), affine)


def axial_affine(spacing_zyx: tuple[float, float, float], origin: tuple[float, float, float]) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], float) * np.asarray(spacing_zyx)
    aff[:3, 3] = origin
    return aff


@pytest.fixture
def small_ct() -> Volume:
    """24 slices of 48x48, 2.0 x 0.8 x 0.8 mm, with a 6 mm sphere at a known place."""
    aff = axial_affine((2.0, 0.8, 0.8), (-19.0, -20.0, -30.0))
    return sphere_phantom((24, 48, 48), aff, (0.0, -2.0, -8.0), 6.0)
