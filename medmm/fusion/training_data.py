"""Alignment training cases: a ``medmm synth`` folder -> cached encoder grids + phrases.

Each case becomes one ``.npz`` in a cache folder: the lungs' box on the 2 mm encoder
grid (CT, lobe labels, nodule labels) and a JSON sidecar with the report, its nodules and
the phrases (sentences) that describe them, taken from the ground-truth mentions.

Each case also keeps the shipped detector's reported nodules (the tokens' detector
channels), found with medmm's own lung mask exactly as ``medmm analyze`` finds them.

Lobes come from the phantom's truth (``anatomy="truth"``, training) or from medmm's
anatomy stage (``anatomy="predicted"``, for held-out evaluation, so the test sees what
``medmm analyze`` sees).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medmm.errors import InputError
from medmm.fusion.grid import LungGrid, lung_grid
from medmm.io.atomic import atomic_path

__all__ = ["AlignmentCase", "Phrase", "load_case", "prepare_cases"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phrase:
    """A report sentence that describes one nodule.

    Attributes:
        start, end: Character span of the sentence in the report.
        nodule_label: Label of the nodule it describes (in ``AlignmentCase.nodules``).
    """

    start: int
    end: int
    nodule_label: int


@dataclass(frozen=True, eq=False)
class AlignmentCase:
    """One training or test case.

    Attributes:
        case_id: Case folder name (with split prefix, e.g. ``train/case0003``).
        grid: Encoder grid with nodule labels.
        report: Report text.
        nodules: Ground-truth nodules (``label``, ``center_lps_mm``, ``diameter_mm``, ``lobe``).
        phrases: Sentences naming a nodule that the report describes correctly.
        disagreement: The report's deliberate disagreement kind (``"none"`` for most).
        detections: The detector's reported nodules (``center_lps_mm``, ``diameter_mm``,
            ``probability``).
        faint: Its detections below the reporting threshold down to
            :data:`medmm.fusion.size.FAINT_MIN_PROBABILITY` (same keys; empty in a cache
            written before they were kept).
    """

    case_id: str
    grid: LungGrid
    report: str
    nodules: list[dict[str, Any]]
    phrases: list[Phrase]
    disagreement: str
    detections: list[dict[str, Any]]
    faint: list[dict[str, Any]] = field(default_factory=list)


def _phrases(text: str, gt: dict[str, Any]) -> list[Phrase]:
    from medmm.text.mentions import split_sentences

    sentences = split_sentences(text)
    out: list[Phrase] = []
    seen: set[tuple[int, int]] = set()
    for m in gt.get("report", {}).get("mentions", []):
        label = m.get("nodule_label")
        if label is None or m.get("negated"):
            continue
        for a, b, _ in sentences:
            if a <= m["start"] < b and (a, b) not in seen:
                seen.add((a, b))
                out.append(Phrase(a, b, int(label)))
    return out


def _prepare_one(args: tuple[Path, Path, str, tuple[str, ...] | None]) -> str:
    folder, out, anatomy, detector_weights = args
    from medmm.anatomy.regions import segment_anatomy
    from medmm.detect.detector import detector_for
    from medmm.fusion.align import detection_rows
    from medmm.io.nifti import read_nifti
    from medmm.io.series_loader import load_series

    volume = load_series(folder / "dicom")
    nodules = read_nifti(folder / "nodules.nii.gz", dtype=np.uint8).array
    predicted = segment_anatomy(volume)
    truth = anatomy == "truth"
    lobes = read_nifti(folder / "lobes.nii.gz", dtype=np.uint8).array if truth else predicted.lobes.labels
    detector = detector_for(detector_weights) if detector_weights else None
    detections, faint = detection_rows(volume, predicted.lungs.lung_mask, detector)
    grid = lung_grid(volume, lobes, nodules=nodules)
    gt = json.loads((folder / "ground_truth.json").read_text())
    text = (folder / "report.txt").read_text()
    meta = {
        "case_id": f"{folder.parent.name}/{folder.name}",
        "report": text,
        "nodules": [
            {k: n[k] for k in ("label", "center_lps_mm", "diameter_mm", "lobe", "texture")} for n in gt["nodules"]
        ],
        "phrases": [[p.start, p.end, p.nodule_label] for p in _phrases(text, gt)],
        "disagreement": gt.get("report", {}).get("disagreement", "none"),
        "detections": list(detections),
        "faint_detections": list(faint),
    }
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            hu=np.clip(np.round(grid.hu), -1024, 3071).astype(np.int16),
            lobes=grid.lobes,
            nodules=grid.nodules,
            affine=grid.affine,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        )
    return meta["case_id"]


def prepare_cases(
    root: str | Path,
    cache: str | Path,
    *,
    anatomy: Literal["truth", "predicted"] = "truth",
    splits: tuple[str, ...] = ("train", "val", "test"),
    workers: int = 1,
    detector_weights: tuple[str, ...] | None = None,
) -> list[Path]:
    """Cache every case of a ``medmm synth`` folder for alignment training.

    Args:
        root: Dataset folder (``<split>/<case>/ground_truth.json``).
        cache: Output folder; existing cache files are reused.
        anatomy: Lobes from the phantom truth or from medmm's anatomy stage.
        splits: Split folders to include.
        workers: Processes.
        detector_weights: Detector ``.safetensors`` whose detections the cases hold
            (default: the shipped detector); several: an ensemble. A cache keeps the
            detections it was written with, so give each detector its own ``cache``.

    Returns:
        The cache files, sorted.

    Raises:
        InputError: No cases under ``root``.
    """
    from medmm.parallel import process_map

    base, cache = Path(root), Path(cache)
    folders = sorted(p.parent for s in splits for p in (base / s).glob("*/ground_truth.json"))
    if not folders:
        raise InputError("no synthetic cases (<split>/<case>/ground_truth.json) here", path=base)
    cache.mkdir(parents=True, exist_ok=True)
    todo, files = [], []
    for f in folders:
        out = cache / f"{f.parent.name}__{f.name}.npz"
        files.append(out)
        if not out.exists():
            todo.append((f, out, anatomy, detector_weights))
    if todo:
        log.info("preparing %d alignment cases (%d cached)", len(todo), len(files) - len(todo))
        process_map(_prepare_one, todo, workers=workers)
    return sorted(files)


def load_case(path: str | Path) -> AlignmentCase:
    """Read one cached case.

    Raises:
        InputError: A cache written before the detector channels existed.
    """
    with np.load(path) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        if "detections" not in meta:
            raise InputError("alignment cache has no detections (older medmm); delete it and prepare again", path=path)
        grid = LungGrid(hu=z["hu"].astype(np.float32), lobes=z["lobes"], affine=z["affine"], nodules=z["nodules"])
    return AlignmentCase(
        case_id=meta["case_id"],
        grid=grid,
        report=meta["report"],
        nodules=meta["nodules"],
        phrases=[Phrase(*p) for p in meta["phrases"]],
        disagreement=meta["disagreement"],
        detections=meta["detections"],
        faint=meta.get("faint_detections", []),
    )
