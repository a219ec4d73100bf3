"""DICOM Segmentation (highdicom): one segment per nodule, optionally one per lobe.

Segments carry SNOMED CT / RadLex codes (:mod:`medmm.report.codes`), medmm's algorithm
identification and each nodule's tracking identifier and UID (the SR's measurement groups use
the same, so viewers can link them). Masks are written on the analyzed volume's own grid
through :class:`highdicom.Volume`, so a series whose geometry medmm corrected on load (gantry
tilt) still gets a SEG in the right place; frames are cut to the box holding all segments.

Example:
    >>> seg = build_seg(result, source_headers)                     # doctest: +SKIP
    >>> seg.save_as("seg.dcm")                                       # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from scipy import ndimage

from medmm.anatomy.regions import LOBE_NAMES
from medmm.errors import ExportError
from medmm.report import codes as mc
from medmm.report.identity import ALGORITHM_NAME, MANUFACTURER, derived_uid, software_version
from medmm.types import AnalysisResult

__all__ = ["SEG_SERIES_NUMBER", "SegmentPlan", "build_seg", "segment_plan", "tracking_uid"]

logger = logging.getLogger(__name__)

SEG_SERIES_NUMBER = 901


@dataclass(frozen=True)
class SegmentPlan:
    """What one segment will hold.

    Attributes:
        number: Segment number (1-based).
        label: Segment label (``"Nodule 1"``, ``"RUL"``).
        nodule_index: Index into ``result.nodules``, or ``None`` for a lobe.
        lobe_label: Lobe label value in ``maps.lobes`` (1..5), or ``None`` for a nodule.
    """

    number: int
    label: str
    nodule_index: int | None
    lobe_label: int | None


def tracking_uid(result: AnalysisResult, nodule_index: int) -> str:
    """The tracking UID of ``result.nodules[nodule_index]`` (shared by SR and SEG)."""
    return derived_uid(result, "tracking", str(nodule_index))


def segment_plan(result: AnalysisResult, *, include_lobes: bool = False) -> list[SegmentPlan]:
    """Segments in order: every nodule (most probable first), then the lobes if asked."""
    plan = [SegmentPlan(i + 1, f"Nodule {i + 1}", i, None) for i in range(len(result.nodules or ()))]
    if include_lobes:
        plan += [SegmentPlan(len(plan) + k + 1, lobe, None, k + 1) for k, lobe in enumerate(LOBE_NAMES)]
    return plan


def _coded(c: mc.CodeTriple) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(c.value, c.scheme, c.meaning)


def _algorithm() -> hd.AlgorithmIdentificationSequence:
    return hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME, family=codes.cid7162.ArtificialIntelligence, version=software_version()
    )


def _description(result: AnalysisResult, seg: SegmentPlan) -> hd.seg.SegmentDescription:
    if seg.nodule_index is not None:
        nodule = (result.nodules or ())[seg.nodule_index]
        site = mc.lobe_code(nodule.lobe)
        return hd.seg.SegmentDescription(
            segment_number=seg.number,
            segment_label=seg.label,
            segmented_property_category=_coded(mc.NODULE_CATEGORY),
            segmented_property_type=_coded(mc.NODULE),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=_algorithm(),
            tracking_uid=tracking_uid(result, seg.nodule_index),
            tracking_id=seg.label,
            anatomic_regions=[_coded(site)] if site is not None else None,
        )
    category, kind = mc.anatomy_segment(seg.label)
    return hd.seg.SegmentDescription(
        segment_number=seg.number,
        segment_label=seg.label,
        segmented_property_category=_coded(category),
        segmented_property_type=_coded(kind),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=_algorithm(),
    )


def _masks(result: AnalysisResult, plan: Sequence[SegmentPlan]) -> tuple[np.ndarray, np.ndarray]:
    """Stacked masks cut to the box holding every segment, and the box's first index.

    Shapes:
        masks: ``(box_z, box_y, box_x, S)`` uint8, one channel per planned segment.
    """
    maps = result.maps
    assert maps is not None
    boxes = []  # find_objects: one bounding box per label value, found in one pass
    if any(s.nodule_index is not None for s in plan):
        assert maps.nodules is not None
        found = ndimage.find_objects(maps.nodules)
        boxes += [found[s.nodule_index] for s in plan if s.nodule_index is not None and s.nodule_index < len(found)]
    if any(s.lobe_label is not None for s in plan):
        boxes += [b for b in ndimage.find_objects(maps.lobes) if b is not None]
    boxes = [b for b in boxes if b is not None]
    if boxes:
        lo = np.array([min(b[a].start for b in boxes) for a in range(3)])
        hi = np.array([max(b[a].stop for b in boxes) for a in range(3)])
    else:
        lo, hi = np.zeros(3, int), np.ones(3, int)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    stacked = np.zeros((*(hi - lo), len(plan)), dtype=np.uint8)
    for c, seg in enumerate(plan):
        if seg.nodule_index is not None:
            assert maps.nodules is not None
            stacked[..., c] = maps.nodules[box] == seg.nodule_index + 1
        else:
            stacked[..., c] = maps.lobes[box] == seg.lobe_label
    return stacked, lo


def build_seg(
    result: AnalysisResult,
    affine: np.ndarray,
    source_headers: Sequence[Dataset],
    *,
    include_lobes: bool = False,
) -> hd.seg.Segmentation | None:
    """The DICOM SEG of a result's nodules (and lobes), or ``None`` when there is nothing to segment.

    Args:
        result: Analysis result with ``maps`` (from :func:`medmm.pipeline.analyze`).
        affine: The analyzed volume's 4x4 index ``(k, j, i)`` -> LPS mm affine.
        source_headers: The CT instances (:func:`~medmm.report.sources.read_source_headers`).
        include_lobes: Add the five lobes as segments.

    Raises:
        ExportError: The result carries no label maps, or highdicom refuses the object.
    """
    if result.maps is None:
        raise ExportError(
            "the result carries no label maps; DICOM SEG needs them",
            series_uid=result.series.series_uid,
            hint="Export from the result `analyze` returned, or from a result folder that holds labels.nii.gz.",
        )
    plan = segment_plan(result, include_lobes=include_lobes)
    if not plan:
        logger.info("series %s: no nodules and no lobes asked for; no SEG written", result.series.series_uid)
        return None
    stacked, lo = _masks(result, plan)
    sub_affine = np.array(affine, dtype=float)
    sub_affine[:3, 3] = sub_affine[:3, :3] @ lo + sub_affine[:3, 3]
    volume = hd.Volume(
        stacked,
        sub_affine,
        coordinate_system="PATIENT",
        frame_of_reference_uid=result.series.frame_of_reference_uid or source_headers[0].FrameOfReferenceUID,
        channels={"SegmentNumber": [s.number for s in plan]},
    )
    try:
        seg = hd.seg.Segmentation(
            source_images=list(source_headers),
            pixel_array=volume,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[_description(result, s) for s in plan],
            series_instance_uid=derived_uid(result, "seg", "series"),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=derived_uid(result, "seg", "instance"),
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name="medmm",
            software_versions=software_version(),
            device_serial_number="none",
            series_description="medmm nodule segmentation",
            content_description="Lung nodules found by medmm (not for clinical use)",
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ExportError(
            f"highdicom could not build the SEG: {exc}",
            series_uid=result.series.series_uid,
            hint="Check the source series headers (frame of reference, geometry); please report this.",
        ) from exc
    # highdicom mints a random Dimension Organization UID; derive it like every other export UID
    # so that the same result always gives the same SEG.
    dimension_uid = derived_uid(result, "seg", "dimension-organization")
    for item in (*seg.DimensionOrganizationSequence, *seg.DimensionIndexSequence):
        item.DimensionOrganizationUID = dimension_uid
    return seg
