"""NIfTI export of the CT and its label maps (open aligned in 3D Slicer and ITK-SNAP).

Files (fixed names, inside the series' output folder):

* ``ct.nii.gz`` -- the analyzed volume, HU as int16;
* ``lungs.nii.gz`` (1 right, 2 left), ``lobes.nii.gz`` (1 RUL, 2 RML, 3 RLL, 4 LUL, 5 LLL),
  ``nodules.nii.gz`` (``n`` = nodule ``n`` of ``result.json``) -- uint8 / uint16 labels;
* ``labels.txt`` -- an ITK-SNAP label description file for the lobe and nodule labels.

The affine is the volume's LPS affine converted to NIfTI's RAS convention in one place
(:mod:`medmm.io.nifti`), with qform and sform both set (code 1, scanner), so every file
shares the CT's geometry exactly. :func:`read_label_maps` reads the maps back for
``medmm report``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from medmm.anatomy.regions import LOBE_NAMES
from medmm.errors import ExportError
from medmm.io.atomic import atomic_path
from medmm.io.nifti import read_nifti, write_nifti
from medmm.report.key_images import LOBE_COLOURS
from medmm.types import AnalysisResult, LabelMaps, Volume

__all__ = ["MAP_FILES", "read_label_maps", "write_nifti_maps"]

MAP_FILES = {"lungs": "lungs.nii.gz", "lobes": "lobes.nii.gz", "nodules": "nodules.nii.gz"}


def _labels_txt(result: AnalysisResult) -> str:
    lines = ["# ITK-SNAP Label Description File (lobes.nii.gz; nodules.nii.gz uses its own numbers)"]
    lines.append('0 0 0 0 0 0 0 "Clear Label"')
    for value, (r, g, b) in LOBE_COLOURS.items():
        lines.append(f'{value} {r} {g} {b} 1 1 1 "{LOBE_NAMES[value - 1]}"')
    for n, nodule in enumerate(result.nodules or (), start=1):
        lines.append(f'{n} 255 40 40 1 1 1 "nodule {n} {nodule.diameter_mm:.1f} mm {nodule.lobe}"  # nodules.nii.gz')
    return "\n".join(lines) + "\n"


def write_nifti_maps(result: AnalysisResult, volume: Volume, folder: Path) -> list[Path]:
    """Write ``ct.nii.gz`` and the label maps the result carries.

    The files are compressed in two threads (gzip releases the GIL), which halves the wall
    time on two cores.

    Raises:
        ExportError: The maps do not match the volume's shape, or a file cannot be written.
    """
    jobs: list[tuple[Path, np.ndarray]] = []
    hu = np.rint(volume.array)
    if hu.size and (hu.min() < -32768 or hu.max() > 32767):
        np.clip(hu, -32768, 32767, out=hu)
    jobs.append((folder / "ct.nii.gz", hu.astype(np.int16)))
    maps = result.maps
    if maps is not None:
        for name, file in MAP_FILES.items():
            labels = getattr(maps, name)
            if labels is None:
                continue
            if labels.shape != volume.shape:
                raise ExportError(
                    f"{name} map shape {labels.shape} differs from the volume's {volume.shape}",
                    series_uid=result.series.series_uid,
                )
            jobs.append((folder / file, labels))
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda job: write_nifti(volume.with_array(job[1]), job[0]), jobs))
    written = [path for path, _ in jobs]
    if maps is not None:
        with atomic_path(folder / "labels.txt") as tmp:
            tmp.write_text(_labels_txt(result), encoding="utf-8")
        written.append(folder / "labels.txt")
    return written


def read_label_maps(folder: Path, volume: Volume) -> LabelMaps:
    """Label maps written by :func:`write_nifti_maps`, checked against the volume's geometry.

    Raises:
        ExportError: A map is missing or has another grid than the volume.
    """
    arrays: dict[str, np.ndarray | None] = {}
    for name, file in MAP_FILES.items():
        path = folder / file
        if not path.exists():
            if name == "nodules":
                arrays[name] = None
                continue
            raise ExportError(
                f"{file} is missing beside result.json",
                path=path,
                hint="Run `medmm analyze` with the NIfTI format (the default) to keep the label maps.",
            )
        vol = read_nifti(path, dtype=None)
        if vol.shape != volume.shape or not np.allclose(vol.affine, volume.affine, atol=1e-3):
            raise ExportError(
                f"{file} is not on the source series' grid",
                path=path,
                hint="The result folder and the source series do not belong together.",
            )
        arrays[name] = np.asarray(vol.array)
    return LabelMaps(
        lungs=arrays["lungs"].astype(np.uint8),  # type: ignore[union-attr]
        lobes=arrays["lobes"].astype(np.uint8),  # type: ignore[union-attr]
        nodules=arrays["nodules"].astype(np.uint16) if arrays["nodules"] is not None else None,
    )
