"""Slices for display: the volume turned to the patient axes, sampled on square millimetres.

:func:`canonical` permutes and flips the array axes so that axis 0 runs inferior -> superior,
axis 1 anterior -> posterior and axis 2 right -> left (the LPS axes), choosing for each array
axis the patient axis it is closest to (an oblique grid is shown on its nearest patient
planes, with a note). :func:`render_slice` then cuts one plane in radiological convention

* axial: patient's right on the left of the image, anterior at the top;
* coronal: right on the left, superior at the top;
* sagittal: anterior on the left, superior at the top;

windows it, blends label overlays and resamples to square pixels, so spacing never
stretches the picture. The returned :class:`SliceView` maps world millimetres to image
pixels (the viewers' coordinate readout, and what the tests check against).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image
from scipy import ndimage

from medmm.types import Volume

__all__ = [
    "OVERLAY_COLOURS",
    "WINDOWS",
    "CanonicalVolume",
    "Plane",
    "SliceView",
    "canonical",
    "render_slice",
]

WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-1350.0, 150.0),  # level -600, width 1500
    "mediastinum": (-160.0, 240.0),  # level 40, width 400
    "bone": (-450.0, 1050.0),  # level 300, width 1500
}
"""Window presets as (low, high) HU."""

OVERLAY_COLOURS = np.array(
    [
        (0, 0, 0),
        (230, 159, 0),
        (86, 180, 233),
        (0, 158, 115),
        (204, 121, 167),
        (213, 94, 0),
        (240, 228, 66),
        (0, 114, 178),
    ],
    dtype=np.float32,
)
"""Label colours (Okabe-Ito), indexed by label value modulo 8 (0 unused)."""

_NODULE_RGB = np.array([255, 40, 40], dtype=np.uint8)


class Plane(StrEnum):
    """Display planes."""

    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


@dataclass(frozen=True)
class CanonicalVolume:
    """A volume's arrays on patient-aligned axes (see the module docstring).

    Attributes:
        volume: The original volume.
        perm: Array axes of the original, in canonical order.
        flip: Whether each canonical axis was reversed.
        spacing_mm: Spacing along the canonical axes ``(S, P, L)``.
        oblique: The grid is not aligned with the patient axes (shown on the nearest planes).
    """

    volume: Volume
    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]
    spacing_mm: tuple[float, float, float]
    oblique: bool

    def array(self, data: np.ndarray | None = None) -> np.ndarray:
        """``data`` (default: the volume) as a canonical view (no copy)."""
        arr = self.volume.array if data is None else data
        arr = np.transpose(arr, self.perm)
        return arr[tuple(slice(None, None, -1) if f else slice(None) for f in self.flip)]

    def index(self, index_zyx: np.ndarray) -> np.ndarray:
        """Original array index ``(k, j, i)`` -> canonical index."""
        idx = np.asarray(index_zyx, dtype=float)[list(self.perm)]
        shape = np.asarray(self.volume.shape)[list(self.perm)]
        return np.where(self.flip, shape - 1 - idx, idx)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Canonical shape."""
        s = self.volume.shape
        return (s[self.perm[0]], s[self.perm[1]], s[self.perm[2]])


def canonical(volume: Volume) -> CanonicalVolume:
    """Turn a volume's axes to (inferior->superior, anterior->posterior, right->left)."""
    direction = volume.direction  # column a: world direction of array axis a
    world_of_axis = [int(np.argmax(np.abs(direction[:, a]))) for a in range(3)]
    if len(set(world_of_axis)) != 3:  # degenerate (strongly oblique): keep the array order
        world_of_axis = [2, 1, 0]
    perm = tuple(world_of_axis.index(w) for w in (2, 1, 0))
    flip = tuple(bool(direction[w, a] < 0) for w, a in zip((2, 1, 0), perm, strict=True))
    spacing = tuple(float(volume.spacing_mm[a]) for a in perm)
    oblique = bool(np.max(np.abs(np.abs(direction) - np.round(np.abs(direction)))) > 1e-3)
    return CanonicalVolume(volume, perm, flip, spacing, oblique)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SliceView:
    """One rendered plane.

    Attributes:
        rgb: The image.
        plane: Which plane.
        index: Canonical slice index.
        pixel_mm: Size of one (square) image pixel.
        row_axis: Canonical axis along the image rows, and whether rows run against it.
        col_axis: Canonical axis along the image columns, and whether columns run against it.
        canon: The canonical volume it was cut from.

    Shapes:
        rgb: ``(H, W, 3)`` uint8.
    """

    rgb: np.ndarray
    plane: Plane
    index: int
    pixel_mm: float
    row_axis: tuple[int, bool]
    col_axis: tuple[int, bool]
    canon: CanonicalVolume

    def pixel_of_world(self, lps_mm: np.ndarray) -> tuple[float, float]:
        """(row, column) of a world point projected onto this plane, in image pixels."""
        c = self.canon.index(self.canon.volume.world_to_index(np.asarray(lps_mm, float)))
        shape = self.canon.shape
        out = []
        for axis, reverse in (self.row_axis, self.col_axis):
            v = (shape[axis] - 1 - c[axis]) if reverse else c[axis]
            out.append((v + 0.5) * self.canon.spacing_mm[axis] / self.pixel_mm - 0.5)
        return out[0], out[1]

    def world_of_pixel(self, row: float, col: float) -> np.ndarray:
        """World LPS mm of an image pixel on this plane (the coordinate readout)."""
        c = np.zeros(3)
        plane_axis = {Plane.AXIAL: 0, Plane.CORONAL: 1, Plane.SAGITTAL: 2}[self.plane]
        c[plane_axis] = self.index
        shape = self.canon.shape
        for (axis, reverse), p in ((self.row_axis, row), (self.col_axis, col)):
            v = (p + 0.5) * self.pixel_mm / self.canon.spacing_mm[axis] - 0.5
            c[axis] = (shape[axis] - 1 - v) if reverse else v
        idx = np.zeros(3)
        shape_orig = np.asarray(self.canon.volume.shape)
        for k, a in enumerate(self.canon.perm):
            idx[a] = (shape_orig[a] - 1 - c[k]) if self.canon.flip[k] else c[k]
        return self.canon.volume.index_to_world(idx)


