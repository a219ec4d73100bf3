"""Each nodule type renders with the right size, density and position."""

from __future__ import annotations

import numpy as np
import pytest

from medmm.synth.nodules import (
    Calcification,
    NodulePosition,
    NoduleSpec,
    NoduleTexture,
    find_nodule_centre,
    render_nodule,
)
from medmm.synth.phantom import PatientShape, Phantom, Tissue, build_phantom, phantom_geometry


@pytest.fixture
def phantom() -> Phantom:
    shape = PatientShape(seed=21)
    geom = phantom_geometry(shape, matrix=256, slice_thickness_mm=1.25)
    return build_phantom(geom, shape, np.random.default_rng(21))


def _place(phantom: Phantom, spec: NoduleSpec, seed: int = 0):
    rng = np.random.default_rng(seed)
    nmap = np.zeros(phantom.hu.shape, np.uint8)
    centre = find_nodule_centre(phantom, spec, rng, nmap)
    assert centre is not None, f"no place found for {spec}"
    return render_nodule(phantom, spec, centre, 1, nmap, rng), nmap


def test_round_solid_nodule_volume_and_centre(phantom: Phantom) -> None:
    nod, nmap = _place(phantom, NoduleSpec(10.0))
    expected = np.pi / 6 * 10.0**3
    assert abs(nod.volume_mm3 - expected) / expected < 0.15
    k, j, i = np.rint(phantom.hu.world_to_index(nod.center_lps_mm)).astype(int)
    assert nmap[k, j, i] == 1
    assert -20 < phantom.hu.array[k, j, i] < 80
    assert phantom.tissue[k, j, i] == Tissue.NODULE


@pytest.mark.parametrize(
    ("spec", "low", "high"),
    [
        (NoduleSpec(12.0, NoduleTexture.GROUND_GLASS), -750, -300),
        (NoduleSpec(8.0, calcification=Calcification.DIFFUSE), 250, 1000),
        (NoduleSpec(16.0, calcification=Calcification.CENTRAL), 300, 1000),
    ],
)
def test_centre_density_by_type(phantom: Phantom, spec: NoduleSpec, low: float, high: float) -> None:
    nod, _ = _place(phantom, spec)
    k, j, i = np.rint(phantom.hu.world_to_index(nod.center_lps_mm)).astype(int)
    assert low <= phantom.hu.array[k, j, i] <= high


def test_part_solid_has_a_solid_core_in_ground_glass(phantom: Phantom) -> None:
    nod, nmap = _place(phantom, NoduleSpec(20.0, NoduleTexture.PART_SOLID, solid_fraction=0.4))
    values = phantom.hu.array[nmap == 1]
    assert (values > -100).mean() > 0.03  # a solid part
    assert ((values > -750) & (values < -300)).mean() > 0.3  # and ground glass around it
    assert nod.solid_diameter_mm == pytest.approx(8.0)


def test_spiculated_nodule_reaches_beyond_its_sphere(phantom: Phantom) -> None:
    nod, nmap = _place(phantom, NoduleSpec(14.0, spiculation=1.0))
    idx = np.argwhere(nmap == 1)
    dist = np.linalg.norm(phantom.hu.index_to_world(idx) - np.asarray(nod.center_lps_mm), axis=1)
    assert dist.max() > 7.0 * 1.3


def test_juxtapleural_touches_the_chest_wall(phantom: Phantom) -> None:
    _, nmap = _place(phantom, NoduleSpec(10.0, position=NodulePosition.JUXTAPLEURAL), seed=3)
    from scipy import ndimage

    grown = ndimage.binary_dilation(nmap == 1, iterations=2)
    wall = np.isin(phantom.tissue, [Tissue.MUSCLE, Tissue.FAT, Tissue.CORTICAL_BONE, Tissue.MARROW])
    assert (grown & wall).any()


def test_perifissural_sits_on_a_fissure(phantom: Phantom) -> None:
    nod, _ = _place(phantom, NoduleSpec(6.0, position=NodulePosition.PERIFISSURAL), seed=4)
    k, j, i = np.rint(phantom.hu.world_to_index(nod.center_lps_mm)).astype(int)
    assert abs(phantom.fissure_distance_mm[k, j, i]) < 1.5


def test_juxtavascular_touches_a_vessel(phantom: Phantom) -> None:
    _, nmap = _place(phantom, NoduleSpec(8.0, position=NodulePosition.JUXTAVASCULAR), seed=5)
    from scipy import ndimage

    grown = ndimage.binary_dilation(nmap == 1, iterations=2)
    assert (grown & (phantom.tissue == Tissue.VESSEL)).sum() >= 3
