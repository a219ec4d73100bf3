"""Nodule detection on one CT: candidates -> 3D CNN -> NMS -> measured detections.

:class:`NoduleDetector` holds the network (loaded once) and runs:

1. the lung region resampled to ~1 mm (:func:`~medmm.detect.candidates.lung_region_isotropic`);
2. blob candidates (:func:`~medmm.detect.candidates.find_candidates`), ordered by the
   learned candidate ranker the detector was trained with (its card names it);
3. the CNN on a ``32^3`` patch around each candidate, optionally averaged over the 8
   axis-flip combinations (test-time augmentation, ``tta=True``); the mean logit is
   mapped to a probability by the Platt scaling stored in the model card
   (``calibration``: fitted on the validation scans' full candidate sets, where nodules
   are ~1 % of candidates, unlike the balanced training batches). Given several weights
   (an ensemble, e.g. ``NoduleDetector([v2, v3])``), each network's calibrated logit is
   averaged, and so are the centre offsets, diameters, texture and calcification;
4. the refined centre (candidate + predicted offset), non-maximum suppression in world mm
   (a detection is dropped when its centre lies within the larger radius of a stronger
   one, at least 3 mm);
5. a measured volume: voxels above a texture-dependent threshold (-400 HU solid,
   -750 HU ground glass) connected to the centre within 0.75 diameters of it, on the 1 mm
   grid.

Example:
    >>> from medmm.detect import NoduleDetector           # doctest: +SKIP
    >>> detector = NoduleDetector()                        # shipped weights   # doctest: +SKIP
    >>> dets = detector.detect(volume, lung_mask)          # doctest: +SKIP
    >>> [(round(d.probability, 2), round(d.diameter_mm, 1)) for d in dets[:3]]   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from medmm.detect.candidates import find_candidates, lung_region_isotropic, suppress
from medmm.detect.measure import nodule_mask
from medmm.detect.model import PATCH_SIZE, TEXTURES, NoduleNet, inference_copy
from medmm.detect.patches import PaddedRegion, normalize_hu
from medmm.detect.ranker import Ranker
from medmm.detect.weights import load_detector, load_detector_ranker, load_int8_observers
from medmm.errors import CheckpointError
from medmm.types import NoduleTexture, Volume

__all__ = [
    "DEFAULT_NODULE_THRESHOLD",
    "SUBMISSION_FLOOR",
    "Detection",
    "DetectorWeights",
    "NoduleDetector",
    "default_detector",
    "detector_for",
]

DetectorWeights = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None
"""One weights file, several (an ensemble sharing one candidate ranker), or None (shipped)."""

logger = logging.getLogger(__name__)

DEFAULT_NODULE_THRESHOLD = 0.5
"""Probability at which a detection is reported as a nodule."""

SUBMISSION_FLOOR = 0.0
"""Lowest probability a detection needs to be written out (``candidates.csv``).

