"""Nodule detection: candidates (this module), 3D CNN and training (in progress)."""

from medmm.detect.candidates import Candidate, generate_candidates, lung_region_isotropic

__all__ = ["Candidate", "generate_candidates", "lung_region_isotropic"]
