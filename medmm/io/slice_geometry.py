"""Turn the per-frame positions of a series into one trustworthy voxel grid.

The rules (DICOM PS3.3 C.7.6.2 defines the attributes used):

* Slices are ordered by their position along the slice normal
  ``n = row_cosines x column_cosines``, never by InstanceNumber or file name.
* All frames must share orientation, matrix size and pixel spacing.
* Two frames at the same position are refused (usually two acquisitions or phases).
* Steps along the normal must be even. A missing slice (a step that is a whole multiple
  of the usual one) or uneven steps are refused, unless the caller accepts resampling
  onto an even grid with :attr:`GeometryPolicy.RESAMPLE`.
* Gantry tilt (slices stacked along a direction that is not the normal, so positions
  drift in-plane) is corrected by shifting each slice in-plane onto an orthogonal grid,
  which is what CT vendors' own reformats do. The correction is logged and recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from medmm.errors import SeriesGeometryError, UnsupportedSeriesError
from medmm.io.headers import FrameRecord, InstanceHeader

__all__ = ["GeometryPolicy", "SliceRef", "StackPlan", "plan_stack"]

_ORIENT_TOL = 1e-4
_SPACING_REL_TOL = 1e-3
# Plausible pixel spacing / slice thickness: 1 micrometre (micro-CT) to 1 metre. Outside it
# the affine is singular or meaningless (a fuzzed SliceThickness of 3e-267 mm).
_MIN_SPACING_MM = 1e-3
_MAX_SPACING_MM = 1e3


class GeometryPolicy(StrEnum):
    """What to do with missing slices or uneven slice spacing."""

    RAISE = "raise"
    RESAMPLE = "resample"


@dataclass(frozen=True)
class SliceRef:
    """One frame of one instance."""

    instance: InstanceHeader
    frame: FrameRecord

    def describe(self) -> str:
        """Short label for messages: file name (and frame when multi-frame)."""
        name = self.instance.path.name
        return f"{name}#frame{self.frame.frame_index + 1}" if self.instance.layout.number_of_frames > 1 else name


@dataclass
class StackPlan:
    """How to assemble the sorted slices into a volume.

    Attributes:
        slices: Frames sorted along the normal (input order for reading).
        positions_mm: Position of each input slice along the normal, ascending.
        affine: Output affine (index ``(k, j, i)`` -> LPS mm).
        out_shape: Output array shape.
        inplane_shift_px: Per-input-slice ``(row_shift, column_shift)`` in pixels to apply
            for gantry-tilt correction, or None when no shift is needed.
        resample_positions_mm: Output positions along the normal when the stack must be
            interpolated onto an even grid, else None (one output slice per input slice).
        corrections: Sentences describing what was corrected.
        warnings: Sentences describing oddities that needed no correction.
    """

    slices: list[SliceRef]
    positions_mm: np.ndarray
    affine: np.ndarray
    out_shape: tuple[int, int, int]
    inplane_shift_px: np.ndarray | None = None
    resample_positions_mm: np.ndarray | None = None
    corrections: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _check_uniform(slices: list[SliceRef], series_uid: str) -> None:
    """Refuse mixed matrix sizes, orientations or pixel spacings."""
    sizes: dict[tuple[int, int], list[str]] = {}
    for s in slices:
        sizes.setdefault((s.instance.layout.rows, s.instance.layout.columns), []).append(s.describe())
    if len(sizes) > 1:
        parts = "; ".join(f"{r}x{c}: {len(v)} slices (e.g. {v[0]})" for (r, c), v in sizes.items())
        raise SeriesGeometryError(
            f"mixed matrix sizes in one series ({parts})",
            series_uid=series_uid,
            hint="The series mixes images of different size (often a localizer or a second "
            "reconstruction); remove the odd files or export the reconstructions separately.",
        )
    ref = np.asarray(slices[0].frame.orientation)
    for s in slices[1:]:
        if np.max(np.abs(np.asarray(s.frame.orientation) - ref)) > _ORIENT_TOL:
            raise SeriesGeometryError(
                f"mixed image orientations: {slices[0].describe()} has {ref.round(5).tolist()}, "
                f"{s.describe()} has {np.round(s.frame.orientation, 5).tolist()}",
                series_uid=series_uid,
                hint="A series must be one stack of parallel slices; split it by orientation.",
            )
    ps0 = np.asarray(slices[0].frame.pixel_spacing_mm)
    for s in slices[1:]:
        if np.max(np.abs(np.asarray(s.frame.pixel_spacing_mm) - ps0)) > _SPACING_REL_TOL * ps0.max():
            raise SeriesGeometryError(
                f"mixed pixel spacings: {slices[0].describe()} has {ps0.tolist()}, "
                f"{s.describe()} has {list(s.frame.pixel_spacing_mm)}",
                series_uid=series_uid,
            )


def _unit_axes(
    orientation: tuple[float, ...], where: str, series_uid: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    row = np.asarray(orientation[:3], float)
    col = np.asarray(orientation[3:], float)
    nr, nc = np.linalg.norm(row), np.linalg.norm(col)
    if nr < 0.5 or nc < 0.5 or abs(float(row @ col)) / (nr * nc) > 1e-3:
        raise SeriesGeometryError(
            f"ImageOrientationPatient {list(orientation)} of {where} is not two perpendicular unit vectors",
            series_uid=series_uid,
        )
    row, col = row / nr, col / nc
    normal = np.cross(row, col)
    return row, col, normal / np.linalg.norm(normal)


def plan_stack(slices: list[SliceRef], series_uid: str, policy: GeometryPolicy = GeometryPolicy.RAISE) -> StackPlan:
    """Sort frames and derive the output grid, refusing or correcting bad geometry.

    Args:
        slices: All frames of the series, in any order.
        series_uid: For messages.
        policy: What to do about missing slices or uneven spacing.

    Raises:
        UnsupportedSeriesError: Frames lack position/orientation/spacing.
        SeriesGeometryError: The frames do not form a usable grid under ``policy``.
    """
    if not slices:
        raise UnsupportedSeriesError("series has no image frames", series_uid=series_uid)
    for s in slices:
        f = s.frame
        if f.position_lps_mm is None or f.orientation is None or f.pixel_spacing_mm is None:
            missing = [
                name
                for name, v in (
                    ("ImagePositionPatient", f.position_lps_mm),
                    ("ImageOrientationPatient", f.orientation),
                    ("PixelSpacing", f.pixel_spacing_mm),
                )
                if v is None
            ]
            raise UnsupportedSeriesError(
                f"{s.describe()} has no {', '.join(missing)}: not a cross-sectional image with patient geometry",
                path=s.instance.path,
                series_uid=series_uid,
                hint="medmm needs CT/MR slices that say where they are in the patient; "
                "projection, secondary-capture and ultrasound images cannot be placed in 3D.",
            )
        if not all(math.isfinite(v) and _MIN_SPACING_MM <= v <= _MAX_SPACING_MM for v in f.pixel_spacing_mm):
            raise SeriesGeometryError(
                f"{s.describe()} has PixelSpacing {list(f.pixel_spacing_mm)} mm, outside "
                f"[{_MIN_SPACING_MM:g}, {_MAX_SPACING_MM:g}] mm",
                path=s.instance.path,
                series_uid=series_uid,
            )
    _check_uniform(slices, series_uid)
    row, col, normal = _unit_axes(slices[0].frame.orientation, slices[0].describe(), series_uid)  # type: ignore[arg-type]
    ipp = np.array([s.frame.position_lps_mm for s in slices], dtype=np.float64)
    dist = ipp @ normal
    order = np.argsort(dist, kind="stable")
    slices = [slices[i] for i in order]
    ipp, dist = ipp[order], dist[order]
    dy, dx = (float(v) for v in slices[0].frame.pixel_spacing_mm)  # type: ignore[union-attr]
    rows, cols = slices[0].instance.layout.rows, slices[0].instance.layout.columns
    n = len(slices)
    corrections: list[str] = []
    warnings: list[str] = []

    if n == 1:
        thick = slices[0].instance.series_attributes.get("slice_thickness_mm") or 1.0
        if not (math.isfinite(thick) and _MIN_SPACING_MM <= thick <= _MAX_SPACING_MM):
            warnings.append(
                f"single slice: SliceThickness {thick:g} mm is not usable; through-plane spacing set to 1 mm"
            )
            thick = 1.0
        else:
            warnings.append(f"single slice: through-plane spacing taken from SliceThickness ({thick:g} mm)")
        return StackPlan(
            slices, dist, _affine(ipp[0], normal * thick, col * dy, row * dx), (1, rows, cols), warnings=warnings
        )

    steps = np.diff(dist)
    dup = np.flatnonzero(steps < 1e-3)
    if dup.size:
        a, b = slices[dup[0]], slices[dup[0] + 1]
        raise SeriesGeometryError(
            f"{dup.size} pair(s) of slices share a position, e.g. {a.describe()} and {b.describe()} "
            f"at {dist[dup[0]]:.3f} mm along the normal",
            series_uid=series_uid,
            hint="The series holds more than one stack (repeated acquisition, cardiac or "
            "contrast phases, or copied files); split it by AcquisitionNumber or "
            "TemporalPositionIdentifier, or remove the duplicates.",
        )
    step = float(np.median(steps))

    # In-plane drift of the positions = gantry tilt (shear).
    rel = ipp - ipp[0]
    inplane = np.stack([rel @ row, rel @ col], axis=1)  # (n, 2) mm along row dir, col dir
    along = dist - dist[0]
    slope, *_ = np.linalg.lstsq(along[:, None], inplane, rcond=None)  # (1, 2) mm per mm
    resid = inplane - along[:, None] * slope
    if np.max(np.abs(resid)) > max(0.05 * min(dx, dy), 0.01):
        worst = int(np.argmax(np.max(np.abs(resid), axis=1)))
        raise SeriesGeometryError(
            f"slice positions do not lie on a line: {slices[worst].describe()} is "
            f"{np.max(np.abs(resid[worst])):.2f} mm off the stack axis",
            series_uid=series_uid,
            hint="The series mixes stacks or has corrupt ImagePositionPatient values.",
        )
    drift_mm = np.abs(slope[0]) * (dist[-1] - dist[0])
    shift_px = None
    if np.any(drift_mm > 0.1 * np.array([dx, dy])):
        tilt_deg = math.degrees(math.atan(float(np.linalg.norm(slope[0]))))
        mid = 0.5 * (inplane[0] + inplane[-1])
        # Output slice k sits at ipp[0] + mid (in-plane) + along[k] * normal.
        shift_px = np.stack([(inplane[:, 1] - mid[1]) / dy, (inplane[:, 0] - mid[0]) / dx], axis=1)
        origin = ipp[0] + mid[0] * row + mid[1] * col
        corrections.append(
            f"gantry tilt of {tilt_deg:.2f} degrees corrected: slices shifted in-plane by up to "
            f"{np.max(np.abs(shift_px)):.1f} pixels onto an orthogonal grid"
        )
    else:
        origin = ipp[0]
        if np.any(drift_mm > 0):
            warnings.append(f"negligible in-plane drift of {drift_mm.max():.3f} mm over the stack ignored")

    uneven = np.abs(steps - step) > max(_SPACING_REL_TOL * step * 10, 1e-3)
    spacing = float((dist[-1] - dist[0]) / (n - 1))
    out_pos = None
    if np.any(uneven):
        problem = _describe_uneven(steps, step, uneven, slices)
        if policy != GeometryPolicy.RESAMPLE:
            raise SeriesGeometryError(
                problem,
                series_uid=series_uid,
                hint="Re-export the complete series, or call load_series(..., geometry_policy='resample') "
                "to interpolate onto an even grid (values in the gap are then interpolated, not measured).",
            )
        spacing = step
        out_pos = dist[0] + step * np.arange(int(np.rint((dist[-1] - dist[0]) / step)) + 1)
        corrections.append(f"{problem}; linearly resampled onto {out_pos.size} slices at {step:.3f} mm")
    return StackPlan(
        slices,
        dist,
        _affine(origin, normal * spacing, col * dy, row * dx),
        (n if out_pos is None else out_pos.size, rows, cols),
        inplane_shift_px=shift_px,
        resample_positions_mm=out_pos,
        corrections=corrections,
        warnings=warnings,
    )


def _describe_uneven(steps: np.ndarray, step: float, uneven: np.ndarray, slices: list[SliceRef]) -> str:
    """Name a missing-slice gap (a whole multiple of the usual step) or uneven spacing."""
    ratios = steps / step
    gaps = np.flatnonzero(uneven & (np.abs(ratios - np.round(ratios)) < 0.05) & (np.round(ratios) >= 2))
    if gaps.size:
        g = int(gaps[0])
        missing = int(sum(round(ratios[i]) - 1 for i in gaps))
        return (
            f"{missing} missing slice(s): gap of {steps[g]:.3f} mm between {slices[g].describe()} and "
            f"{slices[g + 1].describe()} where the usual step is {step:.3f} mm"
        )
    g = int(np.flatnonzero(uneven)[0])
    return (
        f"uneven slice spacing: steps from {steps.min():.3f} to {steps.max():.3f} mm "
        f"(first odd step {steps[g]:.3f} mm after {slices[g].describe()})"
    )


def _affine(origin: np.ndarray, k_step: np.ndarray, j_step: np.ndarray, i_step: np.ndarray) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, 0], aff[:3, 1], aff[:3, 2], aff[:3, 3] = k_step, j_step, i_step, origin
    return aff
