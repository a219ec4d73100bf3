from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom.data
import pytest
import torch

from medmm.anatomy import build_region_graph, segment_lungs
from medmm.anatomy.graph import EDGE_TYPES, NODE_NAMES
from medmm.errors import UnsupportedSeriesError
from medmm.io import load_series
from medmm.types import Volume

BUNDLED = Path(pydicom.data.__file__).parent / "test_files"


def test_mr_has_no_lungs() -> None:
    vol = load_series(BUNDLED / "MR_small.dcm")
    with pytest.raises(UnsupportedSeriesError, match="no lungs found"):
        segment_lungs(vol)


def test_water_cylinder_has_no_lungs() -> None:
    _, y, x = np.mgrid[0:40, 0:96, 0:96]
    arr = np.where((y - 48) ** 2 + (x - 48) ** 2 < 40**2, 0.0, -1000.0).astype(np.float32)
    with pytest.raises(UnsupportedSeriesError, match="no lungs found"):
        segment_lungs(Volume.from_spacing(arr, (2.5, 3.0, 3.0)))


def test_region_graph_structure() -> None:
    g = build_region_graph(feature_dim=4)
    assert g.node_names == list(NODE_NAMES)
    assert NODE_NAMES[:5] == ("RUL", "RML", "RLL", "LUL", "LLL")
    assert g.x.shape == (9, 4)
    assert g.validate(raise_on_error=True)
    pairs = {tuple(e) for e in g.edge_index.t().tolist()}
    assert all((b, a) in pairs for a, b in pairs), "edges are stored in both directions"
    names = {
        (NODE_NAMES[a], NODE_NAMES[b], EDGE_TYPES[t])
        for (a, b), t in zip(g.edge_index.t().tolist(), g.edge_type.tolist(), strict=True)
    }
    assert ("RUL", "RML", "fissure") in names
    assert ("LUL", "LLL", "fissure") in names
    assert ("RLL", "LLL", "counterpart") in names
    assert ("RUL", "LLL", "fissure") not in names
    assert ("RLL", "left_pleura_chest_wall", "pleura") not in names
    x = torch.arange(27, dtype=torch.float32).reshape(9, 3)
    assert torch.equal(build_region_graph(x.numpy()).x, x)
    with pytest.raises(ValueError, match=r"\(9, F\)"):
        build_region_graph(np.zeros((5, 2)))


def test_small_non_chest_ct_has_no_lungs() -> None:
    vol = load_series(BUNDLED / "CT_small.dcm")  # one 128x128 CT slice, not a chest
    with pytest.raises(UnsupportedSeriesError, match="no lungs found"):
        segment_lungs(vol)
