"""Core data types shared by every medmm stage.

:class:`Volume`, :class:`VolumeGeometry` and :class:`SeriesInfo` live in :mod:`medmm.volume`
and are re-exported here. Geometry convention (one rule, used everywhere):

* Arrays are indexed in the order ``(z, y, x)`` = ``(slice, row, column)``.
* A 4x4 ``affine`` maps an array index given **in that same order** ``(k, j, i)`` to
  patient coordinates in millimetres in the DICOM LPS frame (x grows to the patient's
  left, y to posterior, z to head). LUNA16 world coordinates are the same numbers.
* Spacing, origin and direction are *derived* from the affine, so they can never
  disagree with it.

Example:
    >>> import numpy as np
    >>> vol = Volume.from_spacing(np.zeros((4, 5, 6), np.float32), spacing_mm=(2.5, 0.7, 0.7))
    >>> vol.index_to_world([[1, 0, 0]])
    array([[0. , 0. , 2.5]])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from medmm.volume import SeriesInfo, Volume, VolumeGeometry

__all__ = [
    "RESULT_SCHEMA_VERSION",
    "AgreementItem",
    "AnalysisResult",
    "DetectedNodule",
    "GuidelineSummary",
    "LabelMaps",
    "LungSummary",
    "NoduleGuidance",
    "NoduleTexture",
    "ReferenceNodule",
    "ReportAnalysis",
    "ReportFinding",
    "ScoredPoint",
    "SeriesInfo",
    "Volume",
    "VolumeGeometry",
]

RESULT_SCHEMA_VERSION = "1.3"
"""Version of the ``result.json`` layout (``medmm/report/result.schema.json``); the major
number changes when a field is removed or changes meaning."""


class NoduleTexture(StrEnum):
    """Nodule attenuation, the one vocabulary every stage uses.

    Solid; part-solid (ground glass with a solid component); ground glass, also called
    non-solid or pure ground-glass (Fleischner glossary, Hansell et al., Radiology 246:697,
    2008). Lung-RADS, Fleischner and Brock ("non-solid") all split nodules this way.
    """

    SOLID = "solid"
    PART_SOLID = "part_solid"
    GROUND_GLASS = "ground_glass"


@dataclass(frozen=True)
class ReferenceNodule:
    """A reference (ground-truth) nodule in world coordinates.

    Attributes:
        series_uid: SeriesInstanceUID the nodule belongs to.
        center_lps_mm: Centre in LPS mm.
        diameter_mm: Diameter in mm, or ``None`` when unknown (LUNA16 excluded rows use -1).
        reader_count: How many readers marked it (LIDC consensus), if known.
        source: Where it came from, e.g. ``"luna16"``, ``"lidc-xml"``, ``"synthetic"``.
    """

    series_uid: str
    center_lps_mm: tuple[float, float, float]
    diameter_mm: float | None
    reader_count: int | None = None
    source: str = ""


@dataclass(frozen=True)
class LungSummary:
    """What the anatomy stage measured.

    Attributes:
        right_volume_ml: Right lung volume.
        left_volume_ml: Left lung volume.
        lobe_volumes_ml: Volume per lobe (``"RUL"`` ... ``"LLL"``).
        lobe_methods: How each lobe's boundaries were found (``"fissure"`` / ``"geometric"``).
        notes: Remarks from segmentation (e.g. lungs separated by erosion).
    """

    right_volume_ml: float
    left_volume_ml: float
    lobe_volumes_ml: dict[str, float]
    lobe_methods: dict[str, str]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DetectedNodule:
    """A nodule found by the detection stage.

    Attributes:
        center_lps_mm: Centre ``(x, y, z)`` in LPS mm.
        voxel_index: Nearest voxel ``(k, j, i)`` of the analyzed volume.
        diameter_mm: Predicted diameter.
        volume_mm3: Measured volume (thresholded component around the centre).
        probability: Nodule probability (0..1).
        texture: Most probable attenuation class.
        texture_probabilities: ``{"solid": p, "part_solid": p, "ground_glass": p}``.
        calcification: ``"calcified"`` or ``"none"`` (probability >= 0.5 or not).
        calcification_probability: Probability that it is calcified.
        lobe: Lobe holding the centre (``"RUL"`` ... ``"LLL"``), or ``""`` if outside.
    """

    center_lps_mm: tuple[float, float, float]
    voxel_index: tuple[int, int, int]
    diameter_mm: float
    volume_mm3: float
    probability: float
    texture: NoduleTexture
    texture_probabilities: dict[str, float]
    calcification: str
    calcification_probability: float
    lobe: str = ""


@dataclass(frozen=True)
class ScoredPoint:
    """A detection of any probability (what LUNA16-style FROC analysis scores).

    Attributes:
        center_lps_mm: Centre ``(x, y, z)`` in LPS mm.
        probability: Nodule probability.
        diameter_mm: The CNN's diameter estimate (None in results written before it was kept).
    """

    center_lps_mm: tuple[float, float, float]
    probability: float
    diameter_mm: float | None = None


@dataclass(frozen=True)
class NoduleGuidance:
    """Guideline readings of one reported nodule.

    Attributes:
        lung_rads: Lung-RADS v2022 category of the nodule, e.g. ``"4A"``.
        lung_rads_rule: The table row that gave it.
        brock_probability: Brock (PanCan) probability of malignancy, 0-1.
        solid_component_mm: Solid-component diameter used for a part-solid nodule.
    """

    lung_rads: str
    lung_rads_rule: str
    brock_probability: float
    solid_component_mm: float | None = None


@dataclass(frozen=True)
class GuidelineSummary:
    """Lung-RADS, Fleischner and Brock applied to the detected nodules.

    Attributes:
        lung_rads: Study category label (its most suspicious finding), e.g. ``"3"``.
        lung_rads_management: The v2022 management text for that category.
        fleischner: Fleischner 2017 recommendation for the most suspicious nodule
            (empty when there is no nodule).
        fleischner_cell: The table cell it came from.
        nodules: Per nodule, in ``AnalysisResult.nodules`` order.
        assumptions: Every input medmm did not measure and assumed, in words.
    """

    lung_rads: str
    lung_rads_management: str
    fleischner: str
    fleischner_cell: str
    nodules: tuple[NoduleGuidance, ...]
    assumptions: tuple[str, ...]


@dataclass(frozen=True)
class ReportFinding:
    """One finding stated in the study's report (text stage), grounded when fusion ran.

    Attributes:
        concept: Ontology concept IRI.
        label: The concept's preferred label.
        code: Its first code, ``"SYSTEM:CODE"``.
        text: The words as written; ``start``/``end`` their character span.
        section: Report section (``"FINDINGS"``, ``"IMPRESSION"``...), or ``""``.
        site: Lobe (``"RUL"``...), ``"bilateral"``, or ``""``.
        size_mm: Stated size in mm, if any.
        negated, uncertain, historical: ConText status.
        attention_peak_lps_mm: Peak of the sentence's attention map (fusion stage), LPS mm.
        image_support: Probability that the image supports the sentence (fusion stage).
    """

    concept: str
    label: str
    code: str
    text: str
    start: int
    end: int
    section: str
    site: str
    size_mm: float | None
    negated: bool
    uncertain: bool
    historical: bool
    attention_peak_lps_mm: tuple[float, float, float] | None = None
    image_support: float | None = None


@dataclass(frozen=True)
class AgreementItem:
    """One line of the report/image comparison.

    Attributes:
        status: ``"confirmed"``, ``"not_found_in_image"`` or ``"not_in_report"``.
        mentions: Indices into ``ReportAnalysis.findings`` (empty for ``not_in_report``).
        nodule: Index into ``AnalysisResult.nodules``, or None.
        detail: The comparison in words (sizes, sites).
    """

    status: str
    mentions: tuple[int, ...]
    nodule: int | None
    detail: str


@dataclass(frozen=True)
class ReportAnalysis:
    """What the report says and whether the image agrees.

    Attributes:
        findings: Mentions of findings, in text order.
        agreement: Report/image comparison (None when detection did not run).
        models: Name and sha256 of the text encoder and alignment weights used.
        n_characters: Length of the report that was read.
    """

    findings: tuple[ReportFinding, ...]
    agreement: tuple[AgreementItem, ...] | None
    models: dict[str, str]
    n_characters: int


@dataclass(frozen=True, eq=False)
class LabelMaps:
    """Voxel label maps on the analyzed volume's grid (kept in memory for the exporters).

    Attributes:
        lungs: 0 outside, 1 right lung, 2 left lung.
        lobes: 0 outside, 1 RUL, 2 RML, 3 RLL, 4 LUL, 5 LLL.
        nodules: 0 background, ``n`` the voxels of ``AnalysisResult.nodules[n - 1]`` (a voxel
            claimed by two nodules goes to the more probable one); ``None`` when detection
            did not run.

    Shapes:
        Each map: the volume's ``(Z, Y, X)``, ``uint8`` (``uint16`` for nodules).
    """

    lungs: np.ndarray
    lobes: np.ndarray
    nodules: np.ndarray | None = None


@dataclass(frozen=True)
class EvidenceItem:
    """One observation weighed for or against a diagnosis (reasoning stage).

    Attributes:
        concept: Evidence concept IRI; ``label`` its preferred label.
        source: Where it was seen: ``"image"``, ``"report"`` or ``"guideline"``.
        detail: What triggered it, e.g. ``"RUL 14.2 mm solid nodule"``.
        log_lr: Its ontology weight for this diagnosis (natural-log likelihood ratio).
        basis: ``"published"``, ``"derived"`` or ``"assigned"`` (see ``ontology/evidence.ttl``).
        reference: The literature source of the weight.
    """

    concept: str
    label: str
    source: str
    detail: str
    log_lr: float
    basis: str
    reference: str


@dataclass(frozen=True)
class DiagnosisScore:
    """One diagnosis of the ranked differential.

    Attributes:
        concept: Diagnosis concept IRI; ``label`` its preferred label; ``code`` its first
            code (``"SCT:93880001"``), or ``""``.
        probability: Softmax over the ranked diagnoses of (ontology log-odds + GNN logit).
        ontology_log_odds: The summed evidence weight alone.
        supporting, opposing: Evidence with a positive / negative weight for it.
    """

    concept: str
    label: str
    code: str
    probability: float
    ontology_log_odds: float
    supporting: tuple[EvidenceItem, ...] = ()
    opposing: tuple[EvidenceItem, ...] = ()


@dataclass(frozen=True)
class RegionScore:
    """Abnormality score of one region of the anatomical graph (0..1)."""

    region: str
    abnormality: float


@dataclass(frozen=True)
class Differential:
    """Reasoning stage: ranked differential diagnosis with its evidence.

    Attributes:
        diagnoses: Most probable first.
        regions: Per region of the graph, in graph order.
        inputs: What it read: ``"image"`` and, with a report, ``"report"``.
        reported_diagnoses: Diagnoses the report itself states (affirmed), for comparison;
            they are not used as evidence.
        model: Name, version and sha256 of the reasoning weights.
    """

    diagnoses: tuple[DiagnosisScore, ...]
    regions: tuple[RegionScore, ...]
    inputs: tuple[str, ...]
    reported_diagnoses: tuple[str, ...] = ()
    model: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AnalysisResult:
    """Everything :func:`medmm.pipeline.analyze` found for one series.

    Only stages that ran appear: ``stages`` lists them, and a field of a stage that has
    not run (or is not built yet) is ``None`` -- never a placeholder.

    Attributes:
        series: Series metadata (UIDs, corrections made while loading...).
        shape: Volume shape ``(Z, Y, X)``.
        spacing_mm: Voxel spacing ``(z, y, x)``.
        orientation: Orientation code of the array axes, e.g. ``"SPL"``.
        stages: Names of the stages that ran, in order.
        lungs: Anatomy stage result.
        nodules: Detection stage: nodules at or above ``nodule_threshold``, most probable first.
        candidates: Detection stage: every detection above the submission floor (for FROC).
        nodule_threshold: Probability at which a detection is reported as a nodule.
        detector: Name, version and sha256 of the detector weights used.
        guidelines: Guidelines stage: Lung-RADS, Fleischner and Brock for the nodules.
        report: Text (and fusion) stage: the report's findings and their agreement with the image.
        differential: Reasoning stage: ranked diagnoses with evidence, region scores.
        warnings: Things the reader should know (inputs ignored, stages skipped).
        medmm_version: Version that produced the result.
        maps: Label maps on the volume grid (lungs, lobes, nodules) for the exporters; not
            part of ``result.json`` (the NIfTI export writes them).
        reasoning_inputs: What the reasoning stage read
            (:class:`medmm.reason.inputs.ReasoningInputs`); not part of ``result.json``.
    """

    series: SeriesInfo
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    orientation: str
    stages: tuple[str, ...]
    lungs: LungSummary | None = None
    nodules: tuple[DetectedNodule, ...] | None = None
    candidates: tuple[ScoredPoint, ...] | None = None
    nodule_threshold: float | None = None
    detector: dict[str, str] | None = None
    guidelines: GuidelineSummary | None = None
    report: ReportAnalysis | None = None
    differential: Differential | None = None
    warnings: tuple[str, ...] = ()
    medmm_version: str = ""
    maps: LabelMaps | None = field(default=None, compare=False, repr=False)
    reasoning_inputs: Any = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dictionary (paths as strings, absent stages left out, no label maps).

        The layout is described by ``medmm/report/result.schema.json``; ``schema_version``
        names its version.
        """
        out: dict[str, object] = {"schema_version": RESULT_SCHEMA_VERSION}
        out.update(dataclasses.asdict(dataclasses.replace(self, maps=None, reasoning_inputs=None)))
        out.pop("maps")
        out.pop("reasoning_inputs")
        series = out["series"]
        assert isinstance(series, dict)
        series["source_files"] = [str(p) for p in self.series.source_files]
        series.pop("slice_sop_uids", None)
        for name in (
            "lungs",
            "nodules",
            "candidates",
            "nodule_threshold",
            "detector",
            "guidelines",
            "report",
            "differential",
        ):
            if getattr(self, name) is None:
                out.pop(name)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisResult:
        """Rebuild a result from :meth:`to_dict` output (e.g. a ``result.json``).

        Args:
            data: The dictionary; ``schema_version`` must have the major version this
                medmm writes.

        Raises:
            ValueError: Another major schema version, or a field is missing.
        """
        version = str(data.get("schema_version", ""))
        if version.split(".")[0] != RESULT_SCHEMA_VERSION.split(".")[0]:
            raise ValueError(
                f"result schema_version {version or '(none)'!r} is not readable by this medmm "
                f"(writes {RESULT_SCHEMA_VERSION}); re-run `medmm analyze` with this version"
            )
        d = dict(data)
        d.pop("schema_version", None)
        series = dict(d["series"])
        series["source_files"] = tuple(Path(p) for p in series.get("source_files", ()))
        for key in ("corrections", "warnings"):
            series[key] = tuple(series.get(key, ()))
        lungs = d.get("lungs")
        nodules = d.get("nodules")
        candidates = d.get("candidates")
        return cls(
            series=SeriesInfo(**series),
            shape=tuple(d["shape"]),  # type: ignore[arg-type]
            spacing_mm=tuple(d["spacing_mm"]),  # type: ignore[arg-type]
            orientation=d["orientation"],
            stages=tuple(d["stages"]),
            lungs=LungSummary(**{**lungs, "notes": tuple(lungs.get("notes", ()))}) if lungs is not None else None,
            nodules=(
                tuple(
                    DetectedNodule(
                        **{
                            **n,
                            "center_lps_mm": tuple(n["center_lps_mm"]),
                            "voxel_index": tuple(n["voxel_index"]),
                            "texture": NoduleTexture(n["texture"]),
                        }
                    )
                    for n in nodules
                )
                if nodules is not None
                else None
            ),
            candidates=(
                tuple(
                    ScoredPoint(tuple(c["center_lps_mm"]), c["probability"], c.get("diameter_mm"))  # type: ignore[arg-type]
                    for c in candidates
                )
                if candidates is not None
                else None
            ),
            nodule_threshold=d.get("nodule_threshold"),
            detector=d.get("detector"),
            guidelines=_guidelines_from(d.get("guidelines")),
            report=_report_from(d.get("report")),
            differential=_differential_from(d.get("differential")),
            warnings=tuple(d.get("warnings", ())),
            medmm_version=d.get("medmm_version", ""),
        )


