"""Looking at volumes and results: a Jupyter viewer, nodule montages, evaluation plots.

* :func:`show` -- interactive viewer in Jupyter (ipywidgets), static figure elsewhere;
* :func:`montage` -- every nodule in three planes;
* :func:`render_slice` -- one plane as an RGB array with overlays and its pixel <-> mm map;
* :func:`plot_froc`, :func:`plot_roc` -- the evaluation's figures;
* :func:`attention_figure` -- a report phrase's attention heatmap on the slice through its peak.

Works with any :class:`~medmm.types.Volume` (medmm's loader, NIfTI, or built by hand).
"""

from typing import Any

from medmm.viz.render import WINDOWS, CanonicalVolume, Plane, SliceView, canonical, render_slice

__all__ = [
    "WINDOWS",
    "CanonicalVolume",
    "Plane",
    "SliceView",
    "attention_figure",
    "canonical",
    "montage",
    "plot_froc",
    "plot_roc",
    "render_slice",
    "show",
    "static_figure",
]


def __getattr__(name: str) -> Any:
    if name in ("show", "static_figure"):
        from medmm.viz import viewer

        return getattr(viewer, name)
    if name == "attention_figure":
        from medmm.viz.attention import attention_figure

        return attention_figure
    if name == "montage":
        from medmm.viz.nodule_montage import montage

        return montage
    if name in ("plot_froc", "plot_roc"):
        from medmm.viz import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'medmm.viz' has no attribute {name!r}")
