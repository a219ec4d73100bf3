"""Volume tokens: encoder features + blob statistics + lobe shares + world position, lungs only.

Each token's features are the encoder's (48) followed by :data:`N_TOKEN_STATS` plain
statistics of its 4 x 4 x 4 block of the network input: the mean normalized HU and the
maximum of each blob channel. They let the alignment model see "a bright round thing here"
even where the stage-(a) encoder is unsure.

Each token also carries :data:`N_DETECTION_CHANNELS` channels from the nodule detector's
reported nodules (:func:`detection_channels`): how strongly a detection covers the token
and that detection's diameter. The stage-(a) encoder alone finds nodules poorly on full
512 x 512 scans; the detector (its own CNN on 1 mm patches) is far better at it, and with
its output in the tokens the attention only has to choose *which* nodule a phrase means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from medmm.anatomy.regions import LOBE_NAMES
from medmm.fusion.grid import TOKEN_STRIDE, LungGrid
from medmm.fusion.volume_encoder import VolumeEncoder, encoder_input

__all__ = [
    "LOBE_ORDER",
    "N_DETECTION_CHANNELS",
    "N_TOKEN_STATS",
    "VolumeTokens",
    "detection_channels",
    "volume_tokens",
]

#: The lobe order of token lobe shares (the anatomy's label order).
LOBE_ORDER = LOBE_NAMES
"""The columns of :attr:`VolumeTokens.lobes` (anatomy lobe labels 1-5)."""

N_TOKEN_STATS = 4
N_DETECTION_CHANNELS = 2
#: Smallest width (mm) of a detection's Gaussian footprint on the 8 mm token grid.
MIN_FOOTPRINT_MM = 5.0
#: Diameter (mm) that maps to 1.0 in the size channel.
SIZE_SCALE_MM = 20.0


@dataclass(frozen=True, eq=False)
class VolumeTokens:
    """The volume as the cross-modal attention sees it.

    Attributes:
        features: Encoder features and block statistics of each lung token.
        detection: Detector channels of each token (:func:`detection_channels`).
        lobes: Share of the token's voxels in each lobe (RUL, RML, RLL, LUL, LLL).
        positions_lps_mm: Token centres (world LPS mm).
        index: Flat index of each token in the grid's token array (C order).
        token_shape: Shape of the full token grid.

    Shapes:
        features: (N, C + N_TOKEN_STATS); detection: (N, N_DETECTION_CHANNELS); lobes: (N, 5);
        positions_lps_mm: (N, 3); index: (N,)
    """

    features: torch.Tensor
    detection: torch.Tensor
    lobes: torch.Tensor
    positions_lps_mm: torch.Tensor
    index: torch.Tensor
    token_shape: tuple[int, int, int]

    def __len__(self) -> int:
        return len(self.index)

    def model_features(self) -> torch.Tensor:
        """What the alignment model reads per token: ``features`` then ``detection``.

        Shapes: -> (N, C + N_TOKEN_STATS + N_DETECTION_CHANNELS)
        """
        return torch.cat([self.features.float(), self.detection.float()], 1)


def detection_channels(
    positions_lps_mm: np.ndarray,
    centers_lps_mm: np.ndarray,
    diameters_mm: np.ndarray,
    probabilities: np.ndarray,
) -> np.ndarray:
    """Detector evidence on each token.

    Each detection k spreads ``p_k * exp(-d^2 / (2 s_k^2))`` over the tokens, with d the
    distance from its centre and ``s_k = max(radius_k, MIN_FOOTPRINT_MM)``. Channel 0 is
    the strongest such value at the token; channel 1 is that detection's diameter
    (``/ SIZE_SCALE_MM``) times its footprint (so it fades with distance, as channel 0).

    Args:
        positions_lps_mm: Token centres.
        centers_lps_mm: Detection centres.
        diameters_mm: Detection diameters.
        probabilities: Detection probabilities.

    Shapes:
        positions_lps_mm: (N, 3); centers_lps_mm: (M, 3); diameters_mm, probabilities: (M,)
        -> (N, N_DETECTION_CHANNELS)
    """
    pos = np.asarray(positions_lps_mm, np.float64).reshape(-1, 3)
    out = np.zeros((len(pos), N_DETECTION_CHANNELS), np.float32)
    centers = np.asarray(centers_lps_mm, np.float64).reshape(-1, 3)
    if len(centers) == 0 or len(pos) == 0:
        return out
    diam = np.asarray(diameters_mm, np.float64).reshape(-1)
    prob = np.asarray(probabilities, np.float64).reshape(-1)
    width = np.maximum(diam / 2, MIN_FOOTPRINT_MM)
    d2 = ((pos[:, None, :] - centers[None]) ** 2).sum(-1)  # (N, M)
    foot = np.exp(-d2 / (2 * width[None] ** 2))
    score = foot * prob[None]
    best = score.argmax(1)
    rows = np.arange(len(pos))
    out[:, 0] = score[rows, best]
    out[:, 1] = foot[rows, best] * diam[best] / SIZE_SCALE_MM
    return out


@torch.inference_mode()
def volume_tokens(
    grid: LungGrid,
    encoder: VolumeEncoder,
    detections: Sequence[Mapping[str, Any]] = (),
    *,
    min_lung_share: float = 0.05,
) -> VolumeTokens:
    """Run the encoder over a grid and keep the tokens inside the lungs.

    Args:
        grid: The 2 mm lung grid.
        encoder: Trained volume encoder (eval mode).
        detections: The detector's reported nodules, each with ``center_lps_mm``,
            ``diameter_mm`` and ``probability`` (e.g. ``dataclasses.asdict`` of a
            :class:`~medmm.types.DetectedNodule`); empty when detection did not run.
        min_lung_share: Keep tokens with at least this share of lung voxels.
    """
    x = encoder_input(grid.hu)[None]
    feats = encoder(x)[0]  # (C, z, y, x)
    c = feats.shape[0]
    feats = feats.reshape(c, -1).T
    s = TOKEN_STRIDE
    z, y, w = grid.token_shape
    blocks = x[0].reshape(x.shape[1], z, s, y, s, w, s)
    stats = torch.cat([blocks[:1].mean(dim=(2, 4, 6)), blocks[1:].amax(dim=(2, 4, 6))]).reshape(N_TOKEN_STATS, -1).T
    feats = torch.cat([feats, stats], 1)
    shares = grid.lobe_fractions()
    keep = np.flatnonzero(shares.sum(1) >= min_lung_share)
    pos = grid.token_positions_lps_mm()[keep]
    det = detection_channels(
        pos,
        np.array([d["center_lps_mm"] for d in detections], np.float64).reshape(-1, 3),
        np.array([d["diameter_mm"] for d in detections], np.float64),
        np.array([d["probability"] for d in detections], np.float64),
    )
    return VolumeTokens(
        features=feats[torch.from_numpy(keep)].contiguous().clone(),
        detection=torch.from_numpy(det),
        lobes=torch.from_numpy(shares[keep]),
        positions_lps_mm=torch.from_numpy(pos.astype(np.float32)),
        index=torch.from_numpy(keep),
        token_shape=grid.token_shape,
    )
