"""LIDC-IDRI-0001: lungs, lobes and the LUNA16 nodule's place."""

from __future__ import annotations

import numpy as np
import pytest

from medmm.anatomy import Anatomy, Region, assign, segment_anatomy
from medmm.io import load_series, read_luna16_csv
from tests.conftest import LIDC_DIR, require_shared

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def anatomy() -> Anatomy:
    return segment_anatomy(load_series(require_shared(LIDC_DIR / "series")))


def test_lung_volume_and_sides(anatomy: Anatomy) -> None:
    voxel_l = float(np.prod(anatomy.volume.spacing_mm)) / 1e6
    total_l = anatomy.lungs.lung_mask.sum() * voxel_l
    assert 3.0 <= total_l <= 8.0
    for code, sign in ((1, -1), (2, 1)):  # right lung at -x (patient right), left at +x
        idx = np.argwhere(anatomy.lungs.lungs == code)
        assert len(idx) * voxel_l > 1.0
        assert np.sign(anatomy.volume.index_to_world(idx.mean(0))[0]) == sign
    assert anatomy.lungs.airways.any()
    assert not (anatomy.lungs.lung_mask & anatomy.lungs.airways).any()


def test_every_lung_voxel_has_a_lobe_on_its_side(anatomy: Anatomy) -> None:
    lobes, lungs = anatomy.lobes.labels, anatomy.lungs.lungs
    assert np.all(lobes[lungs > 0] > 0)
    assert np.all(np.isin(lobes[lungs == 1], [1, 2, 3]))
    assert np.all(np.isin(lobes[lungs == 2], [4, 5]))


def test_luna16_nodule_is_in_the_left_lower_lobe(anatomy: Anatomy) -> None:
    """The LUNA16 nodule (23 mm) sits posteriorly, paravertebral, at the level of the left
    lower-lobe bronchus (slices ~85-95 of 133, x 56, y 86, z -116 mm): by inspection of the
    axial and sagittal slices it is in the superior segment of the LEFT LOWER LOBE, behind
    the oblique fissure. The fissure itself is not visible at 2.5 mm / standard kernel, so
    the lobes here come from the geometric approximation."""
    (ref,) = read_luna16_csv(LIDC_DIR / "luna16_annotations.csv")
    k, j, i = np.rint(anatomy.volume.world_to_index(ref.center_lps_mm)).astype(int)
    assert anatomy.lungs.lungs[k, j, i] == 2  # inside the (left) lung mask
    assert ref.diameter_mm is not None
    where = assign(ref.center_lps_mm, ref.diameter_mm, anatomy)
    assert where.inside_lung
    assert where.lobe == Region.LLL
    assert where.side == "left"
    assert where.lobe_method in ("geometric", "fissure")
    assert where.distance_to_pleura_mm is not None
    assert where.distance_to_pleura_mm < 10.0  # it lies against the posterior pleura
