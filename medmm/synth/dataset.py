"""Write synthetic cases to disk, and whole train/validation/test sets.

One case folder holds::

    <case_id>/dicom/CT0001.dcm ...   the CT series (CT Image Storage)
    <case_id>/report.txt             the report text
    <case_id>/nodules.nii.gz         nodule label map (n = nodule n of ground_truth.json)
    <case_id>/lobes.nii.gz           lobe labels (1 RUL, 2 RML, 3 RLL, 4 LUL, 5 LLL)
    <case_id>/ground_truth.json      diagnosis, nodules (LPS mm), findings, report mentions

and each split folder an ``annotations.csv`` in the LUNA16 layout. Cases derive their
seed from (data-set seed, index), so a set is reproducible and any case can be remade
alone.

Example:
    >>> from medmm.synth.dataset import generate_dataset
    >>> generate_dataset("synth_out", n_cases=10, seed=1, matrix=256)   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian

from medmm.io.atomic import atomic_path
from medmm.io.nifti import write_nifti
from medmm.parallel import process_map
from medmm.synth.cases import (
    DEFAULT_PATTERN_RATES,
    SUBSOLID_SIZE_MM,
    Pattern,
    SyntheticCase,
    check_subsolid_size,
    generate_case,
)
from medmm.synth.dicom_writer import SeriesTemplate, write_ct_series
from medmm.synth.report_text import Disagreement, SyntheticReport, write_report
from medmm.synth.scanner import DICOM_KERNEL_NAMES

__all__ = ["CaseRecord", "case_report", "case_seed", "generate_dataset", "ground_truth_record", "write_case"]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CaseRecord:
    """Summary of one written case (one row of the manifest)."""

    case_id: str
    split: str
    seed: int
    series_uid: str
    pattern: str
    diagnosis: str
    n_nodules: int
    report_disagrees: bool
    folder: str


def case_seed(dataset_seed: int, index: int) -> int:
    """Seed of case ``index`` in a data set (independent streams via SeedSequence)."""
    return int(np.random.SeedSequence([dataset_seed, index]).generate_state(1)[0])


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def ground_truth_record(case: SyntheticCase, report: SyntheticReport, series_uid: str) -> dict[str, Any]:
    """The ``ground_truth.json`` content of a case (diagnosis, nodules, findings, report mentions)."""
    return {
        "case_id": case.case_id,
        "seed": case.seed,
        "series_uid": series_uid,
        "pattern": case.pattern.value,
        "diagnosis": case.diagnosis,
        "nodules": [
            {
                "label": n.label,
                "center_lps_mm": [round(c, 4) for c in n.center_lps_mm],
                "diameter_mm": round(n.diameter_mm, 3),
                "solid_diameter_mm": round(n.solid_diameter_mm, 3),
                "volume_mm3": round(n.volume_mm3, 2),
                "lobe": n.lobe.name,
                "texture": n.spec.texture.value,
                "calcification": n.spec.calcification.value,
                "spiculation": round(n.spec.spiculation, 3),
                "lobulation": round(n.spec.lobulation, 3),
                "position": n.spec.position.value,
            }
            for n in case.nodules
        ],
        "other_findings": _rounded(asdict(case.other)),
        "patient_shape": _rounded(asdict(case.shape)),
        "scanner": {**asdict(case.scanner), "kernel": case.scanner.kernel.value},
        "report": {
            "disagreement": report.disagreement.value,
            "discrepancies": list(report.discrepancies),
            "mentions": [asdict(m) for m in report.mentions],
        },
        "notes": list(case.notes),
    }


def write_case(
    case: SyntheticCase,
    report: SyntheticReport,
    out_dir: str | os.PathLike[str],
    *,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> tuple[Path, str]:
    """Write one case folder; returns ``(folder, SeriesInstanceUID)``."""
    folder = Path(out_dir) / case.case_id
    folder.mkdir(parents=True, exist_ok=True)
    age = 45 + (case.seed % 40)
    template = SeriesTemplate(
        seed=case.seed,
        patient_id=f"MEDMM-SYNTH-{case.case_id}",
        patient_name=f"Synthetic^{case.case_id}",
        patient_sex="MF"[case.seed % 2],
        patient_age=f"{age:03d}Y",
        series_description=f"medmm synthetic chest CT {case.scanner.slice_thickness_mm:g}mm",
        kernel=DICOM_KERNEL_NAMES[case.scanner.kernel],
    )
    write_ct_series(
        case.volume,
        folder / "dicom",
        template,
        slice_thickness_mm=case.scanner.slice_thickness_mm,
        transfer_syntax=transfer_syntax,
    )
    write_nifti(case.volume.with_array(case.nodule_map), folder / "nodules.nii.gz")
    write_nifti(case.volume.with_array(case.lobe), folder / "lobes.nii.gz")
    _write_text(folder / "report.txt", report.text + "\n")
    series_uid = template.resolved_series_uid
    gt = ground_truth_record(case, report, series_uid)
    _write_text(folder / "ground_truth.json", json.dumps(gt, indent=2, default=_json_default) + "\n")
    return folder, series_uid


def case_report(case: SyntheticCase, seed: int, disagree_rate: float) -> SyntheticReport:
    """The report `medmm synth` writes for a case: style and disagreement drawn from ``seed``.

    Args:
        case: The generated case.
        seed: The case seed (the report uses its own stream, ``[seed, 1]``).
        disagree_rate: Chance that a case with nodules gets a report contradicting its image.
    """
    rng = np.random.default_rng([seed, 1])
    disagree = Disagreement.NONE
    if case.nodules and rng.random() < disagree_rate:
        disagree = Disagreement.MISSED_NODULE if rng.random() < 0.5 else Disagreement.WRONG_SIDE
    return write_report(
        case.nodules,
        case.diagnosis,
        rng,
        emphysema=case.other.emphysema,
        effusion_side=case.other.effusion_side,
        disagreement=disagree,
    )


def _make_one(args: tuple[int, str, str, Path, dict[str, Any]]) -> tuple[CaseRecord, list[list[Any]]]:
    seed, case_id, split, out, opts = args
    case = generate_case(
        seed,
        case_id=case_id,
        matrix=opts["matrix"],
        rates=opts["rates"],
        slice_thickness_mm=opts["slice_thickness_mm"],
        juxtavascular_rate=opts.get("juxtavascular_rate", 0.0),
        subsolid_size_mm=opts.get("subsolid_size_mm", SUBSOLID_SIZE_MM),
    )
    report = case_report(case, seed, opts["disagree_rate"])
    disagree = report.disagreement
    folder, uid = write_case(case, report, out / split, transfer_syntax=opts["transfer_syntax"])
    rows = [[uid, *(round(c, 4) for c in n.center_lps_mm), round(n.diameter_mm, 3)] for n in case.nodules]
    record = CaseRecord(
        case_id,
        split,
        seed,
        uid,
        case.pattern.value,
        case.diagnosis,
        len(case.nodules),
        disagree != Disagreement.NONE,
        str(folder.relative_to(out)),
    )
    return record, rows


def generate_dataset(
    out_dir: str | os.PathLike[str],
    *,
    n_cases: int,
    seed: int,
    matrix: int = 256,
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    rates: dict[Pattern, float] | None = None,
    disagree_rate: float = 0.15,
    transfer_syntax: str = ExplicitVRLittleEndian,
    slice_thickness_mm: float | None = None,
    juxtavascular_rate: float = 0.0,
    subsolid_size_mm: tuple[float, float] = SUBSOLID_SIZE_MM,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[CaseRecord]:
    """Write ``n_cases`` cases into ``out/train``, ``out/val`` and ``out/test``.

    Args:
        out_dir: Output root (created).
        n_cases: Number of cases.
        seed: Data-set seed.
        matrix: Image matrix of every case.
        split_fractions: Train/validation/test fractions (case order is split in blocks).
        rates: Pattern probabilities.
        disagree_rate: Fraction of reports (of cases with nodules) that contradict the image.
        transfer_syntax: DICOM transfer syntax.
        slice_thickness_mm: Fix the slice thickness (default: drawn per case, 0.625-3 mm).
        juxtavascular_rate: Share of open-parenchyma nodules moved against a vessel
            (:func:`~medmm.synth.cases.generate_case`).
        subsolid_size_mm: Diameter range of the subsolid pattern's nodule
            (:func:`~medmm.synth.cases.generate_case`).
        workers: Processes.
        progress: Called as ``progress(done, total)``.

    Returns:
        One record per case; also written to ``manifest.json``.

    Raises:
        InputError: A bad ``subsolid_size_mm`` (before anything is written).
    """
    subsolid = check_subsolid_size(subsolid_size_mm)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bounds = np.cumsum(np.asarray(split_fractions) / sum(split_fractions)) * n_cases
    opts = {
        "matrix": matrix,
        "rates": rates or DEFAULT_PATTERN_RATES,
        "disagree_rate": disagree_rate,
        "transfer_syntax": str(transfer_syntax),
        "slice_thickness_mm": slice_thickness_mm,
        "juxtavascular_rate": juxtavascular_rate,
        "subsolid_size_mm": subsolid,
    }
    jobs = []
    for i in range(n_cases):
        split = SPLITS[int(np.searchsorted(bounds, i, side="right"))]
        jobs.append((case_seed(seed, i), f"case{i:04d}", split, out, opts))
    results = process_map(_make_one, jobs, workers=workers, progress=progress)
    for split in SPLITS:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"])
        for record, rows in results:
            if record.split == split:
                writer.writerows(rows)
        if any(r.split == split for r, _ in results):
            _write_text(out / split / "annotations.csv", buf.getvalue())
    records = [r for r, _ in results]
    manifest = {
        "seed": seed,
        "n_cases": n_cases,
        "matrix": matrix,
        "slice_thickness_mm": slice_thickness_mm,
        "juxtavascular_rate": juxtavascular_rate,
        "subsolid_size_mm": list(subsolid),
        "pattern_rates": {p.value: r for p, r in rates.items()} if rates else "default",
        "split_fractions": list(split_fractions),
        "cases": [asdict(r) for r in records],
    }
    _write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    logger.info("wrote %d synthetic cases to %s", n_cases, out)
    return records
