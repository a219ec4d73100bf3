from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medmm.errors import InputError
from medmm.io.nifti import read_nifti, write_nifti
from medmm.types import Volume


def _oblique_volume() -> Volume:
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    aff = np.eye(4)
    aff[:3, :3] = q * np.array([2.5, 0.7, 0.6])
    aff[:3, 3] = (-120.5, 33.0, 410.25)
    return Volume(rng.normal(size=(5, 7, 9)).astype(np.float32), aff)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_round_trip_keeps_values_and_geometry(tmp_path: Path, suffix: str) -> None:
    vol = _oblique_volume()
    path = tmp_path / f"vol{suffix}"
    write_nifti(vol, path)
    back = read_nifti(path)
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-5)  # stored as float32 in the header
    assert not list(tmp_path.glob(".tmp-*")), "atomic write left a temporary file"


def test_nifti_geometry_agrees_with_simpleitk(tmp_path: Path) -> None:
    sitk = pytest.importorskip("SimpleITK")
    vol = _oblique_volume()
    write_nifti(vol, tmp_path / "v.nii.gz")
    img = sitk.ReadImage(str(tmp_path / "v.nii.gz"))  # ITK reports LPS, axes (x, y, z)
    np.testing.assert_allclose(img.GetOrigin(), vol.origin_lps_mm, atol=1e-4)
    np.testing.assert_allclose(img.GetSpacing()[::-1], vol.spacing_mm, atol=1e-5)
    np.testing.assert_allclose(np.asarray(img.GetDirection()).reshape(3, 3)[:, ::-1], vol.direction, atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), vol.array)


def test_mask_keeps_its_dtype(tmp_path: Path) -> None:
    vol = _oblique_volume()
    mask = vol.with_array((vol.array > 0).astype(np.uint8))
    write_nifti(mask, tmp_path / "m.nii.gz")
    assert read_nifti(tmp_path / "m.nii.gz", dtype=None).array.dtype == np.uint8


def test_bad_nifti_raises_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nii"
    bad.write_bytes(b"not nifti")
    with pytest.raises(InputError, match=r"bad\.nii"):
        read_nifti(bad)
