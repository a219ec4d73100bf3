"""The viewer's phrase chooser: a report finding's attention is drawn and the slider jumps to its peak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medmm.io import load_series
from medmm.pipeline import analyze
from medmm.viz import show
from medmm.viz.phrases import report_phrases

SAMPLE = Path(__file__).resolve().parents[2] / "sample_dicom" / "case_spiculated"


def _find(widget, kind: str):
    stack = [widget]
    while stack:
        w = stack.pop()
        if type(w).__name__ == kind:
            return w
        stack.extend(getattr(w, "children", ()))
    raise AssertionError(f"no {kind} in the widget")


@pytest.mark.slow
def test_picking_a_report_phrase_draws_its_attention_and_jumps_to_its_peak() -> None:
    pytest.importorskip("ipywidgets")
    volume = load_series(SAMPLE / "dicom")
    result = analyze(volume, (SAMPLE / "report.txt").read_text(), detect=False)
    phrases = report_phrases(result)
    assert phrases and any("upper lobe" in p or "lower lobe" in p or "middle lobe" in p for p in phrases)
    widget = show(volume, result, interactive=True)
    chooser, button = _find(widget, "Combobox"), _find(widget, "Button")
    assert list(chooser.options) == phrases
    image = _find(widget, "Image")
    before = bytes(image.value)
    chooser.value = phrases[0]
    button.click()
    readout = _find(widget, "HTML").value
    assert f"attention of '{phrases[0]}'" in readout
    assert bytes(image.value) != before  # the heatmap was drawn
    peak = np.array([float(c) for c in readout.split("peak LPS (")[1].split(")")[0].split(",")])
    from medmm.viz.render import canonical

    canon = canonical(volume)
    expected = int(np.rint(canon.index(volume.world_to_index(peak)))[0])
    assert abs(_find(widget, "IntSlider").value - expected) <= 1  # axial: the slice through the peak (0.1 mm readout)
    # typing a phrase that is not in the report works too
    chooser.value = "nodule in the left lower lobe"
    button.click()
    assert "left lower lobe" in _find(widget, "HTML").value
