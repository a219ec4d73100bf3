"""What an evaluation reads: a system's predictions, the reference, the list of scans.

Predictions are candidate marks (CAD marks): a series, a centre in LPS mm and a score.
Today they come from a CSV in the LUNA16 submission layout
``seriesuid,coordX,coordY,coordZ,probability`` (Setio et al., Med. Image Anal. 42:1,
2017; LUNA16 world coordinates are DICOM LPS millimetres, medmm's frame). medmm has no
result-folder format yet, because the analysis pipeline that would write one does not
exist; :func:`read_predictions` is the single entry point and refuses a folder with a
clear message, so that a result-folder reader can be added there later without changing
callers. Every reader returns the same :class:`PredictionSet`.

References are a :class:`ReferenceSet`: the nodules that count for sensitivity
("included"), the findings on which marks are ignored ("excluded", LUNA16's irrelevant
findings), and the scans the reference covers. Three sources:

* LUNA16 ``annotations.csv`` (+ ``annotations_excluded.csv``): :func:`read_luna16_reference`.
* medmm synthetic ground truth (``ground_truth.json`` per case folder written by
  ``medmm synth``): :func:`read_synthetic_reference`, with nodule texture.
* LIDC-IDRI DICOM + XML folders with a reader-consensus level:
  :func:`read_lidc_reference`, built the way LUNA16 built its reference.

Example:
    >>> preds = read_predictions("submission.csv")                         # doctest: +SKIP
    >>> ref = read_luna16_reference("annotations.csv", "annotations_excluded.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from medmm.errors import AnnotationError, InputError
from medmm.types import ReferenceNodule

__all__ = [
    "PREDICTION_COLUMNS",
    "DuplicatePolicy",
    "PredictionSet",
    "ReferenceSet",
    "read_lidc_reference",
    "read_luna16_reference",
    "read_prediction_csv",
    "read_predictions",
    "read_series_list",
    "read_synthetic_reference",
]

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ", "probability")

# LIDC texture rating 1-5 (Armato et al., Med. Phys. 38:915, 2011: 1 = non-solid/ground
# glass, 3 = part solid/mixed, 5 = solid) mapped onto medmm's texture names.
_LIDC_TEXTURE = {1: "ground_glass", 2: "ground_glass", 3: "part_solid", 4: "solid", 5: "solid"}


class DuplicatePolicy(StrEnum):
    """What to do with prediction rows that repeat another row exactly.

    ``keep`` scores every row, as the LUNA16 evaluation script does (a repeated false
    positive counts twice); ``drop`` keeps the first of each group; ``error`` refuses the
    file. ``keep`` and ``drop`` both log a warning and record it.
    """

    KEEP = "keep"
    DROP = "drop"
    ERROR = "error"


@dataclass(frozen=True, eq=False)
class PredictionSet:
    """Candidate marks of a detection system, one per row.

    Attributes:
        series_uids: SeriesInstanceUID of each mark.
        centers_lps_mm: Mark centres in LPS mm.
        scores: Suspicion score of each mark (any finite number; only the order matters
            for FROC and ROC, the value for thresholds).
        source: Where the marks came from (a path), for messages.
        line_numbers: Line of each mark in its file (0 when not read from a file).
        warnings: Problems found while reading that did not stop it.

    Shapes:
        - series_uids: ``(N,)`` object array of str
        - centers_lps_mm: ``(N, 3)`` float64
        - scores, line_numbers: ``(N,)``
    """

    series_uids: np.ndarray
    centers_lps_mm: np.ndarray
    scores: np.ndarray
    source: str = ""
    line_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        uids = np.asarray(self.series_uids, dtype=object).reshape(-1)
        centers = np.asarray(self.centers_lps_mm, dtype=np.float64).reshape(-1, 3)
        scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        lines = np.asarray(self.line_numbers, dtype=np.int64).reshape(-1)
        if lines.size == 0:
            lines = np.zeros(len(uids), np.int64)
        if not len(uids) == len(centers) == len(scores) == len(lines):
            raise ValueError(
                f"prediction arrays differ in length: {len(uids)} series, {len(centers)} centres, "
                f"{len(scores)} scores, {len(lines)} line numbers"
            )
        bad = ~(np.isfinite(centers).all(axis=1) & np.isfinite(scores))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{int(bad.sum())} prediction(s) with a NaN or infinite coordinate or score, first: "
                f"{uids[i]} at {centers[i].tolist()} score {scores[i]}",
                path=self.source or None,
                hint="Every prediction needs finite coordinates (LPS mm) and a finite probability.",
            )
        for arr in (uids, centers, scores, lines):
            arr.setflags(write=False)
        object.__setattr__(self, "series_uids", uids)
        object.__setattr__(self, "centers_lps_mm", centers)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "line_numbers", lines)

    @classmethod
    def from_records(
        cls,
        records: Iterable[tuple[str, float, float, float, float]],
        source: str = "",
    ) -> PredictionSet:
        """Build from ``(series_uid, x_mm, y_mm, z_mm, score)`` tuples (LPS mm)."""
        rows = list(records)
        if not rows:
            return cls.empty(source)
        uids = np.array([r[0] for r in rows], dtype=object)
        values = np.array([r[1:] for r in rows], dtype=np.float64)
        return cls(uids, values[:, :3], values[:, 3], source)

    @classmethod
    def empty(cls, source: str = "") -> PredictionSet:
        """A set without marks."""
        return cls(np.zeros(0, object), np.zeros((0, 3)), np.zeros(0), source)

    def __len__(self) -> int:
        return len(self.scores)

    def __repr__(self) -> str:
        n_series = len(set(self.series_uids.tolist()))
        return f"PredictionSet({len(self)} marks on {n_series} series, source={self.source!r})"


@dataclass(frozen=True)
class ReferenceSet:
    """The reference standard of an evaluation.

    Attributes:
        nodules: Findings that count: a mark within one is a true positive, and each is
            a nodule to find (LUNA16 ``annotations.csv``).
        excluded: Irrelevant findings: a mark within one (and within no included nodule)
            is ignored, neither true nor false positive (``annotations_excluded.csv``).
        series_uids: Scans the reference covers, in order.
        complete: True when ``series_uids`` lists every scan of the data set, scans
            without nodules included (synthetic and LIDC references); False when scans
            without findings are absent (a LUNA16 annotation file).
        textures: Texture of each included nodule (``solid``, ``part_solid``,
            ``ground_glass``) or None; empty when the source has no textures.
        source: Description of the source, for reports.
        warnings: Problems found while reading that did not stop it.
    """

    nodules: tuple[ReferenceNodule, ...]
    excluded: tuple[ReferenceNodule, ...] = ()
    series_uids: tuple[str, ...] = ()
    complete: bool = False
    textures: tuple[str | None, ...] = ()
    source: str = ""
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.textures and len(self.textures) != len(self.nodules):
            raise ValueError(f"{len(self.textures)} textures for {len(self.nodules)} nodules")
        if not self.series_uids:
            seen = dict.fromkeys(n.series_uid for n in (*self.nodules, *self.excluded))
            object.__setattr__(self, "series_uids", tuple(seen))

    def texture(self, index: int) -> str | None:
        """Texture of included nodule ``index``, or None when unknown."""
        return self.textures[index] if self.textures else None


def _warn(warnings: list[str], message: str) -> None:
    logger.warning(message)
    warnings.append(message)


def read_predictions(
    path: str | os.PathLike[str],
    *,
    duplicates: DuplicatePolicy | str = DuplicatePolicy.KEEP,
) -> PredictionSet:
    """Read a system's predictions: a LUNA16 submission CSV, or a ``medmm analyze`` output folder.

    A folder is read through the ``candidates.csv`` the batch writes in it (every detection
    above the submission floor, LUNA16 format; :func:`read_prediction_csv`).

    Raises:
        InputError: The path is missing, a folder without ``candidates.csv``, or not a
            valid prediction CSV.
    """
    p = Path(path)
    if p.is_dir():
        if not (p / "candidates.csv").is_file():
            raise InputError(
                "this folder holds no candidates.csv (not a `medmm analyze` output, or detection was off)",
                path=p,
                hint="Give the CSV itself (seriesuid,coordX,coordY,coordZ,probability) or an analyze output folder.",
            )
        p = p / "candidates.csv"
    return read_prediction_csv(p, duplicates=duplicates)


def read_prediction_csv(
    path: str | os.PathLike[str],
    *,
    duplicates: DuplicatePolicy | str = DuplicatePolicy.KEEP,
) -> PredictionSet:
    """Read a LUNA16 submission CSV: ``seriesuid,coordX,coordY,coordZ,probability``.

    Extra columns are allowed and ignored; column order is free. Coordinates are LPS mm.

    Args:
        path: The CSV file.
        duplicates: Policy for rows repeating another row exactly (see :class:`DuplicatePolicy`).

    Returns:
        The marks in file order. A file with a header but no rows gives an empty set
        and a warning (it scores zero sensitivity; the evaluation says so again).

    Raises:
        InputError: Unreadable or empty file, missing columns, an empty series UID, a
            value that is not a number, a NaN or infinite value, or duplicates under
            ``duplicates="error"``.
    """
    p = Path(path)
    policy = DuplicatePolicy(duplicates)
    warnings: list[str] = []
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise InputError(
                    "the prediction file is empty (no header)",
                    path=p,
                    hint=f"Expected the header {','.join(PREDICTION_COLUMNS)}.",
                )
            names = [h.strip() for h in header]
            missing = [c for c in PREDICTION_COLUMNS if c not in names]
            if missing:
                raise InputError(
                    f"not a LUNA16 prediction file: missing column(s) {missing} (found {names})",
                    path=p,
                    hint=f"Expected the header {','.join(PREDICTION_COLUMNS)}.",
                )
            cols = [names.index(c) for c in PREDICTION_COLUMNS]
            uids: list[str] = []
            values: list[tuple[float, ...]] = []
            lines: list[int] = []
            for line_no, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) < len(names):
                    raise InputError(f"line {line_no}: {len(row)} fields, header has {len(names)}", path=p)
                uid = row[cols[0]].strip()
                if not uid:
                    raise InputError(f"line {line_no}: empty seriesuid", path=p)
                try:
                    vals = tuple(float(row[c]) for c in cols[1:])
                except ValueError as exc:
                    raise InputError(f"line {line_no}: not a number ({exc})", path=p) from exc
                if not all(math.isfinite(v) for v in vals):
                    what = "coordinate" if not all(math.isfinite(v) for v in vals[:3]) else "probability"
                    raise InputError(
                        f"line {line_no}: NaN or infinite {what} for series {uid}",
                        path=p,
                        hint="Remove the row or give finite coordinates (LPS mm) and a finite probability.",
                    )
                uids.append(uid)
                values.append(vals)
                lines.append(line_no)
    except OSError as exc:
        raise InputError(f"cannot read prediction file: {exc.strerror or exc}", path=p) from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            f"not a readable CSV ({exc})", path=p, hint="Give a UTF-8 text file in the LUNA16 submission format."
        ) from exc
    if not values:
        _warn(warnings, f"prediction file {p} holds a header but no predictions")
        return PredictionSet(np.zeros(0, object), np.zeros((0, 3)), np.zeros(0), str(p), warnings=tuple(warnings))
    arr = np.asarray(values, dtype=np.float64)
    uid_arr = np.asarray(uids, dtype=object)
    line_arr = np.asarray(lines, dtype=np.int64)
    keep = _first_of_duplicates(uid_arr, arr)
    n_dup = int((~keep).sum())
    if n_dup:
        first = line_arr[np.flatnonzero(~keep)[:5]].tolist()
        msg = f"{n_dup} prediction row(s) repeat an earlier row exactly (lines {first}{'...' if n_dup > 5 else ''})"
        if policy is DuplicatePolicy.ERROR:
            raise InputError(msg, path=p, hint="Remove the repeated rows, or choose the keep or drop policy.")
        if policy is DuplicatePolicy.DROP:
            _warn(warnings, f"{p}: {msg}; dropped (duplicates=drop)")
            uid_arr, arr, line_arr = uid_arr[keep], arr[keep], line_arr[keep]
        else:
            _warn(warnings, f"{p}: {msg}; each is scored, as the LUNA16 script does (duplicates=keep)")
    return PredictionSet(uid_arr, arr[:, :3], arr[:, 3], str(p), line_arr, tuple(warnings))


def _first_of_duplicates(uids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mask keeping the first row of every group of identical (uid, x, y, z, score) rows."""
    seen: set[tuple[Any, ...]] = set()
    keep = np.ones(len(uids), dtype=bool)
    for i, (uid, row) in enumerate(zip(uids.tolist(), values.tolist(), strict=True)):
        key = (uid, *row)
        if key in seen:
            keep[i] = False
        else:
            seen.add(key)
    return keep


