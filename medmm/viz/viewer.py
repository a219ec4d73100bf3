"""``show``: an interactive slice viewer in Jupyter, a static figure anywhere else.

In a Jupyter kernel with ipywidgets, :func:`show` returns a widget: a slice slider, the
plane (axial / coronal / sagittal), window presets (lung / mediastinum / bone), toggles for
nodule outlines and the lobe (or lung) overlay, a heatmap when one is given, a menu that
jumps to each nodule, a phrase chooser (a report finding, or any typed phrase: its attention
heatmap is drawn and the slider jumps to its peak), and a readout of the slice position and
the selected nodule in LPS mm. Outside a kernel (a script, a test, a headless run without widgets) it returns a
matplotlib figure of the three planes through the first nodule (or the centre).

Example (in a notebook):
    >>> from medmm.viz import show                                   # doctest: +SKIP
    >>> show(volume, result)          # or show(result): reloads the series it names   # doctest: +SKIP
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from medmm.types import AnalysisResult, Volume
from medmm.viz.render import WINDOWS, CanonicalVolume, Plane, SliceView, canonical, render_slice

__all__ = ["in_notebook", "show", "static_figure"]


def in_notebook() -> bool:
    """Running inside a Jupyter kernel with ipywidgets importable."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None or not hasattr(shell, "kernel"):
            return False
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def _load_for(result: AnalysisResult) -> Volume:
    from medmm.cli_report import _load_source_volume

    return _load_source_volume(result)


def _inputs(obj: Volume | AnalysisResult, result: AnalysisResult | None) -> tuple[Volume, AnalysisResult | None]:
    if isinstance(obj, AnalysisResult):
        return _load_for(obj), obj
    return obj, result


def _centre_index(canon: CanonicalVolume, result: AnalysisResult | None, nodule: int) -> np.ndarray:
    if result is not None and result.nodules:
        n = result.nodules[min(nodule, len(result.nodules) - 1)]
        return np.rint(canon.index(canon.volume.world_to_index(n.center_lps_mm))).astype(int)
    return np.asarray(canon.shape) // 2


def _overlays(result: AnalysisResult | None, overlay: str) -> dict[str, np.ndarray | None]:
    maps = result.maps if result is not None else None
    if maps is None:
        return {"labels": None, "nodules": None}
    labels = {"lobes": maps.lobes, "lungs": maps.lungs}.get(overlay)
    return {"labels": labels, "nodules": maps.nodules}


