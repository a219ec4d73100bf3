"""Anatomy: lung segmentation, lobes, zones and bands, nodule placement, region graph.

Example:
    >>> from medmm.anatomy import segment_anatomy, assign          # doctest: +SKIP
    >>> anatomy = segment_anatomy(volume)                          # doctest: +SKIP
    >>> assign([56.2, 86.3, -115.9], 23.4, anatomy).lobe           # doctest: +SKIP
    <Region.LLL: 'LLL'>

The region graph (:func:`build_region_graph`) needs torch-geometric; it is imported
lazily so that segmentation works without loading torch.
"""

from typing import Any

from medmm.anatomy.assign import RegionAssignment, assign
from medmm.anatomy.lobes import FissureSurface, LobeSegmentation, segment_lobes
from medmm.anatomy.lung_mask import LungSegmentation, segment_lungs
from medmm.anatomy.regions import REGIONS, Anatomy, Band, Region, RegionInfo, Zone, segment_anatomy

__all__ = [
    "REGIONS",
    "Anatomy",
    "Band",
    "FissureSurface",
    "LobeSegmentation",
    "LungSegmentation",
    "Region",
    "RegionAssignment",
    "RegionInfo",
    "Zone",
    "anatomy_node_features",
    "assign",
    "build_region_graph",
    "segment_anatomy",
    "segment_lobes",
    "segment_lungs",
]


def __getattr__(name: str) -> Any:
    if name in ("build_region_graph", "anatomy_node_features"):
        from medmm.anatomy import graph

        return getattr(graph, name)
    raise AttributeError(f"module 'medmm.anatomy' has no attribute {name!r}")
