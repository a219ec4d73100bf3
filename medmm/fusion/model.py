"""The alignment model: report tokens, volume tokens, gated cross-attention, pooled embeddings.

Text side: all-MiniLM-L6-v2 token vectors (frozen, :mod:`medmm.text.encoder`) through a
trained projection. Volume side: encoder features, block statistics and the detector's channels
(:mod:`medmm.fusion.tokens`) + lobe shares + Fourier features of the token position
relative to the lungs' centre. Outputs:

* fused text tokens and per-head attention maps (:class:`GatedCrossAttention`);
* a pooled volume embedding (attention pooling) and a report embedding (from the
  sentence vector alone, so retrieval never sees the image through the text side),
  both L2-normalized, for InfoNCE (Oord et al., 2018) and retrieval;
* per-lobe "has a nodule" logits from the volume tokens (region finding classification);
* per-phrase "supported by the image" logits from the fused phrase vector.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from medmm.fusion.attention import GatedCrossAttention
from medmm.fusion.tokens import N_DETECTION_CHANNELS, N_TOKEN_STATS
from medmm.fusion.volume_encoder import TOKEN_FEATURES
from medmm.text.encoder import EMBEDDING_DIM

__all__ = ["AlignmentModel", "position_features"]

N_FREQ = 4
POSITION_SCALE_MM = 100.0


def position_features(positions_lps_mm: torch.Tensor, centre_lps_mm: torch.Tensor) -> torch.Tensor:
    """Fourier features of positions relative to the lungs' centre.

    Shapes:
        positions_lps_mm: (..., 3); centre_lps_mm: broadcastable to it -> (..., 3 + 6 * N_FREQ)
    """
    rel = (positions_lps_mm - centre_lps_mm) / POSITION_SCALE_MM
    freqs = 2.0 ** torch.arange(N_FREQ, dtype=rel.dtype, device=rel.device) * math.pi / 2
    ang = rel[..., None] * freqs
    return torch.cat([rel, ang.sin().flatten(-2), ang.cos().flatten(-2)], -1)


class AlignmentModel(nn.Module):
    """Cross-modal alignment of a report and a CT.

    Args:
        dim: Width of the shared token space.
        embed_dim: Width of the pooled (retrieval) embeddings.
        heads: Attention heads.

    Shapes:
        text_tokens: (B, T, 384); text_mask: (B, T) bool; sentence: (B, 384);
        vol_features: (B, N, 48 + 4 + 2) (``VolumeTokens.model_features``); vol_lobes: (B, N, 5);
        vol_positions: (B, N, 3) LPS mm;
        vol_mask: (B, N) bool; centre: (B, 3) LPS mm.
    """

    def __init__(self, dim: int = 128, embed_dim: int = 128, heads: int = 4) -> None:
        super().__init__()
        n_pos = 3 + 6 * N_FREQ
        self.text_proj = nn.Sequential(nn.Linear(EMBEDDING_DIM, dim), nn.GELU(), nn.Linear(dim, dim))
        n_in = TOKEN_FEATURES + N_TOKEN_STATS + N_DETECTION_CHANNELS + 5 + n_pos
        self.volume_proj = nn.Sequential(nn.Linear(n_in, dim), nn.GELU(), nn.Linear(dim, dim))
        self.cross = GatedCrossAttention(dim, heads)
        self.pool_query = nn.Parameter(torch.randn(dim) / math.sqrt(dim))
        self.volume_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, embed_dim))
        self.report_head = nn.Sequential(nn.Linear(EMBEDDING_DIM, dim), nn.GELU(), nn.Linear(dim, embed_dim))
        self.region_head = nn.Linear(dim, 1)
        self.support_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 1))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def volume(
        self,
        vol_features: torch.Tensor,
        vol_lobes: torch.Tensor,
        vol_positions: torch.Tensor,
        centre: torch.Tensor,
    ) -> torch.Tensor:
        """Volume tokens in the shared space. Shapes: -> (B, N, dim)."""
        pos = position_features(vol_positions, centre[:, None, :])
        return self.volume_proj(torch.cat([vol_features, vol_lobes, pos], -1))

    def volume_embedding(self, vol: torch.Tensor, vol_mask: torch.Tensor) -> torch.Tensor:
        """Attention-pooled, L2-normalized volume embedding. Shapes: (B, N, D) -> (B, E)."""
        w = (vol @ self.pool_query / math.sqrt(vol.shape[-1])).masked_fill(~vol_mask, float("-inf"))
        pooled = (w.softmax(-1)[..., None] * vol).sum(1)
        return nn.functional.normalize(self.volume_head(pooled), dim=-1)

    def report_embedding(self, sentence: torch.Tensor) -> torch.Tensor:
        """L2-normalized report embedding. Shapes: (B, 384) -> (B, E)."""
        return nn.functional.normalize(self.report_head(sentence), dim=-1)

    def region_logits(self, vol: torch.Tensor, vol_lobes: torch.Tensor, vol_mask: torch.Tensor) -> torch.Tensor:
        """Per-lobe "contains a nodule" logits (max over the lobe's tokens).

        Shapes: vol (B, N, D), vol_lobes (B, N, 5) -> (B, 5)
        """
        tok = self.region_head(vol)[..., 0]  # (B, N)
        inside = (vol_lobes > 0.5) & vol_mask[..., None]
        scores = tok[..., None].expand_as(vol_lobes).masked_fill(~inside, -1e4)
        return scores.amax(1)

    def forward(
        self,
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
        vol_features: torch.Tensor,
        vol_lobes: torch.Tensor,
        vol_positions: torch.Tensor,
        vol_mask: torch.Tensor,
        centre: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fused text tokens, attention and volume tokens.

        Returns:
            ``(fused (B, T, D), attention (B, H, T, N), volume tokens (B, N, D))``.
        """
        vol = self.volume(vol_features, vol_lobes, vol_positions, centre)
        fused, attn = self.cross(self.text_proj(text_tokens), text_mask, vol, vol_mask)
        return fused, attn, vol
