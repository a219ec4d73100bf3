"""Candidate-search filters: SciPy ``ndimage`` (one core) vs medmm's torch filters, one run.

On one series (default LIDC-IDRI-0001 from ``../shared/data``; ``--folder`` for another)
the lung region is cut and resampled to 1 mm, then every step of the blob filter runs
both ways at each of the seven candidate scales -- the SciPy calls the candidate search
used before (``ndimage.zoom``, ``gaussian_filter(mode="nearest")``, the NumPy 7-point
Laplacian, ``maximum_filter(size=3)``, ``astype(float16)``) and their
:mod:`medmm.detect.filters` replacements -- and prints, per step, the median wall time of
each, their ratio and the largest difference between the two outputs. The last row is the
whole of :func:`medmm.detect.candidates.blob_peaks` as shipped.

    python benchmarks/bench_candidates.py [--folder DICOM_DIR] [--threads 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]


def _median_s(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _numpy_laplacian(g: np.ndarray) -> np.ndarray:
    lap = np.zeros_like(g)
    c = g[1:-1, 1:-1, 1:-1]
    lap[1:-1, 1:-1, 1:-1] = (
        g[2:, 1:-1, 1:-1]
        + g[:-2, 1:-1, 1:-1]
        + g[1:-1, 2:, 1:-1]
        + g[1:-1, :-2, 1:-1]
        + g[1:-1, 1:-1, 2:]
        + g[1:-1, 1:-1, :-2]
        - 6.0 * c
    )
    return lap


def main() -> None:
    """Time both implementations of every step and print the table."""
    from medmm.anatomy import segment_lungs
    from medmm.detect import filters
    from medmm.detect.candidates import DEFAULT_DIAMETERS_MM, PARENCHYMA_HU, blob_peaks, lung_region_isotropic
    from medmm.grid import mask_box
    from medmm.io import load_series

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=REPO.parent / "shared/data/lidc-idri-0001/series")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    volume = load_series(args.folder)
    lung_mask = segment_lungs(volume).lung_mask
    box = mask_box(lung_mask, volume.spacing_mm, 10.0)
    zoom = [float(s) for s in volume.spacing_mm]  # to 1 mm
    src = volume.array[box]
    out_shape = filters.zoomed_shape(src.shape, zoom)
    rows: list[tuple[str, float, float, float]] = []

    def compare(name: str, ref: Callable[[], Any], new: Callable[[], Any]) -> None:
        t_ref, a = _median_s(ref, args.repeat)
        t_new, b = _median_s(new, args.repeat)
        diff = float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())
        rows.append((name, t_ref, t_new, diff))

    compare(
        f"resample {src.shape} -> {out_shape}",
        lambda: ndimage.zoom(src, zoom, order=1, mode="nearest", grid_mode=False).astype(np.float32),
        lambda: filters.resample_linear(src, out_shape),
    )
    region, mask = lung_region_isotropic(volume, lung_mask)
    hu = np.where(mask, np.clip(region.array, -1000.0, 400.0), PARENCHYMA_HU).astype(np.float32)
    spacing_mm = float(np.mean(region.spacing_mm))
    for d in DEFAULT_DIAMETERS_MM:
        sigma_mm = d / 2.0 / math.sqrt(3.0)
        step = 2 if sigma_mm >= 2.0 * spacing_mm else 1
        img = np.ascontiguousarray(hu[::step, ::step, ::step])
        sigma = sigma_mm / (spacing_mm * step)
        tag = f"{d:g} mm scale, {img.shape}"
        compare(
            f"gaussian sigma {sigma:.2f}, {tag}",
            lambda img=img, sigma=sigma: ndimage.gaussian_filter(img, sigma, mode="nearest"),
            lambda img=img, sigma=sigma: filters.gaussian(img, sigma),
        )
        g = filters.gaussian(img, sigma)
        compare(f"laplacian, {tag}", lambda g=g: _numpy_laplacian(g), lambda g=g: filters.laplacian(g))
        resp = -(sigma**2) * filters.laplacian(g)
        compare(
            f"3x3x3 local max, {tag}",
            lambda r=resp: r == ndimage.maximum_filter(r, size=3),
            lambda r=resp: filters.local_max(r),
        )
        compare(f"float16 copy, {tag}", lambda r=resp: r.astype(np.float16), lambda r=resp: filters.half(r))
    t_all, peaks = _median_s(lambda: blob_peaks(region, mask), args.repeat)

    print(f"series: {args.folder}; region {region.shape} at 1 mm; threads {args.threads}; median of {args.repeat}")
    print(f"{'step':58s} {'scipy s':>8s} {'torch s':>8s} {'speed-up':>9s} {'max |diff|':>11s}")
    for name, t_ref, t_new, diff in rows:
        print(f"{name:58s} {t_ref:8.3f} {t_new:8.3f} {t_ref / t_new:8.1f}x {diff:11.3g}")
    total_ref, total_new = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{'sum of the steps above':58s} {total_ref:8.3f} {total_new:8.3f} {total_ref / total_new:8.1f}x")
    print(f"blob_peaks as shipped (features included): {t_all:.2f} s, {len(peaks)} peaks")


if __name__ == "__main__":
    main()
