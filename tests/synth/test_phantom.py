"""The phantom's anatomy and HU values against published ranges."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medmm.grid import world_grid
from medmm.synth.cases import Pattern, SyntheticCase, generate_case
from medmm.synth.phantom import Lobe, PatientShape, Tissue, build_phantom, phantom_geometry
from medmm.synth.scanner import Kernel, ScannerSettings
from medmm.synth.vessels import grow_vessel_trees


@pytest.fixture(scope="module")
def case() -> SyntheticCase:
    settings = ScannerSettings(Kernel.STANDARD, slice_thickness_mm=2.0, matrix=256)
    return generate_case(
        11, pattern=Pattern.MULTIPLE_METASTASES, scanner=settings, effusion_rate=0.0, emphysema_rate=0.0
    )


def _mean_core(case: SyntheticCase, label: Tissue, erode: int = 1) -> float:
    mask = ndimage.binary_erosion(case.tissue == label, iterations=erode)
    assert mask.sum() > 50, f"too few core voxels of {label.name}"
    return float(case.volume.array[mask].mean())


# Published unenhanced-CT ranges (HU): lung -900..-800 (Verschakelen 1993), fat -120..-80,
# skeletal muscle 35..60, cancellous bone 150..400, blood 30..50, liver 50..70, soft-tissue
# nodules -20..80 (e.g. Lamba et al., RadioGraphics 34:1653, 2014).
@pytest.mark.parametrize(
    ("tissue", "low", "high"),
    [
        (Tissue.LUNG, -900, -800),
        (Tissue.FAT, -120, -80),
        (Tissue.MUSCLE, 35, 60),
        (Tissue.MARROW, 150, 400),
        (Tissue.AORTA, 30, 50),
        (Tissue.LIVER, 50, 70),
        (Tissue.MEDIASTINAL_FAT, -120, -80),
    ],
)
def test_tissue_hu_in_published_ranges(case: SyntheticCase, tissue: Tissue, low: float, high: float) -> None:
    assert low <= _mean_core(case, tissue) <= high


def test_vessel_and_nodule_hu(case: SyntheticCase) -> None:
    big_vessels = case.tissue == Tissue.VESSEL
    assert 0 < case.volume.array[ndimage.binary_erosion(big_vessels)].mean() < 60
    cores = ndimage.binary_erosion(case.nodule_map > 0)
    assert -20 <= case.volume.array[cores].mean() <= 80  # solid metastases
    assert case.volume.array[case.tissue == Tissue.CORTICAL_BONE].mean() > 300


def test_noise_matches_the_kernel(case: SyntheticCase) -> None:
    # Standard kernel, 2 mm: noise std in uniform liver ~ 16 * sqrt(1.25/2) HU, size-adjusted.
    core = ndimage.binary_erosion(case.tissue == Tissue.LIVER, iterations=2)
    std = float(case.volume.array[core].std())
    assert 5 < std < 40


def test_every_lung_voxel_has_a_lobe_on_the_right_side() -> None:
    rng = np.random.default_rng(3)
    shape = PatientShape.sample(rng, emphysema_rate=0)
    geom = phantom_geometry(shape, matrix=128, slice_thickness_mm=3.0)
    ph = build_phantom(geom, shape, rng)
    lung = np.isin(ph.tissue, [Tissue.LUNG, Tissue.VESSEL])
    assert np.all(ph.lobe[lung] > 0)
    assert np.all(ph.lobe[~lung & (ph.tissue != Tissue.AIRWAY)] == 0)
    x, _, z = world_grid(geom)
    x = np.broadcast_to(x, geom.shape)
    z = np.broadcast_to(z, geom.shape)
    for lobe in Lobe:
        if lobe == Lobe.NONE:
            continue
        sel = ph.lobe == lobe
        assert sel.sum() > 1000, lobe
        side = x[sel]
        assert (side < 0).all() if lobe.name.startswith("R") else (side > 0).all()
    # Upper lobes sit higher than lower lobes on average.
    assert z[ph.lobe == Lobe.RUL].mean() > z[ph.lobe == Lobe.RLL].mean()
    assert z[ph.lobe == Lobe.LUL].mean() > z[ph.lobe == Lobe.LLL].mean()


def test_vessel_tree_branches_and_tapers() -> None:
    rng = np.random.default_rng(5)
    shape = PatientShape(seed=5)
    geom = phantom_geometry(shape, matrix=128, slice_thickness_mm=3.0)
    ph = build_phantom(geom, shape, np.random.default_rng(5))
    segments = grow_vessel_trees(geom, ph.lung_mask, shape.scale, rng)
    radii = np.array([s.radius_start_mm for s in segments])
    assert len(segments) > 300
    assert radii.max() > 4.0
    assert radii.min() < 1.5  # down to the smallest radius this 3 mm grid resolves
    hilum = np.array([[-44, 10, -32], [44, 10, -32]], float)
    starts = np.array([s.start for s in segments])
    dist = np.min(np.linalg.norm(starts[:, None] - hilum[None], axis=2), axis=1)
    assert radii[dist < 30].mean() > 1.5 * radii[dist > 80].mean()


def test_generation_is_reproducible() -> None:
    settings = ScannerSettings(Kernel.LUNG, 3.0, 96)
    a = generate_case(7, scanner=settings)
    b = generate_case(7, scanner=settings)
    np.testing.assert_array_equal(a.volume.array, b.volume.array)
    np.testing.assert_array_equal(a.nodule_map, b.nodule_map)
    assert a.pattern == b.pattern
    assert [n.center_lps_mm for n in a.nodules] == [n.center_lps_mm for n in b.nodules]
