"""Geometry and series metadata: :class:`Volume`, :class:`VolumeGeometry`, :class:`SeriesInfo`.

Geometry convention (one rule, used everywhere):

* Arrays are indexed in the order ``(z, y, x)`` = ``(slice, row, column)``.
* A 4x4 ``affine`` maps an array index given **in that same order** ``(k, j, i)`` to
  patient coordinates in millimetres in the DICOM LPS frame (x grows to the patient's
  left, y to posterior, z to head). LUNA16 world coordinates are the same numbers.
* Spacing, origin and direction are *derived* from the affine, so they can never
  disagree with it.

The names are re-exported by :mod:`medmm.types`, where every stage imports them from.

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
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["SeriesInfo", "Volume", "VolumeGeometry"]

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
