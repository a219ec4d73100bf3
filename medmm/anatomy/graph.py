"""The anatomical region graph, as a ``torch_geometric.data.Data``.

Nodes are the regions of :class:`~medmm.anatomy.regions.Region` in that fixed order, so a
model trained on one case's graph applies to any case. Edges are anatomical adjacency,
stored in both directions with a type:

* ``fissure``: lobes sharing a fissure (RUL-RML horizontal, RUL-RLL, RML-RLL, LUL-LLL);
* ``pleura``: each lobe and its side's pleura/chest wall;
* ``mediastinum``: each lobe and the mediastinum, the airways and the mediastinum;
* ``airway``: the central airways and each lobe (lobar bronchi);
* ``counterpart``: left-right counterparts (RUL-LUL, RML-LUL for the lingula, RLL-LLL).

Node features start with anatomical measurements (:func:`anatomy_node_features`: volume
in litres, mean HU / 1000, low-attenuation fraction below -950 HU, the emphysema index of
Gevenois et al., AJRCCM 154:187, 1996); later stages append image embeddings, nodule
statistics and report mentions per node.

Example:
    >>> g = build_region_graph()
    >>> g.num_nodes, g.node_names[0]
    (9, 'RUL')
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch_geometric.data import Data

from medmm.anatomy.regions import Anatomy, Region

__all__ = ["EDGE_TYPES", "NODE_NAMES", "anatomy_node_features", "build_region_graph"]

NODE_NAMES: tuple[str, ...] = tuple(r.value for r in Region)
EDGE_TYPES: tuple[str, ...] = ("fissure", "pleura", "mediastinum", "airway", "counterpart")
_R = Region
_UNDIRECTED_EDGES: tuple[tuple[Region, Region, str], ...] = (
    (_R.RUL, _R.RML, "fissure"),
    (_R.RUL, _R.RLL, "fissure"),
    (_R.RML, _R.RLL, "fissure"),
    (_R.LUL, _R.LLL, "fissure"),
    *((lobe, _R.RIGHT_PLEURA, "pleura") for lobe in (_R.RUL, _R.RML, _R.RLL)),
    *((lobe, _R.LEFT_PLEURA, "pleura") for lobe in (_R.LUL, _R.LLL)),
    *((lobe, _R.MEDIASTINUM, "mediastinum") for lobe in (_R.RUL, _R.RML, _R.RLL, _R.LUL, _R.LLL)),
    (_R.CENTRAL_AIRWAYS, _R.MEDIASTINUM, "mediastinum"),
    *((_R.CENTRAL_AIRWAYS, lobe, "airway") for lobe in (_R.RUL, _R.RML, _R.RLL, _R.LUL, _R.LLL)),
    (_R.RUL, _R.LUL, "counterpart"),
    (_R.RML, _R.LUL, "counterpart"),
    (_R.RLL, _R.LLL, "counterpart"),
)
ANATOMY_FEATURES: tuple[str, ...] = ("volume_l", "mean_hu_per_1000", "laa950_fraction")


def anatomy_node_features(anatomy: Anatomy) -> np.ndarray:
    """Per-node anatomical measurements (zeros for regions not measured).

    Shapes:
        Output: ``(len(NODE_NAMES), len(ANATOMY_FEATURES))``.
    """
    feats = np.zeros((len(NODE_NAMES), len(ANATOMY_FEATURES)), np.float32)
    hu = anatomy.volume.array
    voxel_l = float(np.prod(anatomy.volume.spacing_mm)) / 1e6
    masks = {Region.CENTRAL_AIRWAYS.value: anatomy.lungs.airways}
    for code, region in ((1, _R.RUL), (2, _R.RML), (3, _R.RLL), (4, _R.LUL), (5, _R.LLL)):
        masks[region.value] = anatomy.lobes.labels == code
    for n, name in enumerate(NODE_NAMES):
        mask = masks.get(name)
        if mask is None or not mask.any():
            continue
        values = hu[mask]
        feats[n] = (mask.sum() * voxel_l, float(values.mean()) / 1000.0, float((values < -950).mean()))
    return feats


def build_region_graph(node_features: npt.ArrayLike | None = None, feature_dim: int = 0) -> Data:
    """The region graph with optional node features.

    Args:
        node_features: ``(9, F)`` features in :data:`NODE_NAMES` order (default zeros).
        feature_dim: ``F`` when no features are given.

    Returns:
        ``Data`` with ``x`` (9, F), ``edge_index`` (2, E), ``edge_type`` (E,) indexing
        :data:`EDGE_TYPES`, and ``node_names``.

    Shapes:
        - x: ``(9, F)``
        - edge_index: ``(2, 46)`` (23 undirected edges, both directions)
        - edge_type: ``(46,)``
    """
    index = {name: n for n, name in enumerate(NODE_NAMES)}
    src, dst, types = [], [], []
    for a, b, kind in _UNDIRECTED_EDGES:
        for u, v in ((a, b), (b, a)):
            src.append(index[u.value])
            dst.append(index[v.value])
            types.append(EDGE_TYPES.index(kind))
    if node_features is None:
        x = torch.zeros((len(NODE_NAMES), feature_dim), dtype=torch.float32)
    else:
        x = torch.as_tensor(np.asarray(node_features, dtype=np.float32))
        if x.ndim != 2 or x.shape[0] != len(NODE_NAMES):
            raise ValueError(f"node_features must have shape ({len(NODE_NAMES)}, F), got {tuple(x.shape)}")
    return Data(
        x=x,
        edge_index=torch.tensor([src, dst], dtype=torch.long),
        edge_type=torch.tensor(types, dtype=torch.long),
        node_names=list(NODE_NAMES),
    )
