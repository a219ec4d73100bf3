"""The analysis spine: one series in, one :class:`~medmm.types.AnalysisResult` out.

Stages run in order and each adds to the result. Built today: **anatomy** (lungs and
lobes). Detection, report alignment, reasoning and guidelines plug in here as they land;
until then they are absent from the result (``AnalysisResult.stages`` says what ran).

Example:
    >>> from medmm.io import load_series                     # doctest: +SKIP
    >>> result = analyze(load_series("sample_dicom/case_normal/dicom"))   # doctest: +SKIP
    >>> result.stages                                        # doctest: +SKIP
    ('anatomy',)
"""

from __future__ import annotations

import logging

import numpy as np

from medmm import __version__
from medmm.anatomy import segment_anatomy
from medmm.types import AnalysisResult, LungSummary, SeriesInfo, Volume

__all__ = ["analyze"]

logger = logging.getLogger(__name__)


def analyze(volume: Volume, report_text: str | None = None) -> AnalysisResult:
    """Run every built stage on one CT volume.

    Args:
        volume: CT in HU (from :func:`medmm.io.load_series`).
        report_text: The study's report, if any (used once the text stage lands).

    Returns:
        The result; stages that did not run are absent.

    Raises:
        UnsupportedSeriesError: Not a chest CT (no lungs found).
    """
    warnings: list[str] = list(volume.info.warnings + volume.info.corrections) if volume.info else []
    if report_text:
        warnings.append("report text given, but the report-text stage is not built yet; it was not used")
        logger.warning(warnings[-1])
    anatomy = segment_anatomy(volume)
    voxel_ml = float(np.prod(volume.spacing_mm)) / 1000.0
    lobes = anatomy.lobes.labels
    counts = np.bincount(lobes.ravel(), minlength=6)
    names = ("RUL", "RML", "RLL", "LUL", "LLL")
    lung_summary = LungSummary(
        right_volume_ml=round(float((anatomy.lungs.lungs == 1).sum() * voxel_ml), 1),
        left_volume_ml=round(float((anatomy.lungs.lungs == 2).sum() * voxel_ml), 1),
        lobe_volumes_ml={n: round(float(counts[i + 1] * voxel_ml), 1) for i, n in enumerate(names)},
        lobe_methods={n: anatomy.methods[n] for n in names},
        notes=anatomy.lungs.notes,
    )
    info = volume.info or SeriesInfo(series_uid="")
    return AnalysisResult(
        series=info,
        shape=volume.shape,
        spacing_mm=tuple(round(s, 6) for s in volume.spacing_mm),  # type: ignore[arg-type]
        orientation=volume.orientation_code,
        stages=("anatomy",),
        lungs=lung_summary,
        warnings=tuple(warnings),
        medmm_version=__version__,
    )
