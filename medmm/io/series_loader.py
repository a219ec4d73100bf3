"""Load one DICOM series into a :class:`~medmm.types.Volume` in modality units (HU for CT).

Example:
    >>> from medmm.io import scan, load_series
    >>> series = scan("sample_dicom/").series[0]     # doctest: +SKIP
    >>> vol = load_series(series)                   # doctest: +SKIP
    >>> vol.spacing_mm                              # doctest: +SKIP
    (2.5, 0.703125, 0.703125)
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy import ndimage

from medmm.errors import InputError, MedmmError, SeriesGeometryError
from medmm.io.discovery import DicomSeries, scan
from medmm.io.headers import InstanceHeader
from medmm.io.limits import check_voxels, default_max_voxels
from medmm.io.pixels import decode_stored_values, stored_to_modality
from medmm.io.slice_geometry import GeometryPolicy, SliceRef, StackPlan, plan_stack
from medmm.types import Volume

__all__ = ["load_series"]

logger = logging.getLogger(__name__)


def _resolve(series: DicomSeries | str | os.PathLike[str]) -> DicomSeries:
    if isinstance(series, DicomSeries):
        return series
    result = scan(series)
    if not result.series and result.skipped:
        reasons = "; ".join(f"{s.path.name}: {s.reason.value} ({s.detail})" for s in result.skipped[:5])
        more = f" and {len(result.skipped) - 5} more" if len(result.skipped) > 5 else ""
        raise InputError(
            f"no loadable image series: {reasons}{more}",
            path=Path(series),
            hint="Run `medmm info PATH` to see every file and why it was skipped.",
        )
    if len(result.series) != 1:
        uids = ", ".join(s.series_uid for s in result.series) or "none"
        raise InputError(
            f"expected exactly one image series, found {len(result.series)} ({uids})",
            path=Path(series),
            hint="Use medmm.io.scan(path) and pass one of its series to load_series.",
        )
    return result.series[0]


def _fill_value(plan: StackPlan) -> float:
    """Value for voxels shifted in from outside the field of view: air for CT."""
    modality = plan.slices[0].instance.modality.upper()
    return -1024.0 if modality == "CT" else 0.0


def _decode_into(stack: np.ndarray, plan: StackPlan, workers: int) -> None:
    """Decode every input slice into ``stack[k]`` (k = sorted input index)."""
    by_instance: dict[str, tuple[InstanceHeader, list[tuple[int, int]]]] = {}
    for k, ref in enumerate(plan.slices):
        key = str(ref.instance.path)
        by_instance.setdefault(key, (ref.instance, []))[1].append((ref.frame.frame_index, k))

    def work(item: tuple[InstanceHeader, list[tuple[int, int]]]) -> None:
        header, targets = item
        stored = decode_stored_values(header)
        for frame_index, k in targets:
            stored_to_modality(header, frame_index, stored[frame_index], stack[k])

    items = list(by_instance.values())
    if workers <= 1 or len(items) < 8:
        for it in items:
            work(it)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # list() re-raises the first worker exception here, in the caller's thread.
        list(pool.map(work, items))


def _apply_tilt_shift(stack: np.ndarray, shift_px: np.ndarray, fill: float) -> None:
    buf = np.empty(stack.shape[1:], dtype=np.float32)
    for k in range(stack.shape[0]):
        if np.any(np.abs(shift_px[k]) > 1e-6):
            ndimage.shift(stack[k], shift_px[k], output=buf, order=1, mode="constant", cval=fill)
            stack[k] = buf


def _resample_along_normal(stack: np.ndarray, src_mm: np.ndarray, dst_mm: np.ndarray) -> np.ndarray:
    out = np.empty((dst_mm.size, *stack.shape[1:]), dtype=np.float32)
    hi = np.clip(np.searchsorted(src_mm, dst_mm, side="right"), 1, src_mm.size - 1)
    lo = hi - 1
    w = np.clip((dst_mm - src_mm[lo]) / (src_mm[hi] - src_mm[lo]), 0.0, 1.0).astype(np.float32)
    for k in range(dst_mm.size):
        np.multiply(stack[lo[k]], 1.0 - w[k], out=out[k])
        out[k] += w[k] * stack[hi[k]]
    return out


def load_series(
    series: DicomSeries | str | os.PathLike[str],
    *,
    geometry_policy: GeometryPolicy | str = GeometryPolicy.RAISE,
    workers: int | None = None,
    max_voxels: int | None = None,
) -> Volume:
    """Read a series into a float32 volume in modality units, with its LPS affine.

    Slices are ordered by position along the slice normal; rescale slope/intercept (or a
    Modality LUT) is applied per frame; enhanced multi-frame objects are split into
    frames using their functional groups; gantry tilt is corrected by resampling; other
    geometry problems raise (see :mod:`medmm.io.slice_geometry`).

    Args:
        series: A series from :func:`medmm.io.scan`, or a folder/file holding exactly one.
        geometry_policy: ``"raise"`` (default) refuses missing slices and uneven spacing;
            ``"resample"`` interpolates onto an even grid and records it.
        workers: Decoding threads (default: up to 4).
        max_voxels: Refuse a series whose headers add up to more voxels, before any pixel
            buffer is allocated. ``None``: ``$MEDMM_MAX_VOXELS`` when set, else 10**9.

    Returns:
        The volume; ``volume.info`` lists slice order, corrections and warnings.

    Raises:
        SeriesGeometryError: The slices do not form a usable grid.
        UnsupportedSeriesError: More voxels than ``max_voxels``.
        UnsupportedSeriesError: Not a grayscale image with patient geometry.
        DicomReadError: A file cannot be decoded.
    """
    s = _resolve(series)
    try:
        policy = GeometryPolicy(geometry_policy)
    except ValueError as exc:
        choices = ", ".join(p.value for p in GeometryPolicy)
        raise InputError(
            f"unknown geometry_policy {geometry_policy!r}; choose one of: {choices}", series_uid=s.series_uid
        ) from exc
    limit = default_max_voxels() if max_voxels is None else max_voxels
    check_voxels(
        sum(len(i.frames) * i.layout.rows * i.layout.columns for i in s.instances), limit, what=f"series {s.series_uid}"
    )
    refs = [SliceRef(inst, fr) for inst in s.instances for fr in inst.frames]
    plan = plan_stack(refs, s.series_uid, policy)
    n_workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    n_in = len(plan.slices)
    rows, cols = plan.out_shape[1:]
    check_voxels(int(np.prod(plan.out_shape)), limit, what=f"series {s.series_uid}")
    needs_resample = plan.resample_positions_mm is not None
    stack = np.empty((n_in, rows, cols), dtype=np.float32)
    try:
        _decode_into(stack, plan, n_workers)
    except MedmmError:
        raise
    except Exception as exc:
        raise InputError(f"failed while decoding: {type(exc).__name__}: {exc}", series_uid=s.series_uid) from exc
    if plan.inplane_shift_px is not None:
        _apply_tilt_shift(stack, plan.inplane_shift_px, _fill_value(plan))
    if needs_resample:
        stack = _resample_along_normal(stack, plan.positions_mm, plan.resample_positions_mm)  # type: ignore[arg-type]
    for msg in plan.corrections:
        logger.warning("series %s: %s", s.series_uid, msg)
    for msg in plan.warnings:
        logger.info("series %s: %s", s.series_uid, msg)
    ordered_files: dict[Path, None] = defaultdict(lambda: None)
    for ref in plan.slices:
        ordered_files[ref.instance.path] = None
    info = s.info.replace(
        source_files=tuple(ordered_files),
        slice_sop_uids=() if needs_resample else tuple(ref.instance.sop_instance_uid for ref in plan.slices),
        corrections=tuple(plan.corrections),
        warnings=tuple(plan.warnings),
    )
    try:
        return Volume(stack, plan.affine, info)
    except ValueError as exc:  # a grid plan_stack let through but Volume refuses
        raise SeriesGeometryError(
            f"series {s.series_uid}: the slices give an unusable voxel grid ({exc})",
            series_uid=s.series_uid,
            hint="Check PixelSpacing, SliceThickness, ImagePositionPatient and ImageOrientationPatient.",
        ) from exc