def static_figure(
    volume: Volume | AnalysisResult,
    result: AnalysisResult | None = None,
    *,
    nodule: int = 0,
    window: str = "lung",
    overlay: str = "lobes",
    heatmap: np.ndarray | None = None,
) -> Any:
    """Three planes through a nodule (or the centre) as a matplotlib figure, axes in mm."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    vol, result = _inputs(volume, result)
    canon = canonical(vol)
    centre = _centre_index(canon, result, nodule)
    extra = _overlays(result, overlay)
    fig = Figure(figsize=(13, 4.6), dpi=90)
    FigureCanvasAgg(fig)
    for k, plane in enumerate(Plane):
        view = render_slice(canon, plane, int(centre[k]), window=window, heatmap=heatmap, **extra)
        ax = fig.add_subplot(1, 3, k + 1)
        h, w = view.rgb.shape[:2]
        ax.imshow(view.rgb, extent=(0, w * view.pixel_mm, h * view.pixel_mm, 0))
        ax.set_title(f"{plane.value} {view.index + 1}/{canon.shape[k]}", fontsize=10)
        ax.set_xlabel("mm")
    title = "medmm" + (
        f": {len(result.nodules)} nodule(s)" if result is not None and result.nodules is not None else ""
    )
    if canon.oblique:
        title += " (oblique grid shown on the nearest patient planes)"
    fig.suptitle(title)
    return fig


def _png(view: SliceView) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(view.rgb).save(buf, format="PNG")
    return buf.getvalue()


def _widget(vol: Volume, result: AnalysisResult | None, heatmap: np.ndarray | None, window: str, phrases: bool) -> Any:
    import ipywidgets as w

    from medmm.viz.phrases import PhraseHeatmaps, report_phrases

    canon = canonical(vol)
    state: dict[str, Any] = {"heat": heatmap}
    chooser = w.Combobox(
        options=report_phrases(result),
        placeholder="a report phrase, or type one",
        description="phrase",
        ensure_option=False,
        layout=w.Layout(width="32em", display="" if phrases else "none"),
    )
    look = w.Button(description="show attention", layout=w.Layout(display="" if phrases else "none"))
    heatmaps = PhraseHeatmaps(vol, result)
    nodules = list(result.nodules or ()) if result is not None else []
    plane = w.ToggleButtons(options=[p.value for p in Plane], value="axial", description="plane")
    slider = w.IntSlider(min=0, max=canon.shape[0] - 1, value=canon.shape[0] // 2, description="slice")
    win = w.Dropdown(options=list(WINDOWS), value=window, description="window")
    show_nod = w.Checkbox(value=True, description="nodule outlines")
    overlay = w.Dropdown(options=["lobes", "lungs", "none"], value="lobes", description="overlay")
    show_heat = w.Checkbox(value=heatmap is not None, description="heatmap", disabled=heatmap is None and not phrases)
    jump = w.Dropdown(
        options=[("-", -1)]
        + [(f"{i + 1}: {n.diameter_mm:.1f} mm {n.lobe} p={n.probability:.2f}", i) for i, n in enumerate(nodules)],
        value=-1,
        description="nodule",
    )
    image = w.Image(format="png")
    readout = w.HTML()

    def redraw(*_: Any) -> None:
        axis = [p.value for p in Plane].index(plane.value)
        slider.max = canon.shape[axis] - 1
        extra = _overlays(result, overlay.value)
        if not show_nod.value:
            extra["nodules"] = None
        view = render_slice(
            canon,
            plane.value,
            slider.value,
            window=win.value,
            heatmap=state["heat"] if show_heat.value else None,
            **extra,
        )
        image.value = _png(view)
        h, wdt = view.rgb.shape[:2]
        centre = view.world_of_pixel((h - 1) / 2, (wdt - 1) / 2)
        lps = ", ".join(f"{c:.1f}" for c in centre)
        text = f"{plane.value} slice {view.index + 1}/{canon.shape[axis]}; image centre LPS ({lps}) mm"
        if jump.value >= 0:
            n = nodules[jump.value]
            at = ", ".join(f"{c:.1f}" for c in n.center_lps_mm)
            text += f"<br>nodule {jump.value + 1}: LPS ({at}) mm, {n.diameter_mm:.1f} mm, {n.texture.value}, {n.lobe}"
        if state.get("phrase"):
            text += f"<br>attention of '{state['phrase']}', peak LPS ({state['peak']}) mm"
        readout.value = text

    def attend(*_: Any) -> None:
        phrase = chooser.value.strip()
        if not phrase:
            return
        readout.value = f"reading '{phrase}'..."
        heat, peak = heatmaps.heatmap(phrase)
        state.update(heat=heat, phrase=phrase, peak=", ".join(f"{c:.1f}" for c in peak))
        axis = [p.value for p in Plane].index(plane.value)
        at = np.rint(canon.index(canon.volume.world_to_index(peak))).astype(int)
        show_heat.value = True
        slider.value = int(np.clip(at[axis], 0, canon.shape[axis] - 1))
        redraw()

    def go_to(change: Any) -> None:
        if jump.value >= 0:
            centre = _centre_index(canon, result, jump.value)
            axis = [p.value for p in Plane].index(plane.value)
            slider.value = int(centre[axis])
        redraw()

    for control in (plane, slider, win, show_nod, overlay, show_heat):
        control.observe(redraw, names="value")
    jump.observe(go_to, names="value")
    look.on_click(attend)
    redraw()
    return w.VBox(
        [
            w.HBox([plane, win]),
            w.HBox([slider, jump]),
            w.HBox([show_nod, overlay, show_heat]),
            w.HBox([chooser, look]),
            image,
            readout,
        ]
    )


def show(
    volume: Volume | AnalysisResult,
    result: AnalysisResult | None = None,
    *,
    heatmap: np.ndarray | None = None,
    window: str = "lung",
    interactive: bool | None = None,
    phrases: bool | None = None,
) -> Any:
    """View a volume with its analysis.

    Args:
        volume: A :class:`~medmm.types.Volume` (from medmm's loader, NIfTI, or built by
            hand), or an :class:`~medmm.types.AnalysisResult` whose source series is reloaded.
        result: The analysis of ``volume`` (nodule outlines, lobes, nodule menu), if any.
        heatmap: A map on the volume grid to blend (e.g. a phrase's attention).
        window: Initial window preset.
        interactive: Force the widget (True) or the static figure (False); default: the
            widget inside a Jupyter kernel, the figure elsewhere.
        phrases: Offer the phrase chooser in the widget: pick one of the report's findings
            (or type any phrase) to see where the alignment model's attention points; default
            on when the result has a report. The aligner loads on the first phrase.

    Returns:
        An ``ipywidgets.VBox`` or a matplotlib ``Figure``.
    """
    vol, res = _inputs(volume, result)
    if interactive is None:
        interactive = in_notebook()
    if interactive:
        wanted = phrases if phrases is not None else (res is not None and res.report is not None)
        return _widget(vol, res, heatmap, window, wanted)
    return static_figure(vol, res, window=window, heatmap=heatmap)
