"""Stated descriptors (calcified, texture, pleural / fissural contact) as a pointing prior."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medmm.fusion.descriptors import (
    DESCRIPTOR_FLOOR,
    UNKNOWN_MATCH,
    Descriptor,
    contact_gaps,
    descriptor_match,
    stated_descriptors,
)
from medmm.fusion.grid import LungGrid
from tests.test_fusion import _two_rll_one_lul_tokens

D = Descriptor


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("RUL: calcified granuloma with central calcification measuring 6 x 5 mm.", {D.CALCIFIED}),
        ("There is a 13 mm well-circumscribed subpleural pulmonary nodule in the LLL.", {D.JUXTAPLEURAL}),
        ("A pleural-based solid nodule is seen in the RLL, measuring 8 mm.", {D.JUXTAPLEURAL, D.SOLID}),
        ("A smooth perifissural pulmonary nodule is seen in the RLL.", {D.PERIFISSURAL}),
        ("Small nodule along the right major fissure.", {D.PERIFISSURAL}),
        ("There is a 9 mm pure ground-glass nodule in the RUL.", {D.GROUND_GLASS}),
        ("Non-solid nodule in the lingula; GGO elsewhere.", {D.GROUND_GLASS}),
        ("Part-solid nodule, 14 mm; its solid component measures 5 mm.", {D.PART_SOLID}),
        ("Subsolid nodule in the RML.", {D.SUBSOLID}),
        ("A non-calcified solid nodule.", {D.NON_CALCIFIED, D.SOLID}),
        ("A 7 mm nodule without calcification.", {D.NON_CALCIFIED}),
        ("A 6 mm nodule in the right lower lobe.", set()),
    ],
)
def test_stated_descriptors(sentence: str, expected: set[Descriptor]) -> None:
    assert stated_descriptors(sentence) == frozenset(expected)


def test_descriptor_match_reads_the_cnn_attributes_softly() -> None:
    calcified = {
        "calcification_probability": 0.95,
        "texture_probabilities": {"solid": 0.9, "part_solid": 0.05, "ground_glass": 0.05},
    }
    glass = {
        "calcification_probability": 0.01,
        "texture_probabilities": {"solid": 0.1, "part_solid": 0.2, "ground_glass": 0.7},
    }
    assert descriptor_match(calcified, frozenset()) == 1.0
    assert (
        descriptor_match(calcified, frozenset({D.CALCIFIED}))
        > 0.9
        > 0.2
        > descriptor_match(glass, frozenset({D.CALCIFIED}))
    )
    assert descriptor_match(glass, frozenset({D.SUBSOLID})) == pytest.approx(
        DESCRIPTOR_FLOOR + (1 - DESCRIPTOR_FLOOR) * 0.9
    )
    assert descriptor_match(glass, frozenset({D.NON_CALCIFIED})) > descriptor_match(
        calcified, frozenset({D.NON_CALCIFIED})
    )
    # a contradicted descriptor never rules a detection out: the floor stays
    assert descriptor_match(glass, frozenset({D.CALCIFIED, D.SOLID})) >= DESCRIPTOR_FLOOR**2
    # unknown attributes (a faint detection) sit at the neutral match
    faint = {"center_lps_mm": [0, 0, 0], "diameter_mm": 6.0}
    assert descriptor_match(faint, frozenset({D.CALCIFIED})) == pytest.approx(
        DESCRIPTOR_FLOOR + (1 - DESCRIPTOR_FLOOR) * UNKNOWN_MATCH
    )
    # contact: full within the gap, falling off beyond it
    assert descriptor_match({"pleura_gap_mm": 1.5}, frozenset({D.JUXTAPLEURAL})) == 1.0
    far = descriptor_match({"pleura_gap_mm": 12.0}, frozenset({D.JUXTAPLEURAL}))
    assert DESCRIPTOR_FLOOR < far < 0.11


def _two_lobe_grid() -> LungGrid:
    """A 2 mm grid: lung voxels x 10..49 (RLL for x < 30, RML beyond), outside the lung elsewhere."""
    lobes = np.zeros((40, 40, 60), np.uint8)
    lobes[5:35, 5:35, 10:30] = 3
    lobes[5:35, 5:35, 30:50] = 2
    affine = np.diag([2.0, 2.0, 2.0, 1.0])[[2, 1, 0, 3]]  # index (k, j, i) -> LPS (x = 2i, y = 2j, z = 2k)
    return LungGrid(hu=np.zeros(lobes.shape, np.float32), lobes=lobes, affine=affine)


def test_contact_gaps_measure_pleura_and_fissure_on_the_lobe_grid() -> None:
    grid = _two_lobe_grid()
    rows = [
        {"center_lps_mm": [25.0, 40.0, 40.0], "diameter_mm": 6.0},  # x=25: 5 mm from the lung edge at x=19
        {"center_lps_mm": [55.0, 40.0, 40.0], "diameter_mm": 6.0},  # 5 mm from the RLL/RML boundary at x=59
        {"center_lps_mm": [500.0, 40.0, 40.0], "diameter_mm": 6.0},  # off the grid: nothing known
    ]
    out = contact_gaps(grid, rows)
    assert out[0]["pleura_gap_mm"] == pytest.approx(3.0, abs=1.1)
    assert out[0]["fissure_gap_mm"] == 20.0  # none within reach: "20 mm or more"
    assert out[1]["fissure_gap_mm"] == pytest.approx(2.0, abs=1.1) and out[1]["pleura_gap_mm"] == 20.0
    assert out[2]["pleura_gap_mm"] is None and out[2]["fissure_gap_mm"] is None
    assert contact_gaps(grid, out) == out  # rows that carry gaps are kept as they are
    assert "pleura_gap_mm" not in rows[0]  # inputs untouched


def test_a_stated_descriptor_picks_between_two_same_size_nodules_of_one_lobe() -> None:
    from medmm.fusion.size import size_prior, stated_weighted

    pos = torch.tensor([[0.0, 0, 0], [60.0, 0, 0], [200.0, 0, 0]])
    tokens = _two_rll_one_lul_tokens(pos)
    central = {"center_lps_mm": [0.0, 0, 0], "diameter_mm": 14.0, "probability": 1.0, "pleura_gap_mm": 15.0}
    pleural = {"center_lps_mm": [60.0, 0, 0], "diameter_mm": 12.9, "probability": 1.0, "pleura_gap_mm": 0.0}
    dets = [central, pleural]
    w = torch.tensor([0.6, 0.3, 0.1])  # the attention leans on the central one
    sentence = "There is a 13 mm well-circumscribed subpleural pulmonary nodule in the right lower lobe."
    stated = stated_descriptors(sentence)
    assert int(stated_weighted(w, tokens, dets, "RLL", 13.0).argmax()) == 0  # size alone cannot tell
    out = stated_weighted(w, tokens, dets, "RLL", 13.0, stated)
    assert int(out.argmax()) == 1 and float(out.sum()) == pytest.approx(1.0)
    # descriptors alone (no lobe, no size stated) leave the map as it is
    assert torch.equal(stated_weighted(w, tokens, dets, None, None, stated), w)
    # with a lobe but no size, the descriptors still choose among the detections
    prior = size_prior(pos.numpy(), dets, None, stated)
    assert prior is not None and int(np.argmax(prior)) == 1
    assert size_prior(pos.numpy(), dets, None, frozenset()) is None
