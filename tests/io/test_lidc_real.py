"""LIDC-IDRI-0001: the real series against SimpleITK, and LIDC XML consensus against LUNA16."""

from __future__ import annotations

import numpy as np
import pytest

from medmm.io import load_series, scan
from medmm.io.lidc import lidc_consensus, read_lidc_xml
from medmm.io.luna16 import read_luna16_csv
from medmm.types import Volume
from tests.conftest import LIDC_DIR, require_shared

pytestmark = pytest.mark.realdata
SERIES_UID = "1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192"


@pytest.fixture(scope="module")
def lidc_volume() -> Volume:
    return load_series(require_shared(LIDC_DIR / "series"))


def test_lidc_series_matches_simpleitk_voxel_for_voxel(lidc_volume: Volume) -> None:
    sitk = pytest.importorskip("SimpleITK")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(LIDC_DIR / "series")))
    img = reader.Execute()
    assert lidc_volume.shape == (133, 512, 512)
    assert lidc_volume.spacing_mm == pytest.approx((2.5, 0.703125, 0.703125))
    np.testing.assert_array_equal(lidc_volume.array, sitk.GetArrayFromImage(img).astype(np.float32))
    np.testing.assert_allclose(lidc_volume.origin_lps_mm, img.GetOrigin(), atol=1e-4)
    sitk_dir = np.asarray(img.GetDirection()).reshape(3, 3)  # columns for ITK axes (x, y, z)
    np.testing.assert_allclose(lidc_volume.direction, sitk_dir[:, ::-1], atol=1e-6)
    assert lidc_volume.info is not None and lidc_volume.info.series_uid == SERIES_UID
    assert lidc_volume.array.min() >= -3024 and lidc_volume.array.max() <= 4000


def test_lidc_scan_finds_one_series_and_nothing_skipped() -> None:
    res = scan(require_shared(LIDC_DIR / "series"))
    assert [s.series_uid for s in res.series] == [SERIES_UID] and res.skipped == ()
    assert res.series[0].info.manufacturer == "GE MEDICAL SYSTEMS"


def test_lidc_xml_consensus_matches_the_luna16_reference(lidc_volume: Volume) -> None:
    marks = read_lidc_xml(require_shared(LIDC_DIR / "lidc-069.xml"))
    assert {m.reader_index for m in marks} == {0, 1, 2, 3}
    nodules = lidc_consensus(marks, lidc_volume, min_readers=3)
    (luna,) = read_luna16_csv(LIDC_DIR / "luna16_annotations.csv", series_uid=SERIES_UID)
    assert len(nodules) == 1
    nod = nodules[0]
    assert nod.outlined_by == 4
    dist = np.linalg.norm(np.subtract(nod.center_lps_mm, luna.center_lps_mm))
    assert dist < 2.0, f"consensus centre {dist:.2f} mm from LUNA16"
    assert luna.diameter_mm is not None and nod.diameter_mm is not None
    assert abs(nod.diameter_mm - luna.diameter_mm) / luna.diameter_mm < 0.20
    ref = nod.to_reference(SERIES_UID)
    assert ref.reader_count == 4 and ref.source == "lidc-xml"


def test_small_marks_correspond_to_luna16_excluded_findings(lidc_volume: Volume) -> None:
    marks = read_lidc_xml(require_shared(LIDC_DIR / "lidc-069.xml"))
    small = [n for n in lidc_consensus(marks, lidc_volume, min_readers=0) if n.outlined_by == 0]
    excluded = read_luna16_csv(LIDC_DIR / "luna16_annotations_excluded.csv")
    assert all(r.diameter_mm is None or r.diameter_mm > 3 for r in excluded)
    unknown = np.array([r.center_lps_mm for r in excluded if r.diameter_mm is None])
    assert small, "the XML has sub-3 mm nodule marks"
    for nod in small:
        assert np.min(np.linalg.norm(unknown - np.asarray(nod.center_lps_mm), axis=1)) < 2.0
