"""Volume tokens: encoder features + blob statistics + lobe shares + world position, lungs only.

Each token's features are the encoder's (48) followed by :data:`N_TOKEN_STATS` plain
statistics of its 4 x 4 x 4 block of the network input: the mean normalized HU and the
maximum of each blob channel. They let the alignment model see "a bright round thing here"
even where the stage-(a) encoder is unsure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from medmm.fusion.grid import TOKEN_STRIDE, LungGrid
from medmm.fusion.volume_encoder import VolumeEncoder, encoder_input

__all__ = ["N_TOKEN_STATS", "VolumeTokens", "volume_tokens"]

N_TOKEN_STATS = 4


@dataclass(frozen=True, eq=False)
class VolumeTokens:
    """The volume as the cross-modal attention sees it.

    Attributes:
        features: Encoder features and block statistics of each lung token.
        lobes: Share of the token's voxels in each lobe (RUL, RML, RLL, LUL, LLL).
        positions_lps_mm: Token centres (world LPS mm).
        index: Flat index of each token in the grid's token array (C order).
        token_shape: Shape of the full token grid.

    Shapes:
        features: (N, C + N_TOKEN_STATS); lobes: (N, 5); positions_lps_mm: (N, 3); index: (N,)
    """

    features: torch.Tensor
    lobes: torch.Tensor
    positions_lps_mm: torch.Tensor
    index: torch.Tensor
    token_shape: tuple[int, int, int]

    def __len__(self) -> int:
        return len(self.index)


@torch.inference_mode()
def volume_tokens(grid: LungGrid, encoder: VolumeEncoder, *, min_lung_share: float = 0.05) -> VolumeTokens:
    """Run the encoder over a grid and keep the tokens inside the lungs.

    Args:
        grid: The 2 mm lung grid.
        encoder: Trained volume encoder (eval mode).
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
    return VolumeTokens(
        features=feats[torch.from_numpy(keep)].contiguous().clone(),
        lobes=torch.from_numpy(shares[keep]),
        positions_lps_mm=torch.from_numpy(pos.astype(np.float32)),
        index=torch.from_numpy(keep),
        token_shape=grid.token_shape,
    )
