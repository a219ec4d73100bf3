"""``montage``: every nodule at its best slice, in three planes, with its outline."""

from __future__ import annotations

from typing import Any

import numpy as np

from medmm.types import AnalysisResult, Volume
from medmm.viz.render import Plane, canonical, render_slice

__all__ = ["montage"]


def montage(
    result: AnalysisResult, volume: Volume | None = None, *, fov_mm: float = 60.0, max_nodules: int = 12
) -> Any:
    """A figure with one row per nodule: axial, coronal, sagittal crops through its centre.

    The best slice is the one through the nodule's centre; crops are ``fov_mm`` wide (or three
    diameters for a large nodule), in radiological convention, outlines in red.

    Args:
        result: Analysis result with nodules (and ``maps`` for the outlines).
        volume: The analyzed CT (default: reloaded from the series the result names).
        fov_mm: Crop width.
        max_nodules: Rows at most (most probable first).

    Returns:
        A matplotlib ``Figure``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if volume is None:
        from medmm.viz.viewer import _load_for

        volume = _load_for(result)
    nodules = list(result.nodules or ())[:max_nodules]
    rows = max(1, len(nodules))
    fig = Figure(figsize=(7.5, 2.6 * rows), dpi=90)
    FigureCanvasAgg(fig)
    if not nodules:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no nodules in this result", ha="center", va="center")
        ax.axis("off")
        return fig
    canon = canonical(volume)
    maps = result.maps
    for r, nod in enumerate(nodules):
        centre = np.rint(canon.index(volume.world_to_index(nod.center_lps_mm))).astype(int)
        for k, plane in enumerate(Plane):
            view = render_slice(
                canon, plane, int(centre[k]), nodules=maps.nodules if maps is not None else None, pixel_mm=0.5
            )
            row, col = view.pixel_of_world(np.asarray(nod.center_lps_mm))
            half = 0.5 * max(fov_mm, 3 * nod.diameter_mm) / view.pixel_mm
            r0, r1 = int(max(row - half, 0)), int(min(row + half, view.rgb.shape[0]))
            c0, c1 = int(max(col - half, 0)), int(min(col + half, view.rgb.shape[1]))
            ax = fig.add_subplot(rows, 3, 3 * r + k + 1)
            ax.imshow(view.rgb[r0:r1, c0:c1])
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(f"{r + 1}: {nod.diameter_mm:.1f} mm {nod.lobe}\np={nod.probability:.2f}", fontsize=9)
            if r == 0:
                ax.set_title(plane.value, fontsize=10)
    fig.tight_layout()
    return fig