Zero: every detection, at most 100 per scan (the LUNA16 cap), so FROC curves run as far
as the candidates do. The earlier 0.01 sat at a raw logit of 1.85 under the v5 Platt
scaling (``sigmoid(1.66 z - 7.67)``) and cut the curve short: on the development set
(seed 99) it left 7 of 63 nodules without any detection, the floor of 0 only 4
(docs/architecture.md)."""


@dataclass(frozen=True)
class Detection:
    """One detected nodule (or candidate, when its probability is low).

    Attributes:
        center_lps_mm: Refined centre (LPS mm).
        probability: Nodule probability (0..1).
        diameter_mm: Predicted diameter.
        volume_mm3: Measured volume of the thresholded component (0 if none).
        texture: Most probable texture.
        texture_probabilities: Per :data:`~medmm.detect.model.TEXTURES` class.
        calcification_probability: Probability that it is calcified.
        candidate_score: Score of the candidate it came from (ranker logit, or the
            blob filter's hand-made score without a ranker).
        logit: The network's nodule logit (mean over TTA flips and ensemble members),
            before calibration.
    """

    center_lps_mm: tuple[float, float, float]
    probability: float
    diameter_mm: float
    volume_mm3: float
    texture: NoduleTexture
    texture_probabilities: tuple[float, float, float]
    calcification_probability: float
    candidate_score: float
    logit: float = 0.0


def _flip_sets() -> list[tuple[int, ...]]:
    return [tuple(a for a, f in zip((1, 2, 3), bits, strict=True) if f) for bits in itertools.product((0, 1), repeat=3)]


class NoduleDetector:
    """Candidates + CNN + NMS; the network is loaded once and reused.

    Args:
        weights: A ``.safetensors`` file with its model card (default: the shipped weights),
            or several: an ensemble whose calibrated logits (and other outputs) are
            averaged; its members must name the same candidate ranker.
        model: An already built network (overrides ``weights``; for training evaluation).
        ranker: Candidate ranker (default: the one the weights' model card names; with
            ``model`` given and no ranker, the hand-made candidate order).
        tta: Average over the 8 flip combinations.
        batch_size: Patches per forward pass.
        threads: Torch CPU threads (None leaves torch's default).
        quantize: Run the CNN in INT8 (static quantization, :mod:`medmm.detect.quantize`),
            with the activation ranges shipped beside the weights when the card names
            them, else calibrated on each scan's first ``calibration_patches`` candidates.
        calibration_patches: Patches used to calibrate INT8 activation ranges per scan.
        int8_ranges: ``"shipped"`` uses the card's saved activation ranges when it names
            some (falling back to per-scan calibration), ``"per_scan"`` always calibrates.
        max_candidates: Blob candidates the CNN looks at per scan (the weights were trained
            on the top 300 of their ranker).
    """

    def __init__(
        self,
        weights: DetectorWeights = None,
        *,
        model: NoduleNet | None = None,
        ranker: Ranker | None = None,
        tta: bool = False,
        batch_size: int = 128,
        threads: int | None = None,
        quantize: bool = False,
        calibration_patches: int = 64,
        int8_ranges: Literal["shipped", "per_scan"] = "shipped",
        max_candidates: int = 300,
    ) -> None:
        if int8_ranges not in ("shipped", "per_scan"):
            raise ValueError(f"int8_ranges must be 'shipped' or 'per_scan', not {int8_ranges!r}")
        paths: list[str | os.PathLike[str] | None] = (
            [weights] if weights is None or isinstance(weights, str | os.PathLike) else list(weights)
        )
        if model is not None:
            models, cards = [model], [{}]
        elif not paths:
            raise ValueError("weights: give at least one weights file (or None for the shipped ones)")
        else:
            loaded = [load_detector(p) for p in paths]
            models, cards = [m for m, _ in loaded], [c for _, c in loaded]
            rankers = {json.dumps(c.get("candidate_ranker"), sort_keys=True) for c in cards}
            if len(rankers) > 1:
                raise CheckpointError(
                    "the ensemble's members were trained with different candidate rankers",
                    path=Path(str(paths[1])),
                    hint="Ensemble only weights whose model cards name the same candidate_ranker.",
                )
            if ranker is None:
                ranker = load_detector_ranker(paths[0], cards[0])
        self.card = cards[0] if len(cards) == 1 else _ensemble_card(cards)
        self.ranker = ranker
        self.models = [m.eval() for m in models]
        self.calibrations = [_calibration(c) for c in cards]
        self.quantize = quantize
        self._int8: list[torch.nn.Module] | None = None
        if quantize and model is None and int8_ranges == "shipped":
            observers = [load_int8_observers(p, c) for p, c in zip(paths, cards, strict=True)]
            if all(o is not None for o in observers):
                from medmm.detect.quantize import quantize_int8

                self._int8 = [quantize_int8(m, observers=o) for m, o in zip(self.models, observers, strict=True)]
        self.calibration_patches = calibration_patches
        self.max_candidates = max_candidates
        self.tta = tta
        self.batch_size = batch_size
        if threads is not None:
            torch.set_num_threads(threads)

    @torch.no_grad()
    def _predict(self, patches: np.ndarray) -> dict[str, np.ndarray]:
        """Run the CNN (with TTA if set) on int16 HU patches.

        Shapes:
            - patches: ``(N, 32, 32, 32)``
        """
        models: list[torch.nn.Module] = list(self.models)
        layout = torch.contiguous_format
        if self._int8 is not None:
            models = list(self._int8)
        elif self.quantize and len(patches):
            from medmm.detect.quantize import quantize_int8

            calib = normalize_hu(torch.from_numpy(patches[: self.calibration_patches]))[:, None]
            models = [quantize_int8(m, calib) for m in self.models]
        elif not self.quantize:  # float32: batch norms folded, channels last (copied per call: a
            # network given for training evaluation may have changed since the last one)
            models, layout = [inference_copy(m) for m in self.models], torch.channels_last_3d
        flips = _flip_sets() if self.tta else [()]
        acc: dict[str, Any] = {}
        for s in range(0, len(patches), self.batch_size):
            x = normalize_hu(torch.from_numpy(patches[s : s + self.batch_size]))[:, None]
            parts: dict[str, list[torch.Tensor]] = {"logit": [], "z": [], "off": [], "logd": [], "tex": [], "calc": []}
            for dims in flips:
                xf = (torch.flip(x, dims) if dims else x).contiguous(memory_format=layout)
                for model, (scale, bias) in zip(models, self.calibrations, strict=True):
                    out = model(xf)
                    off = out.offset_mm.clone()
                    for d in dims:
                        off[:, d - 1] = -off[:, d - 1]
                    parts["logit"].append(out.logit)
                    parts["z"].append(scale * out.logit + bias)
                    parts["off"].append(off)
                    parts["logd"].append(out.log_diameter)
                    parts["tex"].append(torch.softmax(out.texture_logits, 1))
                    parts["calc"].append(torch.sigmoid(out.calcified_logit))
            for k, v in parts.items():
                acc.setdefault(k, []).append(torch.stack(v).mean(0).numpy())
        if not acc:
            return {
                "logit": np.zeros(0),
                "off": np.zeros((0, 3)),
                "logd": np.zeros(0),
                "tex": np.zeros((0, 3)),
                "calc": np.zeros(0),
                "p": np.zeros(0),
            }
        res = {k: np.concatenate(v) for k, v in acc.items()}
        # Platt scaling per member, averaged in logit space (one member: its own scaling)
        res["p"] = 1.0 / (1.0 + np.exp(-res.pop("z")))
        return res

    def detect(
        self,
        volume: Volume,
        lung_mask: np.ndarray,
        *,
        min_probability: float = SUBMISSION_FLOOR,
        max_detections: int = 100,
    ) -> list[Detection]:
        """Detect nodules in a CT.

        Args:
            volume: CT in HU.
            lung_mask: Boolean lung mask on the volume grid (nodules inside).
            min_probability: Drop detections below this (:data:`SUBMISSION_FLOOR`).
            max_detections: Keep at most this many (LUNA16 counts at most 100 per scan).

        Returns:
            Detections, most probable first.
        """
        region, mask = lung_region_isotropic(volume, lung_mask)
        idx, _, cand_scores = find_candidates(region, mask, ranker=self.ranker, max_candidates=self.max_candidates)
        if len(idx) == 0:
            return []
        padded = PaddedRegion(region.array, PATCH_SIZE)
        pred = self._predict(padded.patches(idx, PATCH_SIZE))
        spacing = np.asarray(region.spacing_mm)
        refined_idx = idx + pred["off"] / spacing
        centres = region.index_to_world(refined_idx)
        diam = np.exp(pred["logd"])
        order = np.argsort(-pred["p"], kind="stable")
        order = order[pred["p"][order] >= min_probability]
        kept = suppress(centres, diam, order, max_detections, radius="larger")
        dets = []
        for n in kept:
            tex = TEXTURES[int(np.argmax(pred["tex"][n]))]
            dets.append(
                Detection(
                    center_lps_mm=(float(centres[n][0]), float(centres[n][1]), float(centres[n][2])),
                    probability=float(pred["p"][n]),
                    diameter_mm=float(diam[n]),
                    volume_mm3=_measure_volume(region, refined_idx[n], float(diam[n]), tex),
                    texture=tex,
                    texture_probabilities=tuple(float(t) for t in pred["tex"][n]),  # type: ignore[arg-type]
                    calcification_probability=float(pred["calc"][n]),
                    candidate_score=float(cand_scores[n]),
                    logit=float(pred["logit"][n]),
                )
            )
        return dets


def _calibration(card: dict[str, Any]) -> tuple[float, float]:
    """A model card's Platt scaling ``(scale, bias)``; identity when it has none."""
    cal = card.get("calibration") or {}
    return float(cal.get("scale", 1.0)), float(cal.get("bias", 0.0))


def _ensemble_card(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """The card an ensemble reports as (names and hashes joined with ``+``, members kept)."""
    return {
        "name": "+".join(str(c.get("name", "")) for c in cards),
        "medmm_version": str(cards[0].get("medmm_version", "")),
        "sha256": "+".join(str(c.get("sha256", "")) for c in cards),
        "candidate_ranker": cards[0].get("candidate_ranker"),
        "members": cards,
    }


def _measure_volume(region: Volume, center_idx: np.ndarray, diameter_mm: float, texture: NoduleTexture) -> float:
    """Volume (mm^3) of the nodule's thresholded component (:func:`~medmm.detect.measure.nodule_mask`)."""
    _, mask = nodule_mask(region, center_idx, diameter_mm, texture)
    return float(mask.sum() * np.prod(region.spacing_mm))


@functools.cache
def detector_for(weights: tuple[str, ...] | None = None) -> NoduleDetector:
    """The detector with these weights, loaded once per process (worker processes reuse it).

    Args:
        weights: ``.safetensors`` paths (several: an ensemble) as a tuple, which keys the
            cache; None for the shipped weights.

    Example:
        >>> detector_for(None) is default_detector()
        True
    """
    return NoduleDetector(list(weights) if weights else None)


def default_detector() -> NoduleDetector:
    """The detector with the shipped weights, loaded once per process."""
    return detector_for(None)
