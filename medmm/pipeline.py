"""The analysis spine: one series in, one :class:`~medmm.types.AnalysisResult` out.

Stages run in order and each adds to the result. Built today: **anatomy** (lungs and
lobes), **detection** (candidates + 3D CNN, :mod:`medmm.detect`), **guidelines**
(Lung-RADS, Fleischner and Brock for the detected nodules, with every assumption stated;
:mod:`medmm.reason.guidance`), and, when a report is given, **text** (findings with
negation and uncertainty, :mod:`medmm.text`) and **fusion** (each finding's sentence
grounded in the volume by cross-modal attention, :mod:`medmm.fusion`), with the
report/image agreement (:mod:`medmm.fusion.agreement`), then **reasoning** (ontology
evidence + region GNN -> ranked differential with its evidence, :mod:`medmm.reason`).
``AnalysisResult.stages`` says what ran.

Example:
    >>> from medmm.io import load_series                     # doctest: +SKIP
    >>> result = analyze(load_series("sample_dicom/case_solitary/dicom"))   # doctest: +SKIP
    >>> result.stages                                        # doctest: +SKIP
    ('anatomy', 'detection', 'guidelines', 'reasoning')
    >>> [(n.lobe, round(n.diameter_mm, 1)) for n in result.nodules]   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import numpy as np

from medmm import __version__
from medmm.anatomy import Anatomy, assign, segment_anatomy
from medmm.anatomy.regions import LOBE_NAMES
from medmm.detect.detector import DEFAULT_NODULE_THRESHOLD, default_detector
from medmm.detect.domain import spacing_warnings
from medmm.detect.measure import nodule_mask
from medmm.detect.model import TEXTURES
from medmm.errors import UnsupportedSeriesError
from medmm.fusion.size import faint_detections
from medmm.types import (
    AnalysisResult,
    DetectedNodule,
    LabelMaps,
    LungSummary,
    NoduleTexture,
    ScoredPoint,
    SeriesInfo,
    Volume,
)

if TYPE_CHECKING:
    from medmm.anatomy.assign import RegionAssignment
    from medmm.detect.detector import NoduleDetector
    from medmm.fusion.align import ReportAligner
    from medmm.reason.differential import Reasoner
    from medmm.reason.ontology import Ontology

__all__ = [
    "DEFAULT_NODULE_THRESHOLD",
    "MIN_SLICES",
    "MIN_Z_EXTENT_MM",
    "analyze",
    "default_aligner",
    "default_detector",
    "default_reasoner",
    "nodule_label_map",
]

logger = logging.getLogger(__name__)

MIN_SLICES = 10
MIN_Z_EXTENT_MM = 60.0


@functools.cache
def default_aligner() -> ReportAligner:
    """The report aligner with the shipped weights and MiniLM, loaded once per process."""
    from medmm.fusion.align import ReportAligner

    return ReportAligner()


@functools.cache
def default_reasoner() -> Reasoner:
    """The differential ranker with the shipped weights, loaded once per process."""
    from medmm.reason.differential import Reasoner

    return Reasoner()


_REASONERS: dict[int, Reasoner] = {}


def _reasoner_for(ontology: Ontology) -> Reasoner:
    """A ranker with the shipped weights over this ontology's evidence links (cached per ontology)."""
    key = id(ontology)
    if key not in _REASONERS:
        from medmm.reason.differential import Reasoner

        _REASONERS.clear()
        _REASONERS[key] = Reasoner(ontology=ontology)
    return _REASONERS[key]


def _check_extent(volume: Volume) -> None:
    series = volume.info.series_uid if volume.info else None
    z_extent = volume.shape[0] * volume.spacing_mm[0]
    if volume.shape[0] < MIN_SLICES or z_extent < MIN_Z_EXTENT_MM:
        raise UnsupportedSeriesError(
            f"{volume.shape[0]} slice(s) covering {z_extent:.0f} mm: too little of the chest to analyze",
            series_uid=series,
            hint=f"Give a chest CT series of at least {MIN_SLICES} slices and {MIN_Z_EXTENT_MM:.0f} mm "
            "(scouts, single slices and localizers cannot be analyzed).",
        )


