"""Synthetic series with broken geometry: each is corrected or refused, never loaded wrong."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from medmm.errors import InputError, SeriesGeometryError, UnsupportedSeriesError
from medmm.io import load_series, scan
from medmm.synth import SeriesTemplate, write_ct_series, write_ct_slice
from medmm.types import Volume
from tests.conftest import axial_affine, sphere_phantom

AXIAL = (1, 0, 0, 0, 1, 0)


def _write_slices(
    folder: Path,
    seed: int,
    z_mm: list[float],
    *,
    sizes: list[int] | None = None,
    orientations: list[tuple[float, ...]] | None = None,
    spacing_mm: float = 1.0,
) -> None:
    """One small CT file per z position, named 0.dcm, 1.dcm, ... (value = its index)."""
    tpl = SeriesTemplate(seed=seed)
    for n, z in enumerate(z_mm):
        size = sizes[n] if sizes else 8
        write_ct_slice(
            folder / f"{n}.dcm",
            np.full((size, size), n),
            [0, 0, z],
            orientations[n] if orientations else AXIAL,
            (spacing_mm, spacing_mm),
            tpl,
            instance_number=n + 1,
            slice_thickness_mm=2,
        )


def _centroid_lps(vol: Volume, threshold_hu: float = -400.0) -> np.ndarray:
    w = np.clip(vol.array - threshold_hu, 0, None).astype(np.float64)
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in vol.shape), indexing="ij"), -1)
    centre_idx = (idx * w[..., None]).reshape(-1, 3).sum(0) / w.sum()
    return vol.index_to_world(centre_idx)


def test_clean_series_round_trips_exactly(tmp_path: Path, small_ct: Volume) -> None:
    write_ct_series(small_ct, tmp_path, seed=3)
    vol = load_series(tmp_path)
    np.testing.assert_array_equal(vol.array, np.rint(small_ct.array))
    np.testing.assert_allclose(vol.affine, small_ct.affine, atol=1e-5)
    assert vol.info is not None and vol.info.corrections == () and len(vol.info.slice_sop_uids) == 24


def test_shuffled_file_order_and_instance_numbers_are_ignored(tmp_path: Path, small_ct: Volume) -> None:
    files = write_ct_series(small_ct, tmp_path / "src", seed=4)
    order = list(range(len(files)))
    random.Random(0).shuffle(order)
    dst = tmp_path / "shuffled"
    dst.mkdir()
    for new_name, k in enumerate(order):
        # File name and InstanceNumber both disagree with the true position.
        write_ct_slice(
            dst / f"{new_name:03d}.dcm",
            small_ct.array[k],
            small_ct.index_to_world([k, 0, 0]).tolist(),
            [1, 0, 0, 0, 1, 0],
            (0.8, 0.8),
            SeriesTemplate(seed=4),
            instance_number=len(files) - new_name,
            slice_thickness_mm=2.0,
        )
    vol = load_series(dst)
    np.testing.assert_array_equal(vol.array, np.rint(small_ct.array))
    np.testing.assert_allclose(vol.affine, small_ct.affine, atol=1e-5)


def test_feet_first_and_oblique_series_keep_their_geometry(tmp_path: Path) -> None:
    theta = math.radians(20)
    rot = np.array([[1, 0, 0], [0, math.cos(theta), -math.sin(theta)], [0, math.sin(theta), math.cos(theta)]])
    aff = np.eye(4)
    # columns (z, y, x) = (-normal, column dir, row dir): slices stored going down, oblique
    aff[:3, :3] = np.stack([-2.5 * rot[:, 2], 0.9 * rot[:, 1], 0.9 * rot[:, 0]], axis=1)
    aff[:3, 3] = (-20, -15, 40)
    phantom = sphere_phantom((16, 40, 40), aff, tuple(aff[:3, :3] @ [8, 20, 20] + aff[:3, 3]), 5.0)
    write_ct_series(phantom, tmp_path, seed=5)
    vol = load_series(tmp_path)
    # Loaded in ascending position along the normal: the same grid, flipped in z.
    np.testing.assert_array_equal(vol.array, np.rint(phantom.array[::-1]))
    np.testing.assert_allclose(vol.index_to_world([0, 0, 0]), phantom.index_to_world([15, 0, 0]), atol=1e-4)
    np.testing.assert_allclose(_centroid_lps(vol), _centroid_lps(phantom), atol=1e-3)


def test_missing_slice_is_refused_then_resampled_on_request(tmp_path: Path, small_ct: Volume) -> None:
    files = write_ct_series(small_ct, tmp_path, seed=6)
    files[10].unlink()
    with pytest.raises(SeriesGeometryError, match=r"1 missing slice.*CT0010\.dcm and CT0012\.dcm") as err:
        load_series(tmp_path)
    assert err.value.series_uid
    vol = load_series(tmp_path, geometry_policy="resample")
    assert vol.shape == small_ct.shape
    np.testing.assert_allclose(vol.affine, small_ct.affine, atol=1e-5)
    assert vol.info is not None and "missing slice" in vol.info.corrections[0]
    np.testing.assert_allclose(vol.array[10], 0.5 * (np.rint(small_ct.array[9]) + np.rint(small_ct.array[11])))
    np.testing.assert_array_equal(vol.array[11], np.rint(small_ct.array[11]))


def test_unknown_policy_is_answered_with_the_choices(tmp_path: Path, small_ct: Volume) -> None:
    write_ct_series(small_ct, tmp_path, seed=6)
    with pytest.raises(InputError, match="raise, resample"):
        load_series(tmp_path, geometry_policy="guess")


def test_uneven_spacing_is_refused(tmp_path: Path) -> None:
    _write_slices(tmp_path, 7, [0.0, 2.0, 4.0, 6.0, 7.3, 9.3, 11.3])
    with pytest.raises(SeriesGeometryError, match="uneven slice spacing"):
        load_series(tmp_path)


def test_gantry_tilt_is_resampled_onto_an_orthogonal_grid(tmp_path: Path) -> None:
    tilt = math.radians(15.0)
    spacing_z, px = 2.0, 0.8
    # Image rows tilt about the patient x axis; slices are stacked along the table (z).
    col_dir = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
    row_dir = np.array([1.0, 0.0, 0.0])
    aff = np.eye(4)
    aff[:3, 0] = (0, 0, spacing_z)  # stacking direction = table, not the slice normal
    aff[:3, 1] = col_dir * px
    aff[:3, 2] = row_dir * px
    aff[:3, 3] = (-19.0, -25.0, -24.0)
    centre = (0.0, -2.0, 0.0)
    tilted = sphere_phantom((24, 56, 48), aff, centre, 6.0)
    assert not tilted.is_orthogonal
    write_ct_series(tilted, tmp_path, seed=8)
    vol = load_series(tmp_path)
    assert vol.is_orthogonal
    assert vol.info is not None and "gantry tilt of 15.00 degrees corrected" in vol.info.corrections[0]
    # The nodule stays where it is in the patient (a naive stack would move it by ~6 mm).
    assert np.linalg.norm(_centroid_lps(vol) - np.asarray(centre)) < 0.3
    naive = Volume(vol.array, axial_affine((spacing_z, px, px), tuple(aff[:3, 3])))
    assert np.linalg.norm(_centroid_lps(naive) - np.asarray(centre)) > 2.0
    assert vol.spacing_mm[0] == pytest.approx(spacing_z * math.cos(tilt), rel=1e-4)


def test_mixed_matrix_sizes_in_one_series_are_refused(tmp_path: Path) -> None:
    _write_slices(tmp_path, 9, [2.0 * n for n in range(6)], sizes=[512] * 4 + [256] * 2, spacing_mm=0.7)
    with pytest.raises(SeriesGeometryError, match=r"mixed matrix sizes.*512x512: 4 slices.*256x256: 2 slices"):
        load_series(tmp_path)


def test_two_slices_at_the_same_position_are_refused(tmp_path: Path) -> None:
    _write_slices(tmp_path, 10, [0.0, 2.0, 4.0, 4.0, 6.0])
    with pytest.raises(SeriesGeometryError, match=r"share a position.*2\.dcm and 3\.dcm"):
        load_series(tmp_path)


def test_mixed_orientations_are_refused(tmp_path: Path) -> None:
    _write_slices(tmp_path, 11, [0.0, 2.0, 4.0, 6.0], orientations=[AXIAL] * 3 + [(1, 0, 0, 0, 0, -1)])
    with pytest.raises(SeriesGeometryError, match="mixed image orientations"):
        load_series(tmp_path)


def test_folder_with_two_series_needs_a_choice(tmp_path: Path, small_ct: Volume) -> None:
    write_ct_series(small_ct, tmp_path / "a", SeriesTemplate(seed=12, series_number=1))
    write_ct_series(small_ct, tmp_path / "b", SeriesTemplate(seed=12, series_number=2))
    with pytest.raises(InputError, match="exactly one image series, found 2"):
        load_series(tmp_path)
    assert load_series(scan(tmp_path).series[1]).shape == small_ct.shape


def test_compressed_series_decodes_to_the_same_values(tmp_path: Path, small_ct: Volume) -> None:
    from pydicom.uid import JPEG2000Lossless, RLELossless

    for ts in (RLELossless, JPEG2000Lossless):
        out = tmp_path / str(ts)
        write_ct_series(small_ct, out, seed=13, transfer_syntax=ts)
        np.testing.assert_array_equal(load_series(out).array, np.rint(small_ct.array))


def test_image_without_position_is_unsupported_and_named(tmp_path: Path) -> None:
    tpl = SeriesTemplate(seed=14, extra={})
    path = write_ct_slice(
        tmp_path / "x.dcm",
        np.zeros((8, 8)),
        [0, 0, 0],
        [1, 0, 0, 0, 1, 0],
        (1, 1),
        tpl,
        instance_number=1,
        slice_thickness_mm=1,
    )
    import pydicom

    ds = pydicom.dcmread(path)
    del ds.ImagePositionPatient
    ds.save_as(path)
    with pytest.raises(UnsupportedSeriesError, match=r"x\.dcm has no ImagePositionPatient"):
        load_series(tmp_path)
