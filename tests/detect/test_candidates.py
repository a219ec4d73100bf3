"""Candidate generation on a synthetic case with known nodules (detection issue, increment 1)."""

from __future__ import annotations

import numpy as np
import pytest

from medmm.anatomy import segment_lungs
from medmm.detect import generate_candidates, lung_region_isotropic
from medmm.synth.cases import Pattern, generate_case
from medmm.synth.scanner import Kernel, ScannerSettings


@pytest.fixture(scope="module")
def case_and_candidates():
    case = generate_case(107, pattern=Pattern.MULTIPLE_METASTASES, scanner=ScannerSettings(Kernel.STANDARD, 2.0, 256))
    lungs = segment_lungs(case.volume)
    return case, lungs, generate_candidates(case.volume, lungs.lung_mask)


def test_isolated_solid_nodules_are_among_the_candidates(case_and_candidates) -> None:
    case, _, cands = case_and_candidates
    assert 0 < len(cands) <= 300
    centres = np.array([c.center_lps_mm for c in cands])
    for n in case.nodules:
        d = np.linalg.norm(centres - np.asarray(n.center_lps_mm), axis=1)
        assert d.min() < n.diameter_mm / 2, f"{n.diameter_mm:.1f} mm {n.spec.position} nodule missed"
        best = cands[int(np.argmin(d))]
        assert abs(best.diameter_mm - n.diameter_mm) <= max(3.0, 0.5 * n.diameter_mm)
    # Each scale's leaders come first, then the rest by score.
    scores = np.array([c.score for c in cands])
    tail = scores[7 * 15 :]
    assert np.all(np.diff(tail) <= 0)


def test_isotropic_region_keeps_world_positions(case_and_candidates) -> None:
    case, lungs, _ = case_and_candidates
    region, mask = lung_region_isotropic(case.volume, lungs.lung_mask, spacing_mm=1.0)
    assert region.spacing_mm == pytest.approx((1.0, 1.0, 1.0), abs=0.02)
    # A voxel centre of the region maps to the same place as in the source volume.
    for n in case.nodules[:3]:
        k, j, i = np.rint(region.world_to_index(n.center_lps_mm)).astype(int)
        assert mask[k, j, i]
        assert region.array[k, j, i] > -300  # inside a solid nodule