def read_series_list(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Read the scans to evaluate: one SeriesInstanceUID per line (first CSV field).

    Accepts LUNA16's ``seriesuids.csv`` (no header) and files with a ``seriesuid``
    header. Blank lines are skipped; a repeated UID is kept once, with a warning.

    Raises:
        InputError: Unreadable file or no UID in it.
    """
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            fields = [row[0].strip() for row in csv.reader(fh) if row and row[0].strip()]
    except OSError as exc:
        raise InputError(f"cannot read series list: {exc.strerror or exc}", path=p) from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            f"not a readable CSV ({exc})", path=p, hint="Write one SeriesInstanceUID per line (UTF-8)."
        ) from exc
    if fields and fields[0].lower() == "seriesuid":
        fields = fields[1:]
    if not fields:
        raise InputError("the series list holds no series UID", path=p, hint="Write one SeriesInstanceUID per line.")
    unique = tuple(dict.fromkeys(fields))
    if len(unique) < len(fields):
        logger.warning("series list %s repeats %d UID(s); each scan is counted once", p, len(fields) - len(unique))
    return unique


def read_luna16_reference(
    annotations: str | os.PathLike[str],
    excluded: str | os.PathLike[str] | None = None,
) -> ReferenceSet:
    """Read LUNA16 ``annotations.csv`` and, optionally, ``annotations_excluded.csv``.

    ``annotations.csv`` lists only scans with a nodule, so the result is not
    ``complete``: pass the list of evaluated scans (LUNA16's ``seriesuids.csv``) to the
    evaluation, or scans without findings and without marks go uncounted.

    Raises:
        AnnotationError: A file is malformed (see :func:`medmm.io.read_luna16_csv`).
    """
    from medmm.io.luna16 import read_luna16_csv

    warnings: list[str] = []
    nodules = tuple(read_luna16_csv(annotations))
    unknown = sum(1 for n in nodules if n.diameter_mm is None)
    if unknown:
        _warn(warnings, f"{annotations}: {unknown} included nodule(s) without a diameter; hit radius 5 mm")
    excl = tuple(read_luna16_csv(excluded)) if excluded is not None else ()
    src = f"LUNA16 {annotations}" + (f" + {excluded}" if excluded is not None else "")
    return ReferenceSet(nodules, excl, complete=False, source=src, warnings=tuple(warnings))


def read_synthetic_reference(root: str | os.PathLike[str]) -> ReferenceSet:
    """Read the ground truth of a ``medmm synth`` data set (one split, or all of it).

    Every ``ground_truth.json`` under ``root`` is one scan; all its nodules are included
    (the phantom knows them all, so nothing is excluded), with their texture. Scans
    without nodules are part of the reference, so it is ``complete``. Point ``root`` at
    a split (``out/test``) to evaluate that split alone.

    Raises:
        InputError: No ``ground_truth.json`` under ``root``.
        AnnotationError: A ground-truth file is malformed, or two cases share a series.
    """
    base = Path(root)
    if not base.exists():
        raise InputError("synthetic data folder does not exist", path=base, hint="Check the path.")
    files = sorted(base.rglob("ground_truth.json"))
    if not files:
        raise InputError(
            "no ground_truth.json under this folder",
            path=base,
            hint="Point at a folder written by `medmm synth` (a split such as out/test, or the whole set).",
        )
    nodules: list[ReferenceNodule] = []
    textures: list[str | None] = []
    uids: dict[str, Path] = {}
    for f in files:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
            uid = str(doc["series_uid"])
            entries = doc["nodules"]
            parsed = [
                (tuple(float(c) for c in n["center_lps_mm"]), float(n["diameter_mm"]), n.get("texture"))
                for n in entries
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AnnotationError(f"malformed synthetic ground truth ({type(exc).__name__}: {exc})", path=f) from exc
        if uid in uids:
            raise AnnotationError(
                f"series {uid} also belongs to {uids[uid]}",
                path=f,
                hint="Evaluate one data set at a time; each case must have its own series.",
            )
        uids[uid] = f
        for center, diameter, texture in parsed:
            if len(center) != 3:
                raise AnnotationError(f"nodule centre has {len(center)} coordinates", path=f)
            nodules.append(ReferenceNodule(uid, center, diameter, source="synthetic"))  # type: ignore[arg-type]
            textures.append(str(texture) if texture is not None else None)
    logger.info("synthetic reference: %d scans, %d nodules from %s", len(uids), len(nodules), base)
    return ReferenceSet(
        tuple(nodules), (), tuple(uids), complete=True, textures=tuple(textures), source=f"medmm synthetic {base}"
    )


def _lidc_xml_series_uid(path: Path) -> str | None:
    """The SeriesInstanceUid in an LIDC XML response header (None when absent)."""
    try:
        for _, el in ET.iterparse(path, events=("end",)):
            if el.tag.rsplit("}", 1)[-1] == "SeriesInstanceUid":
                return (el.text or "").strip() or None
            if el.tag.rsplit("}", 1)[-1] == "ResponseHeader":
                return None
    except (ET.ParseError, OSError):
        return None
    return None


def read_lidc_reference(
    root: str | os.PathLike[str],
    *,
    min_readers: int = 3,
    min_diameter_mm: float = 3.0,
) -> ReferenceSet:
    """Build a LUNA16-style reference from LIDC-IDRI DICOM series and their XML reads.

    Each XML file under ``root`` is matched to the DICOM series under ``root`` named by
    its ``SeriesInstanceUid``; the series is loaded and the readers' marks merged with
    :func:`medmm.io.lidc_consensus`. As LUNA16 did (Setio et al., 2017, section 2.1):

    * included: nodules >= ``min_diameter_mm`` outlined by at least ``min_readers`` of
      the four readers (LUNA16: 3), at the mean of the readers' centres and diameters;
    * excluded (irrelevant): every other merged nodule, every non-nodule mark, and each
      reader's individual mark (LUNA16's ``annotations_excluded.csv`` lists those too),
      point marks with an unknown diameter.

    Texture is the LIDC rating (median over the outlining readers) mapped 1-2 ground
    glass, 3 part solid, 4-5 solid. Every matched series is a scan of the reference,
    with or without nodules, so the result is ``complete``.

    Raises:
        InputError: No LIDC XML, or no XML matching a series under ``root``.
        AnnotationError: A matched XML file is malformed or does not fit its series.
    """
    from medmm.io import lidc_consensus, load_series, read_lidc_xml, scan
    from medmm.io.lidc import measure_mark

    base = Path(root)
    xmls = sorted(p for p in base.rglob("*") if p.suffix.lower() == ".xml" and p.is_file())
    if not xmls:
        raise InputError("no LIDC XML file under this folder", path=base, hint="Point at LIDC-IDRI case folder(s).")
    found = {s.series_uid: s for s in scan(base).series}
    warnings: list[str] = []
    included: list[ReferenceNodule] = []
    textures: list[str | None] = []
    excluded: list[ReferenceNodule] = []
    series: list[str] = []
    for xml in xmls:
        uid = _lidc_xml_series_uid(xml)
        if uid is None or uid not in found:
            _warn(warnings, f"{xml}: no DICOM series {uid or '(no SeriesInstanceUid)'} under {base}; file skipped")
            continue
        if uid in series:
            _warn(warnings, f"{xml}: a second XML for series {uid}; skipped")
            continue
        marks = read_lidc_xml(xml)
        volume = load_series(found[uid])
        for nod in lidc_consensus(marks, volume, min_readers=0):
            ok = nod.diameter_mm is not None and nod.diameter_mm >= min_diameter_mm
            if ok and nod.outlined_by >= min_readers:
                included.append(nod.to_reference(uid))
                ratings = [m.characteristics["texture"] for m in nod.marks if "texture" in m.characteristics]
                textures.append(_LIDC_TEXTURE.get(int(np.median(ratings) + 0.5)) if ratings else None)
            else:
                excluded.append(nod.to_reference(uid))
            for geom in nod.geometries:
                excluded.append(ReferenceNodule(uid, geom.center_lps_mm, geom.diameter_mm, 1, "lidc-xml-mark"))
        for mark in marks:
            if mark.kind == "non_nodule":
                geom = measure_mark(mark, volume)
                excluded.append(ReferenceNodule(uid, geom.center_lps_mm, None, 1, "lidc-xml-non-nodule"))
        series.append(uid)
    if not series:
        raise InputError(
            "no LIDC XML file matches a DICOM series under this folder",
            path=base,
            hint="Keep each case's XML beside (or below) its DICOM series.",
        )
    return ReferenceSet(
        tuple(included),
        tuple(excluded),
        tuple(series),
        complete=True,
        textures=tuple(textures),
        source=f"LIDC XML {base} (>= {min_readers} readers, >= {min_diameter_mm:g} mm)",
        warnings=tuple(warnings),
    )