def _detection(
    volume: Volume, anatomy: Anatomy, detector: NoduleDetector, threshold: float
) -> tuple[tuple[DetectedNodule, ...], tuple[ScoredPoint, ...], list[RegionAssignment]]:
    """Detected nodules, every scored point, and where each nodule is (lobe, pleura/fissure contact)."""
    dets = detector.detect(volume, anatomy.lungs.lung_mask)
    nodules = []
    places = []
    for d in dets:
        if d.probability < threshold:
            continue
        idx = np.rint(volume.world_to_index(d.center_lps_mm)).astype(int)
        idx = np.clip(idx, 0, np.asarray(volume.shape) - 1)
        where = assign(d.center_lps_mm, d.diameter_mm, anatomy)
        places.append(where)
        nodules.append(
            DetectedNodule(
                center_lps_mm=tuple(round(c, 2) for c in d.center_lps_mm),  # type: ignore[arg-type]
                voxel_index=(int(idx[0]), int(idx[1]), int(idx[2])),
                diameter_mm=round(d.diameter_mm, 2),
                volume_mm3=round(d.volume_mm3, 1),
                probability=round(d.probability, 4),
                texture=d.texture,
                texture_probabilities={
                    t.value: round(p, 4) for t, p in zip(TEXTURES, d.texture_probabilities, strict=True)
                },
                calcification="calcified" if d.calcification_probability >= 0.5 else "none",
                calcification_probability=round(d.calcification_probability, 4),
                lobe=where.lobe.value if where.lobe is not None else "",
            )
        )
    points = tuple(
        ScoredPoint(tuple(round(c, 2) for c in d.center_lps_mm), round(d.probability, 5), round(d.diameter_mm, 2))  # type: ignore[arg-type]
        for d in dets
    )
    return tuple(nodules), points, places


def _solid_components(volume: Volume, labels: np.ndarray, nodules: tuple[DetectedNodule, ...]) -> list[float | None]:
    """Solid-component diameter of each part-solid nodule (None for the others)."""
    from scipy import ndimage

    from medmm.reason.guidance import solid_component_mm

    boxes = ndimage.find_objects(labels)
    voxel_mm3 = float(np.prod(volume.spacing_mm))
    out: list[float | None] = []
    for n, nod in enumerate(nodules, start=1):
        box = boxes[n - 1] if n - 1 < len(boxes) else None
        if nod.texture is not NoduleTexture.PART_SOLID or box is None:
            out.append(None)
            continue
        inside = volume.array[box][labels[box] == n]
        out.append(solid_component_mm(inside, voxel_mm3, nod.diameter_mm))
    return out


def nodule_label_map(volume: Volume, nodules: tuple[DetectedNodule, ...]) -> np.ndarray:
    """Paint each nodule's thresholded component (:func:`~medmm.detect.measure.nodule_mask`).

    Args:
        volume: The analyzed CT.
        nodules: Reported nodules, most probable first.

    Returns:
        ``uint16`` label map: ``n`` marks ``nodules[n - 1]``; a voxel two nodules claim
        keeps the more probable one's label.

    Shapes:
        Output: the volume's ``(Z, Y, X)``.
    """
    labels = np.zeros(volume.shape, dtype=np.uint16)
    for n, nod in enumerate(nodules, start=1):
        center = volume.world_to_index(nod.center_lps_mm)
        box, mask = nodule_mask(volume, center, nod.diameter_mm, nod.texture)
        view = labels[box]
        view[mask & (view == 0)] = n
    return labels


