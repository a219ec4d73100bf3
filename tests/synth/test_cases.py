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


def test_subsolid_size_range_narrows_the_draw_and_keeps_the_default_case() -> None:
    import pytest

    from medmm.errors import InputError
    from medmm.synth.cases import SUBSOLID_SIZE_MM, check_subsolid_size

    sizes = []
    subsolid = Pattern.SUBSOLID_ADENOCARCINOMA_SPECTRUM
    for seed in (1, 2, 3):
        plain = generate_case(seed, matrix=96, pattern=subsolid)
        same = generate_case(seed, matrix=96, pattern=subsolid, subsolid_size_mm=SUBSOLID_SIZE_MM)
        small = generate_case(seed, matrix=96, pattern=subsolid, subsolid_size_mm=(5, 9))
        # the explicit default is the default, voxel for voxel
        assert np.array_equal(plain.volume.array, same.volume.array)
        (n_plain,), (n_small,) = plain.nodules, small.nodules
        # one uniform draw either way: the same quantile of the new range
        q = (n_plain.spec.diameter_mm - 6.0) / 19.0
        assert n_small.spec.diameter_mm == pytest.approx(5.0 + 4.0 * q)
        assert n_small.spec.texture == n_plain.spec.texture
        sizes.append(n_small.spec.diameter_mm)
    assert all(5.0 <= d <= 9.0 for d in sizes)
    for bad in [(9, 5), (2, 8), (6, 40), (6,)]:
        with pytest.raises(InputError, match="subsolid size range"):
            check_subsolid_size(bad)
    with pytest.raises(InputError):
        generate_case(1, matrix=96, subsolid_size_mm=(10, 10))
