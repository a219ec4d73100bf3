"""A phrase's attention on the CT: the axial slice through its peak, with nodule outlines.

Example:
    >>> loc = ReportAligner().localize(volume, "16 mm nodule in the left upper lobe",
    ...                                lobes=lobes, nodules=result.nodules)  # doctest: +SKIP
    >>> fig = attention_figure(volume, loc, result)                     # doctest: +SKIP
    >>> fig.savefig("attention.png")                                    # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from medmm.types import AnalysisResult, Volume
from medmm.viz.render import Plane, canonical, render_slice

if TYPE_CHECKING:
    from medmm.fusion.align import Localization

__all__ = ["attention_figure"]


def attention_figure(
    volume: Volume,
    localization: Localization,
    result: AnalysisResult | None = None,
    *,
    window: str = "lung",
    alpha: float = 0.45,
) -> Any:
    """Axial slice through the attention peak: CT, heatmap ("hot", square-root scale), nodule outlines (red), peak (+).

    Args:
        volume: The CT the phrase was localized in.
        localization: From :meth:`medmm.fusion.align.ReportAligner.localize`.
        result: The analysis of ``volume``, for the detected nodules' outlines.
        window: Window preset.
        alpha: Heatmap opacity.

    Returns:
        A matplotlib ``Figure`` (axes in mm).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    heat = np.sqrt(localization.heatmap_on(volume).array)  # square root: attention is peaked
    peak, mass = localization.peaks[0]
    canon = canonical(volume)
    k = int(np.clip(np.rint(canon.index(volume.world_to_index(peak))[0]), 0, canon.shape[0] - 1))
    nodules = result.maps.nodules if result is not None and result.maps is not None else None
    view = render_slice(canon, Plane.AXIAL, k, window=window, heatmap=heat, nodules=nodules, alpha=alpha)
    fig = Figure(figsize=(6.4, 6.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    h, w = view.rgb.shape[:2]
    s = view.pixel_mm
    ax.imshow(view.rgb, extent=(0, w * s, h * s, 0))
    r, c = view.pixel_of_world(peak)
    ax.plot([(c + 0.5) * s], [(r + 0.5) * s], marker="+", color="cyan", markersize=18, mew=2)
    ax.set_xlabel("mm")
    ax.set_title(
        f'"{localization.phrase[:60]}"\npeak ({peak[0]:.0f}, {peak[1]:.0f}, {peak[2]:.0f}) LPS mm, '
        f"attention {mass:.2f}; axial {k + 1}/{canon.shape[0]}",
        fontsize=9,
    )
    return fig
