"""Synthetic phantoms with known lungs and lobes."""

from __future__ import annotations

import numpy as np
import pytest

from medmm.anatomy import Anatomy, Region, assign, segment_anatomy
from medmm.synth.cases import Pattern, SyntheticCase, generate_case
from medmm.synth.nodules import NodulePosition
from medmm.synth.scanner import Kernel, ScannerSettings

THIN_LUNG = ScannerSettings(Kernel.LUNG, slice_thickness_mm=1.25, matrix=256)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.fixture(scope="module")
def metastases() -> tuple[SyntheticCase, Anatomy]:
    # Seed 2 draws juxtapleural nodules of 10.6 and 16.2 mm among others.
    case = generate_case(2, pattern=Pattern.MULTIPLE_METASTASES, scanner=THIN_LUNG, effusion_rate=0.0)
    return case, segment_anatomy(case.volume)


def test_lung_dice(metastases: tuple[SyntheticCase, Anatomy]) -> None:
    case, anatomy = metastases
    assert _dice(anatomy.lungs.lung_mask, case.lobe > 0) >= 0.97


def test_lobe_dice_where_fissures_are_visible(metastases: tuple[SyntheticCase, Anatomy]) -> None:
    case, anatomy = metastases
    assert {f.method for f in anatomy.lobes.fissures} == {"fissure"}
    for code in range(1, 6):
        assert _dice(anatomy.lobes.labels == code, case.lobe == code) >= 0.85, code


def test_juxtapleural_nodules_stay_inside_the_lung_mask(metastases: tuple[SyntheticCase, Anatomy]) -> None:
    case, anatomy = metastases
    jp = [n for n in case.nodules if n.spec.position == NodulePosition.JUXTAPLEURAL]
    assert jp, "the fixture case must hold juxtapleural nodules"
    for n in jp:
        k, j, i = np.rint(case.volume.world_to_index(n.center_lps_mm)).astype(int)
        assert anatomy.lungs.lung_mask[k, j, i]
        lung_part = (case.nodule_map == n.label) & (case.lobe > 0)
        assert anatomy.lungs.lung_mask[lung_part].mean() >= 0.95
        where = assign(n.center_lps_mm, n.diameter_mm, anatomy)
        assert where.juxtapleural
        assert where.distance_to_pleura_mm is not None
        assert where.distance_to_pleura_mm <= 2.0


def test_assignment_names_the_true_lobe(metastases: tuple[SyntheticCase, Anatomy]) -> None:
    case, anatomy = metastases
    for n in case.nodules:
        where = assign(n.center_lps_mm, n.diameter_mm, anatomy)
        assert where.lobe == Region(n.lobe.name)
        assert where.side == ("right" if n.lobe.name.startswith("R") else "left")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 5, 7])
def test_more_juxtapleural_cases(seed: int) -> None:
    case = generate_case(seed, pattern=Pattern.MULTIPLE_METASTASES, scanner=THIN_LUNG, effusion_rate=0.0)
    anatomy = segment_anatomy(case.volume)
    assert _dice(anatomy.lungs.lung_mask, case.lobe > 0) >= 0.97
    for n in case.nodules:
        k, j, i = np.rint(case.volume.world_to_index(n.center_lps_mm)).astype(int)
        assert anatomy.lungs.lung_mask[k, j, i], n


def test_geometric_fallback_is_declared() -> None:
    thick = ScannerSettings(Kernel.STANDARD, slice_thickness_mm=3.0, matrix=128)
    case = generate_case(3, pattern=Pattern.NORMAL, scanner=thick, effusion_rate=0.0)
    anatomy = segment_anatomy(case.volume)
    assert _dice(anatomy.lungs.lung_mask, case.lobe > 0) >= 0.95
    assert all(m in ("fissure", "geometric") for m in (anatomy.methods[r.value] for r in list(Region)[:5]))
    assert "geometric" in {f.method for f in anatomy.lobes.fissures}
