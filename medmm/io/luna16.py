"""Read LUNA16 ``annotations.csv`` and ``annotations_excluded.csv``.

LUNA16 (Setio et al., Medical Image Analysis 42, 2017) gives one row per nodule:
``seriesuid,coordX,coordY,coordZ,diameter_mm``. The coordinates are world millimetres in
the frame of the scan's ImagePositionPatient, i.e. DICOM LPS, the frame medmm uses, so
they are taken over unchanged. In the "excluded" file a diameter of -1 means unknown.

Example:
    >>> from medmm.io.luna16 import read_luna16_csv
    >>> refs = read_luna16_csv("annotations.csv", series_uid="1.3.6...")   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from medmm.errors import AnnotationError
from medmm.types import ReferenceNodule

__all__ = ["read_luna16_csv"]

_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ", "diameter_mm")


def read_luna16_csv(path: str | os.PathLike[str], series_uid: str | None = None) -> list[ReferenceNodule]:
    """Read LUNA16 reference rows as :class:`~medmm.types.ReferenceNodule` objects.

    Args:
        path: ``annotations.csv`` or ``annotations_excluded.csv``.
        series_uid: Keep only rows of this series (default: all rows).

    Returns:
        One reference nodule per row, in file order; ``diameter_mm`` is None where the
        file says -1 (unknown).

    Raises:
        AnnotationError: Missing columns or a row that is not numbers.
    """
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise AnnotationError(
                    f"not a LUNA16 annotation file: missing column(s) {missing}",
                    path=p,
                    hint=f"Expected the header {','.join(_COLUMNS)}.",
                )
            out = []
            for line_no, row in enumerate(reader, start=2):
                uid = (row["seriesuid"] or "").strip()
                if series_uid is not None and uid != series_uid:
                    continue
                try:
                    x, y, z, d = (float(row[c]) for c in _COLUMNS[1:])
                except (TypeError, ValueError) as exc:
                    raise AnnotationError(f"line {line_no}: non-numeric value ({exc})", path=p) from exc
                if not all(math.isfinite(v) for v in (x, y, z, d)):
                    raise AnnotationError(f"line {line_no}: NaN or infinite value", path=p)
                out.append(ReferenceNodule(uid, (x, y, z), d if d > 0 else None, source="luna16"))
    except OSError as exc:
        raise AnnotationError(f"cannot read annotation file: {exc.strerror or exc}", path=p) from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise AnnotationError(f"not a readable CSV ({exc})", path=p) from exc
    return out
