"""Nodule detection: blob candidates, a 3D CNN over patches, training and shipped weights.

* :mod:`medmm.detect.candidates` -- multi-scale LoG blob candidates on a ~1 mm lung region;
* :mod:`medmm.detect.model` -- :class:`NoduleNet`, the patch CNN;
* :mod:`medmm.detect.detector` -- :class:`NoduleDetector`: candidates -> CNN -> NMS -> detections;
* :mod:`medmm.detect.weights` -- safetensors + model card, sha256-checked;
* :mod:`medmm.detect.training_data`, :mod:`medmm.detect.augment`, :mod:`medmm.detect.train` --
  ``medmm train detector``.
"""

from medmm.detect.candidates import Candidate, find_candidates, generate_candidates, lung_region_isotropic
from medmm.detect.detector import Detection, NoduleDetector
from medmm.detect.model import NoduleNet, NoduleNetOutput
from medmm.detect.weights import load_detector, save_detector

__all__ = [
    "Candidate",
    "Detection",
    "NoduleDetector",
    "NoduleNet",
    "NoduleNetOutput",
    "find_candidates",
    "generate_candidates",
    "load_detector",
    "lung_region_isotropic",
    "save_detector",
]
