"""Benchmark: load one CT DICOM series into a float32 (z, y, x) HU volume, three ways.

Methods compared in one run:

* ``medmm``            -- ``load_series(scan(folder).series[0])`` (scan + load timed together);
* ``medmm (load only)`` -- ``load_series(series)`` with the scan done beforehand;
* ``SimpleITK``        -- ``ImageSeriesReader`` (GDCM names lookup + ``Execute`` + array);
* ``pydicom-per-file`` -- ``dcmread`` each file, sort along the slice normal, rescale, stack.

Wall time: one warm-up, then ``--repeats`` runs (median and min, seconds; the file cache is
warm). Peak memory: each method runs once in a fresh subprocess that imports everything,
resets the kernel's peak-RSS counter (``/proc/self/clear_refs``), notes VmRSS, loads, and
reports ``VmHWM - baseline``; without ``clear_refs`` it falls back to ``tracemalloc``
(Python/numpy allocations only, so C++ buffers inside SimpleITK are missed).

Run from the repository root::

    python benchmarks/bench_load_series.py [--folder PATH] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk  # noqa: N813 - the library's own spelling

from medmm.io import DicomSeries, load_series, scan

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared/data/lidc-idri-0001/series"
MIB = 1024.0 * 1024.0
REFERENCE = "SimpleITK"


def load_medmm(folder: Path) -> np.ndarray:
    return load_series(scan(folder).series[0]).array


def load_sitk(folder: Path) -> np.ndarray:
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder))
    reader.SetFileNames(names)
    img = reader.Execute()
    return sitk.GetArrayFromImage(img).astype(np.float32)


def load_pydicom(folder: Path) -> np.ndarray:
    datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir()) if p.is_file()]
    iop = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    datasets.sort(key=lambda ds: float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal)))
    slices = [
        (ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)).astype(np.float32) for ds in datasets
    ]
    return np.stack(slices)


def medmm_loader(folder: Path) -> Callable[[Path], np.ndarray]:
    """Return a loader that skips the scan (done here, outside any measurement)."""
    series: DicomSeries = scan(folder).series[0]
    return lambda _folder: load_series(series).array


METHODS: dict[str, Callable[[Path], Callable[[Path], np.ndarray]]] = {
    "medmm": lambda _f: load_medmm,
    "medmm (load only)": medmm_loader,
    "SimpleITK": lambda _f: load_sitk,
    "pydicom-per-file": lambda _f: load_pydicom,
}


def _proc_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def worker(method: str, folder: Path) -> None:
    """Load once with ``method`` and print ``{"peak_mib", "mode", "array_mib"}`` as JSON."""
    fn = METHODS[method](folder)
    try:
        Path("/proc/self/clear_refs").write_text("5")
        baseline = _proc_kib("VmRSS")
        arr = fn(folder)
        peak_mib, mode = (_proc_kib("VmHWM") - baseline) / 1024.0, "rss"
    except OSError:
        tracemalloc.start()
        arr = fn(folder)
        peak_mib, mode = tracemalloc.get_traced_memory()[1] / MIB, "tracemalloc"
        tracemalloc.stop()
    print(json.dumps({"peak_mib": peak_mib, "mode": mode, "array_mib": arr.nbytes / MIB}))


def measure_peak(method: str, folder: Path) -> dict[str, float | str]:
    script = str(Path(__file__).resolve())
    cmd = [sys.executable, script, "--worker", method, "--folder", str(folder)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def time_method(fn: Callable[[Path], np.ndarray], folder: Path, repeats: int) -> tuple[np.ndarray, list[float]]:
    arr = fn(folder)  # warm-up; its result is kept for the agreement check
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(folder)
        times.append(time.perf_counter() - t0)
    return arr, times


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for k, row in enumerate([header, *rows]):
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print(" | ".join(cells))
        if k == 0:
            print("-+-".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Load one DICOM series three ways; time and peak RSS.")
    ap.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="one DICOM series folder")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs after one warm-up")
    ap.add_argument("--worker", choices=list(METHODS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    folder: Path = args.folder.resolve()
    if not folder.is_dir():
        print(f"series folder not found: {folder} -- nothing to benchmark (pass --folder PATH)")
        return 0
    if args.worker:
        worker(args.worker, folder)
        return 0

    n_files = sum(1 for p in folder.iterdir() if p.is_file())
    print(f"folder: {folder} ({n_files} files), repeats: {args.repeats} (+1 warm-up)")
    arrays: dict[str, np.ndarray] = {}
    times: dict[str, list[float]] = {}
    peaks: dict[str, dict[str, float | str]] = {}
    for name, make in METHODS.items():
        arrays[name], times[name] = time_method(make(folder), folder, args.repeats)
        peaks[name] = measure_peak(name, folder)

    ref = arrays[REFERENCE]
    array_mib = ref.nbytes / MIB
    print(f"array: shape {ref.shape}, float32, {array_mib:.1f} MiB")
    for name, arr in arrays.items():
        if name == REFERENCE:
            continue
        if arr.shape != ref.shape:
            print(f"max |{name} - {REFERENCE}| = n/a: shape {arr.shape} != {ref.shape}")
            continue
        print(f"max |{name} - {REFERENCE}| = {float(np.max(np.abs(arr - ref))):g}")
    modes = {str(p["mode"]) for p in peaks.values()}
    if modes != {"rss"}:
        print("NOTE: /proc/self/clear_refs not writable; peak = tracemalloc (Python/numpy only)")

    ref_median = statistics.median(times[REFERENCE])
    rows = []
    for name in METHODS:
        med, peak = statistics.median(times[name]), float(peaks[name]["peak_mib"])
        rows.append(
            [
                name,
                f"{med:.3f}",
                f"{min(times[name]):.3f}",
                f"{med / ref_median:.2f}x",
                f"{peak:.1f}",
                f"{peak / array_mib:.2f}x",
            ]
        )
    print()
    header = ["method", "median s", "min s", f"ratio vs {REFERENCE}", "peak MiB", "peak / array"]
    print_table(header, rows)

    wall_ok = statistics.median(times["medmm"]) <= ref_median
    peak_ok = float(peaks["medmm"]["peak_mib"]) <= 2.0 * array_mib
    print(
        f"\ntarget: medmm wall <= SimpleITK; peak <= 2x array -> "
        f"wall {'PASS' if wall_ok else 'FAIL'}, peak {'PASS' if peak_ok else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