def _guidelines_from(data: dict[str, Any] | None) -> GuidelineSummary | None:
    if data is None:
        return None
    return GuidelineSummary(
        lung_rads=data["lung_rads"],
        lung_rads_management=data["lung_rads_management"],
        fleischner=data["fleischner"],
        fleischner_cell=data["fleischner_cell"],
        nodules=tuple(NoduleGuidance(**n) for n in data["nodules"]),
        assumptions=tuple(data["assumptions"]),
    )


def _report_from(data: dict[str, Any] | None) -> ReportAnalysis | None:
    if data is None:
        return None
    findings = tuple(
        ReportFinding(
            **{
                **f,
                "attention_peak_lps_mm": (
                    tuple(f["attention_peak_lps_mm"]) if f.get("attention_peak_lps_mm") is not None else None
                ),
            }
        )
        for f in data["findings"]
    )
    agreement = data.get("agreement")
    return ReportAnalysis(
        findings=findings,
        agreement=(
            tuple(AgreementItem(**{**a, "mentions": tuple(a["mentions"])}) for a in agreement)
            if agreement is not None
            else None
        ),
        models=dict(data["models"]),
        n_characters=int(data["n_characters"]),
    )


def _differential_from(data: dict[str, Any] | None) -> Differential | None:
    if data is None:
        return None

    def items(rows: list[dict[str, Any]]) -> tuple[EvidenceItem, ...]:
        return tuple(EvidenceItem(**r) for r in rows)

    return Differential(
        diagnoses=tuple(
            DiagnosisScore(**{**x, "supporting": items(x["supporting"]), "opposing": items(x["opposing"])})
            for x in data["diagnoses"]
        ),
        regions=tuple(RegionScore(**r) for r in data["regions"]),
        inputs=tuple(data["inputs"]),
        reported_diagnoses=tuple(data.get("reported_diagnoses", ())),
        model=dict(data.get("model", {})),
    )