_LAYOUT = {  # plane -> (slice axis, (row axis, rows reversed), (column axis, columns reversed))
    Plane.AXIAL: (0, (1, False), (2, False)),
    Plane.CORONAL: (1, (0, True), (2, False)),
    Plane.SAGITTAL: (2, (0, True), (1, False)),
}


def _take(arr: np.ndarray, axis: int, index: int, rows: tuple[int, bool], cols: tuple[int, bool]) -> np.ndarray:
    plane = np.take(arr, index, axis=axis)
    remaining = [a for a in range(3) if a != axis]
    if remaining.index(rows[0]) == 1:
        plane = plane.T
    if rows[1]:
        plane = plane[::-1]
    if cols[1]:
        plane = plane[:, ::-1]
    return np.ascontiguousarray(plane)


def render_slice(
    volume: Volume | CanonicalVolume,
    plane: Plane | str = Plane.AXIAL,
    index: int | None = None,
    *,
    window: str | tuple[float, float] = "lung",
    labels: np.ndarray | None = None,
    nodules: np.ndarray | None = None,
    heatmap: np.ndarray | None = None,
    alpha: float = 0.4,
    pixel_mm: float | None = None,
) -> SliceView:
    """Render one plane with optional overlays.

    Args:
        volume: CT in HU (or its :func:`canonical` form, to reuse it).
        plane: ``"axial"``, ``"coronal"`` or ``"sagittal"``.
        index: Slice along the plane's canonical axis (default: the middle).
        window: Preset name (:data:`WINDOWS`) or ``(low, high)`` HU.
        labels: Label map on the volume grid (lungs or lobes), blended in colour.
        nodules: Nodule label map on the volume grid, drawn as red outlines.
        heatmap: Non-negative map on the volume grid (e.g. attention), blended as "hot" colour.
        alpha: Overlay opacity.
        pixel_mm: Image pixel size (default: the finer in-plane spacing).

    Returns:
        The slice and its pixel <-> world mapping.

    Shapes:
        labels, nodules, heatmap: the volume's ``(Z, Y, X)``.
    """
    canon = volume if isinstance(volume, CanonicalVolume) else canonical(volume)
    plane = Plane(plane)
    axis, rows, cols = _LAYOUT[plane]
    if index is None:
        index = canon.shape[axis] // 2
    index = int(np.clip(index, 0, canon.shape[axis] - 1))
    lo, hi = WINDOWS[window] if isinstance(window, str) else window
    hu = _take(canon.array(), axis, index, rows, cols)
    grey = np.clip((hu - lo) / (hi - lo) * 255.0, 0, 255).astype(np.float32)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    if labels is not None:
        lab = _take(canon.array(labels), axis, index, rows, cols)
        sel = lab > 0
        rgb[sel] = (1 - alpha) * rgb[sel] + alpha * OVERLAY_COLOURS[lab[sel].astype(int) % 8]
    if heatmap is not None:
        h = _take(canon.array(heatmap), axis, index, rows, cols).astype(np.float32)
        peak = float(h.max()) if h.size else 0.0
        if peak > 0:
            w = (alpha * h / peak)[..., None]
            hot = np.stack([np.full_like(h, 255.0), 255.0 * np.clip(2 * h / peak - 1, 0, 1), np.zeros_like(h)], -1)
            rgb = (1 - w) * rgb + w * hot
    row_mm, col_mm = canon.spacing_mm[rows[0]], canon.spacing_mm[cols[0]]
    pixel = float(pixel_mm or min(row_mm, col_mm))
    height = max(1, round(hu.shape[0] * row_mm / pixel))
    width = max(1, round(hu.shape[1] * col_mm / pixel))
    image = np.asarray(Image.fromarray(rgb.astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR))
    if nodules is not None:
        nod = _take(canon.array(nodules), axis, index, rows, cols)
        big = np.asarray(Image.fromarray((nod > 0).astype(np.uint8) * 255).resize((width, height), Image.NEAREST)) > 0
        edge = big & ~ndimage.binary_erosion(big)
        image = image.copy()
        image[edge] = _NODULE_RGB
    return SliceView(image, plane, index, pixel, rows, cols, canon)
