"""Anatomy: lung segmentation, lobe and zone regions, region assignment, region graph."""

from medmm.anatomy.lung_mask import LungSegmentation, segment_lungs

__all__ = ["LungSegmentation", "segment_lungs"]
