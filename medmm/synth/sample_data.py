"""The committed ``sample_dicom/`` folder: three small synthetic cases as real DICOM.

* ``case_spiculated`` -- a solitary spiculated upper-lobe nodule (report agrees);
* ``case_metastases`` -- multiple nodules, with a report that **misses one** (disagrees);
* ``case_normal`` -- no nodule.

``reports.csv`` (StudyInstanceUID, text) holds the three reports for
``medmm analyze sample_dicom/ --reports-csv sample_dicom/reports.csv``.

Each is written by :func:`medmm.synth.dataset.write_case` at a small matrix (128) and
3 mm slices, JPEG 2000 lossless, so the folder stays a few MB. A test regenerates the
folder from :data:`SAMPLE_SEED` and checks it byte for byte, so it cannot drift from the
generator. Regenerate it with::

    python -c "from medmm.synth.sample_data import write_sample_dicom; write_sample_dicom('sample_dicom')"
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import JPEG2000Lossless

from medmm.io.atomic import atomic_path
from medmm.synth.cases import Pattern, generate_case
from medmm.synth.dataset import write_case
from medmm.synth.report_text import Disagreement, write_report
from medmm.synth.scanner import Kernel, ScannerSettings

__all__ = ["SAMPLE_CASES", "SAMPLE_SEED", "write_sample_dicom"]

SAMPLE_SEED = 20261128
SAMPLE_CASES: tuple[tuple[str, Pattern, Disagreement], ...] = (
    ("case_spiculated", Pattern.SOLITARY_SPICULATED_UPPER_LOBE, Disagreement.NONE),
    ("case_metastases", Pattern.MULTIPLE_METASTASES, Disagreement.MISSED_NODULE),
    ("case_normal", Pattern.NORMAL, Disagreement.NONE),
)


def write_sample_dicom(out_dir: str | os.PathLike[str], seed: int = SAMPLE_SEED) -> list[Path]:
    """Write the sample cases, a LUNA16-style ``annotations.csv`` and ``reports.csv`` into ``out_dir``.

    Returns:
        Every file written.
    """
    out = Path(out_dir)
    settings = ScannerSettings(Kernel.STANDARD, slice_thickness_mm=3.0, matrix=128)
    rows: list[list[object]] = []
    report_rows: list[list[str]] = []
    for n, (case_id, pattern, disagreement) in enumerate(SAMPLE_CASES):
        case_seed = seed + n
        case = generate_case(
            case_seed, case_id=case_id, pattern=pattern, scanner=settings, effusion_rate=0.0, emphysema_rate=0.0
        )
        report = write_report(
            case.nodules, case.diagnosis, np.random.default_rng([case_seed, 1]), disagreement=disagreement
        )
        folder, uid = write_case(case, report, out, transfer_syntax=JPEG2000Lossless)
        first = min((folder / "dicom").iterdir())
        report_rows.append([str(pydicom.dcmread(first, stop_before_pixels=True).StudyInstanceUID), report.text])
        rows += [[uid, *(round(c, 4) for c in nod.center_lps_mm), round(nod.diameter_mm, 3)] for nod in case.nodules]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"])
    writer.writerows(rows)
    with atomic_path(out / "annotations.csv") as tmp:
        tmp.write_text(buf.getvalue())
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["StudyInstanceUID", "text"])
    writer.writerows(report_rows)
    with atomic_path(out / "reports.csv") as tmp:  # for `medmm analyze --reports-csv`
        tmp.write_text(buf.getvalue())
    return sorted(p for p in out.rglob("*") if p.is_file() and p.name != "README.md")
