"""Core data types shared by every medmm stage.

Geometry convention (one rule, used everywhere):

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

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

RESULT_SCHEMA_VERSION = "1.1"
"""Version of the ``result.json`` layout (``medmm/report/result.schema.json``); the major
number changes when a field is removed or changes meaning."""

_AFFINE_ATOL = 1e-9


def _as_affine(affine: npt.ArrayLike) -> np.ndarray:
    """Validate and freeze a 4x4 affine as float64."""
    arr = np.array(affine, dtype=np.float64)
    if arr.shape != (4, 4):
        raise ValueError(f"affine must have shape (4, 4), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("affine contains non-finite values")
    if not np.allclose(arr[3], [0.0, 0.0, 0.0, 1.0], atol=_AFFINE_ATOL):
        raise ValueError(f"affine's last row must be [0, 0, 0, 1], got {arr[3].tolist()}")
    if abs(np.linalg.det(arr[:3, :3])) < 1e-12:
        raise ValueError("affine is singular (zero spacing or collinear axes)")
    arr[3] = [0.0, 0.0, 0.0, 1.0]
    arr.setflags(write=False)
    return arr


class _AffineGeometry:
    """Derived geometry shared by :class:`Volume` and :class:`VolumeGeometry`."""

    affine: np.ndarray
    shape: tuple[int, int, int]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel spacing in mm along the array axes ``(z, y, x)``."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(norms[0]), float(norms[1]), float(norms[2]))

    @property
    def origin_lps_mm(self) -> tuple[float, float, float]:
        """LPS position in mm of the centre of voxel ``(0, 0, 0)``."""
        o = self.affine[:3, 3]
        return (float(o[0]), float(o[1]), float(o[2]))

    @property
    def direction(self) -> np.ndarray:
        """Unit direction cosines: column ``a`` is the LPS direction of array axis ``a``.

        Shapes:
            Output: ``(3, 3)``; columns ordered like the array axes ``(z, y, x)``.
        """
        return self.affine[:3, :3] / np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def is_orthogonal(self) -> bool:
        """True when the three array axes are mutually perpendicular (no shear)."""
        d = self.direction
        return bool(np.allclose(d.T @ d, np.eye(3), atol=1e-5))

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """Physical size covered by the voxel centres along ``(z, y, x)``, in mm."""
        sp = self.spacing_mm
        return tuple(float(s * max(n - 1, 0)) for s, n in zip(sp, self.shape, strict=True))  # type: ignore[return-value]

    def index_to_world(self, index_zyx: npt.ArrayLike) -> np.ndarray:
        """Convert (fractional) array indices to LPS millimetres.

        Args:
            index_zyx: Indices in array-axis order ``(k, j, i)``.

        Returns:
            LPS coordinates in mm, same leading shape as the input.

        Shapes:
            - index_zyx: ``(..., 3)``
            - Output: ``(..., 3)`` ordered ``(x_L, y_P, z_S)``
        """
        idx = np.asarray(index_zyx, dtype=np.float64)
        if idx.shape[-1] != 3:
            raise ValueError(f"index_zyx must end in a dimension of 3, got shape {idx.shape}")
        a = self.affine
        # Explicit multiply-adds rather than a BLAS matmul: bit-identical results whatever
        # the memory alignment, so generated data (UIDs, JSON) is reproducible byte for byte.
        return idx[..., 0:1] * a[:3, 0] + idx[..., 1:2] * a[:3, 1] + idx[..., 2:3] * a[:3, 2] + a[:3, 3]

    def world_to_index(self, lps_mm: npt.ArrayLike) -> np.ndarray:
        """Convert LPS millimetres to fractional array indices ``(k, j, i)``.

        Shapes:
            - lps_mm: ``(..., 3)``
            - Output: ``(..., 3)`` in array-axis order ``(z, y, x)``
        """
        pts = np.asarray(lps_mm, dtype=np.float64)
        if pts.shape[-1] != 3:
            raise ValueError(f"lps_mm must end in a dimension of 3, got shape {pts.shape}")
        rel = pts - self.affine[:3, 3]
        # Solving is more accurate than multiplying by an explicit inverse.
        flat = rel.reshape(-1, 3).T
        return np.linalg.solve(self.affine[:3, :3], flat).T.reshape(pts.shape)

    def contains_index(self, index_zyx: npt.ArrayLike) -> np.ndarray:
        """Whether fractional indices fall inside the voxel grid (half-voxel margin).

        Shapes:
            - index_zyx: ``(..., 3)``
            - Output: ``(...)`` boolean
        """
        idx = np.asarray(index_zyx, dtype=np.float64)
        upper = np.asarray(self.shape, dtype=np.float64) - 0.5
        return np.all((idx >= -0.5) & (idx <= upper), axis=-1)

    def _orientation_code(self) -> str:
        """Three-letter code of the patient direction each array axis points to, e.g. 'SPL'."""
        letters = (("L", "R"), ("P", "A"), ("S", "I"))
        code = []
        for col in self.direction.T:
            dominant = int(np.argmax(np.abs(col)))
            code.append(letters[dominant][0 if col[dominant] > 0 else 1])
        return "".join(code)

    @property
    def orientation_code(self) -> str:
        """Patient direction of increasing index along ``(z, y, x)``, e.g. ``'SPL'``.

        Axial DICOM CT stored head-last reads ``'SPL'``: slices go to superior, rows to
        posterior, columns to the patient's left.
        """
        return self._orientation_code()


@dataclass(frozen=True, repr=False)
class VolumeGeometry(_AffineGeometry):
    """The voxel grid of a :class:`Volume` without its array (for checks and resampling).

    Args:
        shape: Grid size along ``(z, y, x)``.
        affine: 4x4 matrix mapping ``(k, j, i)`` indices to LPS mm.
    """

    shape: tuple[int, int, int]
    affine: np.ndarray

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in self.shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"shape must be three positive sizes, got {self.shape}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "affine", _as_affine(self.affine))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VolumeGeometry):
            return NotImplemented
        return self.shape == other.shape and np.allclose(self.affine, other.affine, atol=1e-6)

    def __hash__(self) -> int:
        return hash((self.shape, tuple(np.round(self.affine, 6).ravel().tolist())))

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.4g}" for s in self.spacing_mm)
        return f"VolumeGeometry(shape={self.shape}, spacing_mm=({sp}), orientation={self.orientation_code})"


@dataclass(frozen=True)
class SeriesInfo:
    """What medmm knows about a DICOM series besides its voxels.

    Attributes:
        series_uid: SeriesInstanceUID.
        study_uid: StudyInstanceUID.
        frame_of_reference_uid: FrameOfReferenceUID (empty when absent).
        modality: DICOM Modality, e.g. ``"CT"``.
        sop_class_uid: SOP Class UID of the instances.
        manufacturer: Manufacturer (may be empty).
        manufacturer_model: ManufacturerModelName (may be empty).
        convolution_kernel: Reconstruction kernel, e.g. ``"STANDARD"``.
        slice_thickness_mm: Nominal SliceThickness, if present.
        series_description: SeriesDescription (free text; never used to name files).
        series_number: SeriesNumber, if present.
        patient_age_years: From PatientAge (``"067Y"`` -> 67.0), if present.
        patient_sex: ``"M"``, ``"F"``, ``"O"`` or empty.
        accession_number: AccessionNumber (matches a study to its report), may be empty.
        source_files: Files that make up the series, in slice order once loaded.
        slice_sop_uids: SOPInstanceUID of each slice in array order (empty before loading).
        corrections: Geometry corrections applied while loading, one sentence each.
        warnings: Things worth knowing that did not need a correction.
    """

    series_uid: str
    study_uid: str = ""
    frame_of_reference_uid: str = ""
    modality: str = ""
    sop_class_uid: str = ""
    manufacturer: str = ""
    manufacturer_model: str = ""
    convolution_kernel: str = ""
    slice_thickness_mm: float | None = None
    series_description: str = ""
    series_number: int | None = None
    patient_age_years: float | None = None
    patient_sex: str = ""
    accession_number: str = ""
    source_files: tuple[Path, ...] = ()
    slice_sop_uids: tuple[str, ...] = ()
    corrections: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def replace(self, **changes: object) -> SeriesInfo:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False, repr=False)
class Volume(_AffineGeometry):
    """A 3D image: an array plus the one affine that places it in patient space.

    Args:
        array: Voxel values (HU for CT), indexed ``(z, y, x)``.
        affine: 4x4 matrix mapping array indices ``(k, j, i)`` to LPS millimetres.
        info: Series metadata, when the volume came from DICOM.

    Shapes:
        - array: ``(Z, Y, X)``
        - affine: ``(4, 4)``

    Example:
        >>> import numpy as np
        >>> v = Volume.from_spacing(np.zeros((2, 3, 4), np.float32), (2.0, 1.0, 1.0))
        >>> v.spacing_mm
        (2.0, 1.0, 1.0)
    """

    array: np.ndarray
    affine: np.ndarray
    info: SeriesInfo | None = field(default=None)

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim != 3:
            raise ValueError(f"Volume array must be 3D (z, y, x), got shape {arr.shape}")
        if min(arr.shape) < 1:
            raise ValueError(f"Volume array has an empty axis: shape {arr.shape}")
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "affine", _as_affine(self.affine))

    @property
    def shape(self) -> tuple[int, int, int]:  # type: ignore[override]
        """Array shape ``(Z, Y, X)``."""
        s = self.array.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    @property
    def geometry(self) -> VolumeGeometry:
        """The grid alone, without voxel values."""
        return VolumeGeometry(self.shape, self.affine)

    @classmethod
    def from_spacing(
        cls,
        array: npt.ArrayLike,
        spacing_mm: Sequence[float],
        origin_lps_mm: Sequence[float] = (0.0, 0.0, 0.0),
        direction: npt.ArrayLike | None = None,
        info: SeriesInfo | None = None,
    ) -> Volume:
        """Build a volume from spacing, origin and direction cosines.

        Args:
            array: Voxels indexed ``(z, y, x)``.
            spacing_mm: Spacing along ``(z, y, x)``.
            origin_lps_mm: LPS position of voxel ``(0, 0, 0)``.
            direction: 3x3 unit direction cosines, column ``a`` for array axis ``a``.
                Defaults to axial head-first: z->S, y->P, x->L.
            info: Optional series metadata.
        """
        d = (
            np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], float)
            if direction is None
            else np.asarray(direction, dtype=np.float64)
        )
        affine = np.eye(4)
        affine[:3, :3] = d * np.asarray(spacing_mm, dtype=np.float64)[None, :]
        affine[:3, 3] = np.asarray(origin_lps_mm, dtype=np.float64)
        return cls(np.asarray(array), affine, info)

    def with_array(self, array: npt.ArrayLike) -> Volume:
        """Same geometry and metadata, different voxels (e.g. a mask or probability map)."""
        arr = np.asarray(array)
        if arr.shape != self.shape:
            raise ValueError(f"array shape {arr.shape} differs from volume shape {self.shape}")
        return Volume(arr, self.affine, self.info)

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.4g}" for s in self.spacing_mm)
        org = ", ".join(f"{o:.1f}" for o in self.origin_lps_mm)
        mem = self.array.nbytes / 2**20
        uid = f", series={self.info.series_uid}" if self.info is not None else ""
        return (
            f"Volume(shape={self.shape}, spacing_mm=({sp}), origin_lps_mm=({org}), "
            f"orientation={self.orientation_code}, dtype={self.array.dtype}, memory={mem:.1f} MiB{uid})"
        )


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
    """

    center_lps_mm: tuple[float, float, float]
    probability: float


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
        warnings: Things the reader should know (inputs ignored, stages skipped).
        medmm_version: Version that produced the result.
        maps: Label maps on the volume grid (lungs, lobes, nodules) for the exporters; not
            part of ``result.json`` (the NIfTI export writes them).
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
    warnings: tuple[str, ...] = ()
    medmm_version: str = ""
    maps: LabelMaps | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dictionary (paths as strings, absent stages left out, no label maps).

        The layout is described by ``medmm/report/result.schema.json``; ``schema_version``
        names its version.
        """
        out: dict[str, object] = {"schema_version": RESULT_SCHEMA_VERSION}
        out.update(dataclasses.asdict(dataclasses.replace(self, maps=None)))
        out.pop("maps")
        series = out["series"]
        assert isinstance(series, dict)
        series["source_files"] = [str(p) for p in self.series.source_files]
        series.pop("slice_sop_uids", None)
        for name in ("lungs", "nodules", "candidates", "nodule_threshold", "detector", "guidelines", "report"):
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
                tuple(ScoredPoint(tuple(c["center_lps_mm"]), c["probability"]) for c in candidates)  # type: ignore[arg-type]
                if candidates is not None
                else None
            ),
            nodule_threshold=d.get("nodule_threshold"),
            detector=d.get("detector"),
            guidelines=_guidelines_from(d.get("guidelines")),
            report=_report_from(d.get("report")),
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
