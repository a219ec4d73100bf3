"""DICOM Comprehensive 3D SR, TID 1500 Measurement Report (highdicom).

One TID 1411 volumetric measurement group per nodule:

* tracking identifier (``"Nodule n"``) and tracking UID (the SEG segment has the same);
* finding type *Nodule* (SCT 27925004) and finding site (the lobe, coded from the ontology);
* the region: the centre as a SCOORD3D ``POINT`` volume surface in the frame of reference;
* measurements with UCUM units: diameter (mm), volume (mm3), detection probability (1);
* qualitative evaluations: texture (solid / part-solid / non-solid) and calcification.

**Link to the SEG.** TID 1411 allows exactly one region reference per group (highdicom
enforces it), and the centre takes that place. The nodule's SEG segment carries the same
Tracking UID and Tracking ID as its group, and the SEG instance is listed in the SR's
evidence, which is how TID 1500 links one finding across objects (PS3.16 TID 1500 "Tracking
Identifier"). :func:`medmm.report.read_back.read_sr` follows that link.

The observer is a device (medmm, with its version); the algorithm is named in every group.
Stages that have not run (Lung-RADS, differential) are absent, not filled in.

**Report agreement.** When a report was read, each nodule group carries a qualitative
evaluation *Agreement with the report* (private scheme ``99MEDMM``: confirmed / not in
report), and each report finding not found in the image gets its own TID 1501 group
(tracking ID ``"Report finding n"``, finding type *Nodule*, the stated lobe as finding
site, no region) with the value *not found in image*.

Example:
    >>> sr = build_sr(result, source_headers, seg=seg)                # doctest: +SKIP
    >>> sr.save_as("sr.dcm")                                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from medmm.errors import ExportError
from medmm.report import codes as mc
from medmm.report.identity import ALGORITHM_NAME, MANUFACTURER, derived_uid, software_version
from medmm.report.seg import segment_plan, tracking_uid
from medmm.types import AnalysisResult, DetectedNodule

__all__ = ["SR_SERIES_NUMBER", "build_sr"]

SR_SERIES_NUMBER = 902
_UNIT_MM = hd.sr.CodedConcept("mm", "UCUM", "millimeter")
_UNIT_MM3 = hd.sr.CodedConcept("mm3", "UCUM", "cubic millimeter")
_UNIT_ONE = hd.sr.CodedConcept("1", "UCUM", "no units")


def _coded(c: mc.CodeTriple) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(c.value, c.scheme, c.meaning)


def _group(
    result: AnalysisResult,
    index: int,
    nodule: DetectedNodule,
    frame_of_reference_uid: str,
    algorithm: hd.sr.AlgorithmIdentification,
) -> hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    center = np.array([nodule.center_lps_mm], dtype=float)
    surface = hd.sr.VolumeSurface(
        graphic_type=hd.sr.GraphicTypeValues3D.POINT,
        graphic_data=center,
        frame_of_reference_uid=frame_of_reference_uid,
        source_series=hd.sr.SourceSeriesForSegmentation(result.series.series_uid),
    )
    site = mc.lobe_code(nodule.lobe)
    measurements = [
        hd.sr.Measurement(
            name=_coded(mc.DIAMETER),
            value=float(nodule.diameter_mm),
            unit=_UNIT_MM,
            algorithm_id=algorithm,
        ),
        hd.sr.Measurement(
            name=_coded(mc.VOLUME), value=float(nodule.volume_mm3), unit=_UNIT_MM3, algorithm_id=algorithm
        ),
        hd.sr.Measurement(
            name=_coded(mc.PROBABILITY), value=float(nodule.probability), unit=_UNIT_ONE, algorithm_id=algorithm
        ),
    ]
    evaluations = [
        hd.sr.QualitativeEvaluation(_coded(mc.TEXTURE_NAME), _coded(mc.texture_code(nodule.texture))),
        hd.sr.QualitativeEvaluation(
            _coded(mc.CALCIFICATION_NAME),
            _coded(mc.CALCIFIED if nodule.calcification == "calcified" else mc.NOT_CALCIFIED),
        ),
    ]
    if result.report is not None and result.report.agreement is not None:
        for a in result.report.agreement:
            if a.nodule == index:
                evaluations.append(
                    hd.sr.QualitativeEvaluation(_coded(mc.REPORT_AGREEMENT), _coded(mc.AGREEMENT_VALUES[a.status]))
                )
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid(result, index), identifier=f"Nodule {index + 1}"),
        finding_type=_coded(mc.NODULE),
        finding_sites=[hd.sr.FindingSite(_coded(site))] if site is not None else None,
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=evaluations,
        referenced_volume_surface=surface,
    )


def _unfound_groups(
    result: AnalysisResult, algorithm: hd.sr.AlgorithmIdentification
) -> list[hd.sr.MeasurementsAndQualitativeEvaluations]:
    """One TID 1501 group per report finding that the image did not show."""
    if result.report is None or result.report.agreement is None:
        return []
    groups = []
    missing = [a for a in result.report.agreement if a.status == "not_found_in_image"]
    for n, a in enumerate(missing, start=1):
        finding = result.report.findings[a.mentions[0]]
        site = mc.lobe_code(finding.site) if finding.site in mc.LOBE_CONCEPTS else None
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=derived_uid(result, "report-finding", str(n)), identifier=f"Report finding {n}"
                ),
                finding_type=_coded(mc.NODULE),
                finding_sites=[hd.sr.FindingSite(_coded(site))] if site is not None else None,
                algorithm_id=algorithm,
                qualitative_evaluations=[
                    hd.sr.QualitativeEvaluation(
                        _coded(mc.REPORT_AGREEMENT), _coded(mc.AGREEMENT_VALUES["not_found_in_image"])
                    )
                ],
            )
        )
    return groups


def _no_nodule_group(
    result: AnalysisResult, algorithm: hd.sr.AlgorithmIdentification
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """The TID 1501 group of a study without nodules: "Nodule: Absent".

    TID 1500 needs at least one measurement group, and a study in which the detector
    reported nothing (and the report states no unfound nodule) is a real outcome: it is
    stated, not left out or made up.
    """
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=derived_uid(result, "no-nodule"), identifier="No nodule detected"
        ),
        finding_type=_coded(mc.NODULE),
        algorithm_id=algorithm,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(_coded(mc.NODULE), _coded(mc.ABSENT))],
    )


def build_sr(
    result: AnalysisResult,
    source_headers: Sequence[Dataset],
    *,
    seg: hd.seg.Segmentation | None = None,
) -> hd.sr.Comprehensive3DSR:
    """The TID 1500 measurement report of a result's nodules.

    Args:
        result: Analysis result that ran detection.
        source_headers: The CT instances (:func:`~medmm.report.sources.read_source_headers`),
            referenced as evidence.
        seg: The SEG built from the same result, if any: checked to carry every nodule's
            tracking UID, and listed as evidence.

    Raises:
        ExportError: Detection did not run, or highdicom refuses the object.
    """
    uid = result.series.series_uid
    if result.nodules is None:
        raise ExportError(
            "detection did not run for this result; a TID 1500 nodule report needs it",
            series_uid=uid,
            hint="Run `medmm analyze` without --no-detect.",
        )
    if seg is not None and len(segment_plan(result)) > 0:
        expected = {tracking_uid(result, i) for i in range(len(result.nodules))}
        found = {str(s.TrackingUID) for s in seg.SegmentSequence if "TrackingUID" in s}
        if not expected <= found:
            raise ExportError(
                "the SEG was built from another result (tracking UIDs differ)",
                series_uid=uid,
                hint="Build the SR and the SEG from the same AnalysisResult.",
            )
    frame_uid = result.series.frame_of_reference_uid or str(source_headers[0].FrameOfReferenceUID)
    algorithm = hd.sr.AlgorithmIdentification(name=ALGORITHM_NAME, version=software_version())
    observer = hd.sr.ObserverContext(
        observer_type=codes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=derived_uid(result, "device"),
            name="medmm",
            manufacturer_name=MANUFACTURER,
            model_name=(result.detector or {}).get("name", "medmm"),
        ),
    )
    groups: list = [_group(result, i, n, frame_uid, algorithm) for i, n in enumerate(result.nodules)]
    groups += _unfound_groups(result, algorithm)
    if not groups:
        groups.append(_no_nodule_group(result, algorithm))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
    )
    evidence = list(source_headers) + ([seg] if seg is not None else [])
    try:
        return hd.sr.Comprehensive3DSR(
            evidence=evidence,
            content=report,
            series_instance_uid=derived_uid(result, "sr", "series"),
            series_number=SR_SERIES_NUMBER,
            sop_instance_uid=derived_uid(result, "sr", "instance"),
            instance_number=1,
            manufacturer=MANUFACTURER,
            is_complete=True,
            series_description="medmm nodule measurements",
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ExportError(f"highdicom could not build the SR: {exc}", series_uid=uid) from exc
