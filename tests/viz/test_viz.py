"""medmm.viz: orientation and aspect in all three planes, any affine; show() without a kernel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medmm.io.nifti import write_nifti
from medmm.types import Volume
from medmm.viz import Plane, render_slice, show
from tests.conftest import sphere_phantom

CENTRE = np.array([12.0, -9.0, 15.0])  # LPS mm, off-centre on every axis


def _affine(spacing: tuple[float, float, float], cols: np.ndarray, origin: tuple[float, float, float]) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = cols * np.asarray(spacing)
    aff[:3, 3] = origin
    return aff


AXIAL = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], float)  # array (k, j, i) -> (z, y, x)
CASES = {
    "axial": _affine((2.5, 0.8, 0.8), AXIAL, (-30.0, -35.0, -20.0)),
    "x and y flipped": _affine((2.5, 0.8, 0.8), AXIAL @ np.diag([1, 1, 1]) * [[1, -1, -1]], (30.0, 35.0, -20.0)),
    "feet first": _affine((2.5, 0.8, 0.8), AXIAL * [[-1, 1, 1]], (-30.0, -35.0, 40.0)),
    # a coronal acquisition: array axis 0 runs posterior -> anterior, rows superior -> inferior
    "coronal": _affine((1.5, 1.0, 0.7), np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float), (-30.0, 30.0, 40.0)),
}


def _phantom(affine: np.ndarray) -> tuple[Volume, np.ndarray]:
    vol = sphere_phantom((24, 72, 72) if affine[2, 0] != 0 else (40, 40, 80), affine, tuple(CENTRE), 6.0)
    return vol, (vol.array > -400).astype(np.uint8)


def _extent(vol: Volume) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in vol.shape], indexing="ij")).reshape(3, -1).T
    world = vol.index_to_world(corners.astype(float))
    return world.min(axis=0), world.max(axis=0)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("plane", list(Plane))
def test_overlay_lands_on_the_nodule_in_every_plane(name: str, plane: Plane) -> None:
    vol, mask = _phantom(CASES[name])
    lo, hi = _extent(vol)
    axis = {Plane.AXIAL: 0, Plane.CORONAL: 1, Plane.SAGITTAL: 2}[plane]
    plain = render_slice(vol, plane, 0)
    canon_centre = plain.canon.index(vol.world_to_index(CENTRE))
    view = render_slice(vol, plane, round(canon_centre[axis]), labels=mask, alpha=0.8)
    bare = render_slice(vol, plane, round(canon_centre[axis]))
    h, w = view.rgb.shape[:2]
    # Where the centre must appear, from world extents alone (radiological convention):
    # axial rows A->P, columns R->L; coronal rows S->I, columns R->L; sagittal rows S->I, columns A->P.
    x, y, z = (CENTRE - lo) / (hi - lo)
    row_frac, col_frac = {Plane.AXIAL: (y, x), Plane.CORONAL: (1 - z, x), Plane.SAGITTAL: (1 - z, y)}[plane]
    row, col = round(row_frac * (h - 1)), round(col_frac * (w - 1))
    assert np.allclose(view.pixel_of_world(CENTRE), (row, col), atol=2.0)
    tinted = view.rgb[row, col].astype(int) - bare.rgb[row, col].astype(int)
    assert tinted[0] - tinted[2] > 60, f"no overlay at the nodule ({row}, {col}) in {plane} for {name}"
    # Square millimetre pixels: the image has the world extent's aspect ratio.
    span = (hi - lo) + np.abs(vol.direction @ np.asarray(vol.spacing_mm))
    rows_mm, cols_mm = {
        Plane.AXIAL: (span[1], span[0]),
        Plane.CORONAL: (span[2], span[0]),
        Plane.SAGITTAL: (span[2], span[1]),
    }[plane]
    assert abs((w / h) - cols_mm / rows_mm) < 0.05 * cols_mm / rows_mm
    # The readout maps the pixel back to the centre.
    assert np.linalg.norm(view.world_of_pixel(row, col) - CENTRE) < 2.5


def test_show_is_a_static_figure_outside_a_kernel_and_reads_nifti(tmp_path: Path) -> None:
    vol, _ = _phantom(CASES["feet first"])
    write_nifti(vol, tmp_path / "v.nii.gz")
    from medmm.io import read_nifti

    fig = show(read_nifti(tmp_path / "v.nii.gz"))
    assert type(fig).__name__ == "Figure" and len(fig.axes) == 3
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 5_000
