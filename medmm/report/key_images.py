"""Key images for the HTML report: PNGs rendered with numpy + Pillow (no GUI toolkit).

* :func:`nodule_key_image` -- the axial slice through a nodule's centre (lung window,
  -1350..150 HU), cropped to a square around it, with the nodule's outline in red;
* :func:`lobe_map_image` -- a coronal slice through the lungs with the five lobes coloured.

Pixels are resampled to square millimetres, so an anisotropic grid is not stretched.

Example:
    >>> png = nodule_key_image(volume, result.maps.nodules, result.nodules[0], 1)   # doctest: +SKIP
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from medmm.types import DetectedNodule, Volume
from medmm.viz.render import OVERLAY_COLOURS, WINDOWS

__all__ = ["LOBE_COLOURS", "lobe_map_image", "nodule_key_image", "png_bytes"]

LUNG_WINDOW_HU = WINDOWS["lung"]
LOBE_COLOURS: dict[int, tuple[int, int, int]] = {
    label: (int(r), int(g), int(b)) for label, (r, g, b) in enumerate(OVERLAY_COLOURS[1:6], start=1)
}
"""RUL, RML, RLL, LUL, LLL -> the viewer's overlay colours (Okabe-Ito: readable with colour-vision deficiency)."""
_OUTLINE = np.array([255, 40, 40], dtype=np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 image as PNG."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _window(hu: np.ndarray) -> np.ndarray:
    lo, hi = LUNG_WINDOW_HU
    grey = np.clip((hu - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def _resize(rgb: np.ndarray, pixel_mm: tuple[float, float], width_px: int, nearest: bool = False) -> np.ndarray:
    """Resample to square pixels, ``width_px`` wide."""
    h_mm, w_mm = rgb.shape[0] * pixel_mm[0], rgb.shape[1] * pixel_mm[1]
    height_px = max(1, round(width_px * h_mm / w_mm))
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(rgb).resize((width_px, height_px), method))


def _outline(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def nodule_key_image(
    volume: Volume, nodule_labels: np.ndarray, nodule: DetectedNodule, label: int, *, fov_mm: float = 60.0
) -> np.ndarray:
    """The axial slice through a nodule, cropped around it, with its outline.

    Args:
        volume: CT in HU.
        nodule_labels: The result's nodule label map.
        nodule: The nodule.
        label: Its value in ``nodule_labels``.
        fov_mm: Width of the crop (at least 3 diameters is used when the nodule is larger).

    Returns:
        RGB image, 256 pixels wide.

    Shapes:
        nodule_labels: the volume's ``(Z, Y, X)``; output ``(H, 256, 3)``.
    """
    k, j, i = nodule.voxel_index
    row_mm, col_mm = float(volume.spacing_mm[1]), float(volume.spacing_mm[2])
    half = 0.5 * max(fov_mm, 3.0 * nodule.diameter_mm)
    hj, hi = int(np.ceil(half / row_mm)), int(np.ceil(half / col_mm))
    rows = slice(max(j - hj, 0), min(j + hj + 1, volume.shape[1]))
    cols = slice(max(i - hi, 0), min(i + hi + 1, volume.shape[2]))
    rgb = _window(volume.array[k, rows, cols])
    mask = nodule_labels[k, rows, cols] == label
    big = _resize(rgb, (row_mm, col_mm), 256)
    mask_big = _resize(mask.astype(np.uint8) * 255, (row_mm, col_mm), 256, nearest=True) > 127
    big = big.copy()
    big[_outline(mask_big)] = _OUTLINE
    return big


def lobe_map_image(volume: Volume, lobes: np.ndarray, *, alpha: float = 0.45) -> np.ndarray:
    """A coronal slice through the lungs' centre with the lobes coloured.

    Args:
        volume: CT in HU.
        lobes: Lobe labels (0 outside, 1..5 RUL, RML, RLL, LUL, LLL).
        alpha: Colour opacity.

    Returns:
        RGB image, 384 pixels wide, head at the top.

    Shapes:
        lobes: the volume's ``(Z, Y, X)``; output ``(H, 384, 3)``.
    """
    inside = np.flatnonzero((lobes > 0).any(axis=(0, 2)))
    j = int(inside[len(inside) // 2]) if len(inside) else volume.shape[1] // 2
    hu = volume.array[:, j, :]
    lab = lobes[:, j, :]
    rgb = _window(hu).astype(np.float32)
    for value, colour in LOBE_COLOURS.items():
        sel = lab == value
        rgb[sel] = (1 - alpha) * rgb[sel] + alpha * np.asarray(colour, np.float32)
    rgb8 = rgb.astype(np.uint8)
    if volume.affine[2, 0] > 0:  # axis 0 runs foot -> head: put the head at the top
        rgb8 = rgb8[::-1]
    return _resize(np.ascontiguousarray(rgb8), (float(volume.spacing_mm[0]), float(volume.spacing_mm[2])), 384)
