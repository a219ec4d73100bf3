"""Case-level options of the generator."""

from __future__ import annotations

import numpy as np

from medmm.synth.cases import Pattern, generate_case
from medmm.synth.nodules import NodulePosition


def test_juxtavascular_rate_moves_open_parenchyma_nodules_and_nothing_else() -> None:
    plain = generate_case(5, matrix=96, pattern=Pattern.MULTIPLE_METASTASES)
    moved = generate_case(5, matrix=96, pattern=Pattern.MULTIPLE_METASTASES, juxtavascular_rate=1.0)
    before = [n.spec.position for n in plain.nodules]
    after = [n.spec.position for n in moved.nodules]
    assert NodulePosition.ISOLATED in before
    # every isolated nodule moved against a vessel; juxtapleural ones stay where they were
    assert after == [NodulePosition.JUXTAVASCULAR if p == NodulePosition.ISOLATED else p for p in before]
    # the rate has a random stream of its own: the rest of the case is the same
    assert moved.scanner == plain.scanner and moved.shape == plain.shape
    assert [n.diameter_mm for n in moved.nodules] == [n.diameter_mm for n in plain.nodules]
    assert np.array_equal(moved.tissue == 0, plain.tissue == 0)
