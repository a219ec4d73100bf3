from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medmm.errors import AnnotationError
from medmm.io.lidc import _polygon_mask, read_lidc_xml
from medmm.io.luna16 import read_luna16_csv


def test_luna16_rows_filter_and_unknown_diameter(tmp_path: Path) -> None:
    p = tmp_path / "annotations.csv"
    p.write_text("seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2,1,2,3,4.5\n1.3,-1,-2,-3,-1\n")
    assert [r.center_lps_mm for r in read_luna16_csv(p)] == [(1.0, 2.0, 3.0), (-1.0, -2.0, -3.0)]
    (row,) = read_luna16_csv(p, series_uid="1.3")
    assert row.diameter_mm is None and row.source == "luna16"


@pytest.mark.parametrize(
    ("text", "message"),
    [("a,b\n1,2\n", "missing column"), ("seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2,x,2,3,4\n", "line 2")],
)
def test_luna16_malformed(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(AnnotationError, match=message):
        read_luna16_csv(p)


def test_lidc_xml_malformed(tmp_path: Path) -> None:
    p = tmp_path / "x.xml"
    p.write_text("<LidcReadMessage><ResponseHeader/></LidcReadMessage>")
    with pytest.raises(AnnotationError, match="no readingSession"):
        read_lidc_xml(p)
    p.write_text("<LidcReadMessage><readingSession>")
    with pytest.raises(AnnotationError, match="cannot parse"):
        read_lidc_xml(p)


def test_polygon_interior_excludes_the_outline() -> None:
    # Every boundary pixel of a 5x5 square, walked around as LIDC edge maps are: (x, y).
    ring = [(x, 0) for x in range(5)] + [(4, y) for y in range(1, 5)]
    ring += [(x, 4) for x in range(3, -1, -1)] + [(0, y) for y in range(3, 0, -1)]
    square = np.array(ring)
    mask, r0, c0 = _polygon_mask(square)
    assert (r0, c0) == (0, 0) and mask.shape == (5, 5)
    assert mask[1:4, 1:4].all() and mask.sum() == 9


@pytest.mark.parametrize("value", [":", "1e999"])
def test_lidc_non_nodule_with_a_bad_number_is_an_annotation_error(tmp_path: Path, value: str) -> None:
    # Found by tests/fuzz: a non-number escaped as ValueError, an infinite coordinate as OverflowError.
    p = tmp_path / "x.xml"
    p.write_text(
        "<LidcReadMessage><readingSession><nonNodule><imageZposition>-10</imageZposition>"
        f"<locus><xCoord>{value}</xCoord><yCoord>3</yCoord></locus></nonNodule></readingSession></LidcReadMessage>"
    )
    with pytest.raises(AnnotationError, match="malformed nonNodule") as err:
        read_lidc_xml(p)
    assert str(p) in str(err.value)