def analyze(
    volume: Volume,
    report_text: str | None = None,
    *,
    detector: NoduleDetector | None = None,
    detect: bool = True,
    nodule_threshold: float = DEFAULT_NODULE_THRESHOLD,
    aligner: ReportAligner | None = None,
    align: bool = True,
    reason: bool = True,
    rank: bool = True,
    reasoner: Reasoner | None = None,
    ontology: Ontology | None = None,
) -> AnalysisResult:
    """Run every built stage on one CT volume.

    Args:
        volume: CT in HU (from :func:`medmm.io.load_series`).
        report_text: The study's report, if any: its findings are read (text stage),
            grounded in the volume (fusion stage) and compared with the detections.
        detector: Nodule detector to use (default: :func:`default_detector`, shipped weights).
        detect: Run the detection stage.
        nodule_threshold: Probability at which a detection is reported as a nodule.
        aligner: Report aligner (default: :func:`default_aligner`, shipped weights).
        align: Run the fusion stage when a report is given, and give the reasoning stage
            the volume encoder's region features.
        reason: Run the reasoning stage when detection ran: collect its inputs
            (``result.reasoning_inputs``) and rank the differential.
        rank: Rank the differential (needs the reasoning weights); False keeps only the
            inputs (how training cases are built).
        reasoner: Differential ranker (default: :func:`default_reasoner`, shipped weights;
            with ``ontology`` given, a ranker over that ontology's evidence links).
        ontology: Vocabulary and evidence links to use (default: shipped), e.g.
            ``load_ontology(extra=["site.ttl"], validate=True)``.

    Returns:
        The result; stages that did not run are absent.

    Raises:
        UnsupportedSeriesError: Not a chest CT (too few slices, no lungs found).
        CheckpointError: The detector or alignment weights are missing or altered.
        InputError: The report is not text or is far too long.
    """
    _check_extent(volume)
    warnings: list[str] = list(volume.info.warnings + volume.info.corrections) if volume.info else []
    clean_report = None
    if report_text is not None:
        from medmm.privacy import register_report_text, withheld
        from medmm.text.clean import prepare_report_text

        register_report_text(report_text)
        logger.debug("series %s: report text %s", volume.info.series_uid if volume.info else "?", withheld(report_text))
        clean_report, text_warnings = prepare_report_text(report_text)
        for w in text_warnings:
            logger.warning(w)
        warnings.extend(text_warnings)
    anatomy = segment_anatomy(volume)
    voxel_ml = float(np.prod(volume.spacing_mm)) / 1000.0
    lobes = anatomy.lobes.labels
    counts = np.bincount(lobes.ravel(), minlength=6)
    names = LOBE_NAMES
    lung_summary = LungSummary(
        right_volume_ml=round(float((anatomy.lungs.lungs == 1).sum() * voxel_ml), 1),
        left_volume_ml=round(float((anatomy.lungs.lungs == 2).sum() * voxel_ml), 1),
        lobe_volumes_ml={n: round(float(counts[i + 1] * voxel_ml), 1) for i, n in enumerate(names)},
        lobe_methods={n: anatomy.methods[n] for n in names},
        notes=anatomy.lungs.notes,
    )
    info = volume.info or SeriesInfo(series_uid="")
    stages = ["anatomy"]
    nodules = points = card = guidelines = None
    faint: tuple[ScoredPoint, ...] = ()
    nodule_labels = None
    places: list[RegionAssignment] = []
    if detect:
        det = detector if detector is not None else default_detector()
        nodules, points, places = _detection(volume, anatomy, det, nodule_threshold)
        faint = faint_detections(points, nodule_threshold)
        card = {k: str(det.card.get(k, "")) for k in ("name", "medmm_version", "sha256")}
        for w in spacing_warnings(volume.spacing_mm, det.card):
            logger.warning("series %s: %s", info.series_uid, w)
            warnings.append(w)
        stages.append("detection")
        nodule_labels = nodule_label_map(volume, nodules)
        from medmm.reason.guidance import apply_guidelines

        guidelines = apply_guidelines(
            nodules,
            pleural_contact=[p.juxtapleural or p.perifissural for p in places],
            solid_components_mm=_solid_components(volume, nodule_labels, nodules),
            series=info,
        )
        stages.append("guidelines")
    report = None
    encoded = None
    if reason and detect and align:
        aligner = aligner or default_aligner()
        encoded = aligner.encode_volume(volume, lobes, nodules, faint)
    if clean_report is not None:
        from medmm.fusion.report_stage import analyze_report

        report, report_stages = analyze_report(
            volume,
            lobes,
            clean_report,
            nodules,
            aligner=(aligner or default_aligner) if align else None,
            encoded=encoded,
            faint=faint,
            ontology=ontology,
        )
        stages.extend(report_stages)
    reasoning_inputs = None
    if reason and nodules is not None and guidelines is not None:
        from medmm.anatomy.graph import anatomy_node_features
        from medmm.reason.inputs import ReasoningInputs, observe_nodules, region_image_features

        reasoning_inputs = ReasoningInputs(
            observe_nodules(
                nodules,
                [p.juxtapleural for p in places],
                [p.perifissural for p in places],
                [g.brock_probability for g in guidelines.nodules],
            ),
            report.findings if report is not None else (),
            anatomy_node_features(anatomy),
            None if encoded is None else region_image_features(encoded.tokens.features, encoded.tokens.lobes),
            report is not None,
        )
    differential = None
    if reasoning_inputs is not None and rank:
        if reasoner is None:
            reasoner = default_reasoner() if ontology is None else _reasoner_for(ontology)
        differential = reasoner.rank(reasoning_inputs)
        stages.append("reasoning")
    maps = LabelMaps(
        lungs=anatomy.lungs.lungs.astype(np.uint8, copy=False),
        lobes=lobes.astype(np.uint8, copy=False),
        nodules=nodule_labels,
    )
    return AnalysisResult(
        series=info,
        shape=volume.shape,
        spacing_mm=tuple(round(s, 6) for s in volume.spacing_mm),  # type: ignore[arg-type]
        orientation=volume.orientation_code,
        stages=tuple(stages),
        lungs=lung_summary,
        nodules=nodules,
        candidates=points,
        nodule_threshold=nodule_threshold if detect else None,
        detector=card,
        guidelines=guidelines,
        report=report,
        differential=differential,
        warnings=tuple(warnings),
        medmm_version=__version__,
        maps=maps,
        reasoning_inputs=reasoning_inputs,
    )
