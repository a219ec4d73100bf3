"""Report phrases to look at in the viewer, and their attention heatmaps.

:func:`report_phrases` turns a result's report findings into short phrases the alignment
model reads well ("8 mm solid nodule in the right upper lobe"); :class:`PhraseHeatmaps`
encodes the volume once (lazily, with the shipped aligner) and returns each phrase's
attention resampled onto the CT grid, cached.

Example:
    >>> phrases = report_phrases(result)                      # doctest: +SKIP
    >>> heat = PhraseHeatmaps(volume, result).heatmap(phrases[0])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medmm.types import AnalysisResult, Volume

__all__ = ["PhraseHeatmaps", "report_phrases"]

_SITES = {
    "RUL": "right upper lobe",
    "RML": "right middle lobe",
    "RLL": "right lower lobe",
    "LUL": "left upper lobe",
    "LLL": "left lower lobe",
    "bilateral": "both lungs",
}


def report_phrases(result: AnalysisResult | None) -> list[str]:
    """One phrase per affirmed report finding (size, finding, site), duplicates dropped."""
    if result is None or result.report is None:
        return []
    out: list[str] = []
    for f in result.report.findings:
        if f.negated:
            continue
        size = f"{f.size_mm:g} mm " if f.size_mm else ""
        site = f" in the {_SITES[f.site]}" if f.site in _SITES else ""
        phrase = f"{size}{f.label}{site}"
        if phrase not in out:
            out.append(phrase)
    return out


class PhraseHeatmaps:
    """Attention heatmaps of phrases over one CT (volume encoded once, maps cached).

    Args:
        volume: The CT.
        result: Its analysis (lobe labels from ``result.maps`` when present; else the anatomy
            stage runs once).
        aligner: A :class:`~medmm.fusion.align.ReportAligner` (default: shipped weights,
            loaded on the first phrase).
    """

    def __init__(self, volume: Volume, result: AnalysisResult | None = None, aligner: Any = None) -> None:
        self.volume = volume
        self.result = result
        self._aligner = aligner
        self._encoded: Any = None
        self._cache: dict[str, tuple[np.ndarray, tuple[float, float, float]]] = {}

    def heatmap(self, phrase: str) -> tuple[np.ndarray, tuple[float, float, float]]:
        """The phrase's attention on the CT grid (0..1 scaled) and its peak (LPS mm).

        Shapes:
            Output map: the volume's ``(Z, Y, X)``.
        """
        if phrase not in self._cache:
            if self._aligner is None:
                from medmm.pipeline import default_aligner

                self._aligner = default_aligner()
            if self._encoded is None:
                maps = self.result.maps if self.result is not None else None
                nodules = self.result.nodules if self.result is not None else None
                faint = ()
                if self.result is not None and self.result.candidates and self.result.nodule_threshold is not None:
                    from medmm.fusion.size import faint_detections

                    faint = faint_detections(self.result.candidates, self.result.nodule_threshold)
                if maps is not None:
                    lobes = maps.lobes
                else:
                    from medmm.anatomy import segment_anatomy

                    lobes = segment_anatomy(self.volume).lobes.labels
                self._encoded = self._aligner.encode_volume(self.volume, lobes, nodules, faint)
            loc = self._aligner.localize(self._encoded, phrase)
            heat = np.sqrt(loc.heatmap_on(self.volume).array)  # square root: attention is peaked
            top = float(heat.max())
            peak = tuple(float(c) for c in loc.peaks[0][0]) if loc.peaks else (0.0, 0.0, 0.0)
            self._cache[phrase] = ((heat / top if top > 0 else heat).astype(np.float32), peak)  # type: ignore[assignment]
        return self._cache[phrase]
