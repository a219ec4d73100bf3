"""Reasoning cases: synthetic studies run through the pipeline, stored as JSON lines.

Each line holds a case's truth (pattern, diagnosis, nodules; :func:`medmm.synth.dataset.
ground_truth_record`) and the :class:`~medmm.reason.inputs.ReasoningInputs` the pipeline
produced for it (detections, the report's findings, region features). The reasoning test
set is built this way, so that the differential is measured on what ``medmm analyze``
really sees, detector misses and false positives included.

Example:
    >>> collect_cases("heldout.jsonl", dataset_seed=2026, n_cases=120, workers=2)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medmm.anatomy.regions import LOBE_LABELS
from medmm.io.atomic import atomic_path
from medmm.parallel import ProgressCallback, process_map

if TYPE_CHECKING:
    from medmm.types import AnalysisResult, Volume

__all__ = ["ReasoningCase", "collect_case", "collect_cases", "read_cases"]

logger = logging.getLogger(__name__)

ReasoningCase = dict[str, Any]


def collect_case(args: tuple[int, int, int, float]) -> ReasoningCase:
    """Generate one case, analyze it like ``medmm analyze`` (with its report), keep the inputs.

    Args:
        args: ``(dataset_seed, index, matrix, disagree_rate)``.

    Returns:
        ``{"case_id", "truth", "report", "inputs", "candidates", "detector"}`` (JSON-ready);
        ``candidates`` holds every scored detection (probability, CNN diameter, lobe) so that
        features of the sub-threshold ones can be tried without analyzing the cases again;
        ``detector`` names the detector weights that made them.
    """
    import torch

    from medmm.pipeline import analyze
    from medmm.synth.cases import generate_case
    from medmm.synth.dataset import case_report, case_seed, ground_truth_record

    torch.set_num_threads(1)
    dataset_seed, index, matrix, disagree_rate = args
    seed = case_seed(dataset_seed, index)
    case = generate_case(seed, case_id=f"case{index:04d}", matrix=matrix)
    report = case_report(case, seed, disagree_rate)
    result = analyze(case.volume, report.text, rank=False)
    return {
        "case_id": case.case_id,
        "truth": ground_truth_record(case, report, ""),
        "report": report.text,
        "inputs": result.reasoning_inputs.to_dict(),
        "candidates": _candidate_rows(case.volume, result),
        "detector": (result.detector or {}).get("name", ""),
    }


def _candidate_rows(volume: Volume, result: AnalysisResult) -> list[dict[str, Any]]:
    """Every scored detection with the lobe at its centre (``""`` outside the lobes)."""
    lobes = result.maps.lobes
    rows = []
    for c in result.candidates or ():
        k, j, i = np.rint(volume.geometry.world_to_index(c.center_lps_mm)).astype(int)
        inside = 0 <= k < lobes.shape[0] and 0 <= j < lobes.shape[1] and 0 <= i < lobes.shape[2]
        code = int(lobes[k, j, i]) if inside else 0
        rows.append(
            {
                "probability": round(float(c.probability), 5),
                "diameter_mm": None if c.diameter_mm is None else round(float(c.diameter_mm), 2),
                "lobe": LOBE_LABELS[code].value if code in LOBE_LABELS else "",
            }
        )
    return rows


def collect_cases(
    path: str | Path,
    *,
    dataset_seed: int,
    n_cases: int,
    matrix: int = 256,
    disagree_rate: float = 0.0,
    workers: int = 1,
    progress: ProgressCallback | None = None,
) -> Path:
    """Build a reasoning case file (JSON lines, written atomically at the end).

    Resumable: each finished case is appended to ``PATH.partial`` (after a first line
    recording the settings); a later call with the same settings keeps those cases and
    analyzes only the rest, so an interrupted build (about 20-30 s per case and core) loses
    at most the cases in flight. The partial file is removed once ``path`` is written.

    Args:
        path: Output ``.jsonl``.
        dataset_seed: Seed of the set (case seeds derive from it as in ``medmm synth``).
        n_cases: Number of cases.
        matrix: Image matrix of the generated CTs.
        disagree_rate: Chance that a report contradicts its image.
        workers: Processes (each analyzes with one thread).
        progress: ``progress(done, total)``, counting the cases resumed.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    settings = {"dataset_seed": dataset_seed, "matrix": matrix, "disagree_rate": disagree_rate}
    cases = _resumable(partial, settings, n_cases)
    if cases:
        logger.info("resuming %s: %d of %d cases already analyzed", path, len(cases), n_cases)
    else:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps({"settings": settings}) + "\n", encoding="utf-8")
    resumed = len(cases)
    items = [(dataset_seed, i, matrix, disagree_rate) for i in range(resumed, n_cases)]
    with partial.open("a", encoding="utf-8") as fh:

        def save(case: ReasoningCase) -> None:
            fh.write(json.dumps(case) + "\n")
            fh.flush()

        def step(done: int, total: int) -> None:
            if progress:
                progress(resumed + done, n_cases)

        cases += process_map(collect_case, items, workers=workers, progress=step, on_result=save)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    partial.unlink()
    logger.info("wrote %d reasoning cases to %s", len(cases), path)
    return path


def _resumable(partial: Path, settings: dict[str, Any], n_cases: int) -> list[ReasoningCase]:
    """Cases of an earlier, interrupted build with the same settings (case0000, case0001, ...)."""
    if not partial.is_file():
        return []
    lines = partial.read_text(encoding="utf-8").splitlines()
    try:
        if not lines or json.loads(lines[0]).get("settings") != settings:
            logger.warning("%s was built with other settings; starting over", partial)
            return []
    except json.JSONDecodeError:
        return []
    cases: list[ReasoningCase] = []
    for line in lines[1 : n_cases + 1]:
        try:
            case = json.loads(line)
        except json.JSONDecodeError:  # the line being written when the run stopped
            break
        if case.get("case_id") != f"case{len(cases):04d}":
            break
        cases.append(case)
    # Rewrite without whatever followed the last good case, so appends stay aligned.
    partial.write_text("".join(json.dumps(c) + "\n" for c in [{"settings": settings}, *cases]), encoding="utf-8")
    return cases


def read_cases(path: str | Path) -> Iterator[ReasoningCase]:
    """The cases of a file written by :func:`collect_cases`."""
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
