"""Cross-modal attention: report tokens query the volume's feature tokens, through a gate.

Multi-head scaled dot-product attention (Vaswani et al., 2017) with text tokens as
queries and volume tokens as keys and values. The attended image evidence enters the
text representation through a learnable per-channel gate, ``tanh(g)`` initialised at
zero (as in Flamingo's gated cross-attention, Alayrac et al., 2022), so an untrained
model leaves the text embedding unchanged and training decides how much image evidence
to let in. The attention weights are returned per head so maps can be shown per head
and averaged per phrase.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GatedCrossAttention"]


class GatedCrossAttention(nn.Module):
    """Text-to-volume multi-head attention with a tanh gate on the residual.

    Args:
        dim: Width of text and volume tokens.
        heads: Attention heads (``dim`` must divide evenly).

    Shapes:
        text: (B, T, D); text_mask: (B, T) bool (True = real token);
        volume: (B, N, D); volume_mask: (B, N) bool (True = inside the lungs).
        Returns fused text (B, T, D) and attention (B, H, T, N), rows summing to 1
        over unmasked volume tokens.
    """

    def __init__(self, dim: int = 128, heads: int = 4) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.norm_text = nn.LayerNorm(dim)
        self.norm_volume = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.gate = nn.Parameter(torch.zeros(dim))

    def forward(
        self,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        volume: torch.Tensor,
        volume_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused text tokens and per-head attention (see the class for shapes)."""
        b, t, d = text.shape
        n = volume.shape[1]
        h, hd = self.heads, self.head_dim
        q = self.q(self.norm_text(text)).view(b, t, h, hd).transpose(1, 2)
        vn = self.norm_volume(volume)
        k = self.k(vn).view(b, n, h, hd).transpose(1, 2)
        v = self.v(vn).view(b, n, h, hd).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
        scores = scores.masked_fill(~volume_mask[:, None, None, :], float("-inf"))
        attn = scores.softmax(-1)
        attended = (attn @ v).transpose(1, 2).reshape(b, t, d)
        fused = text + torch.tanh(self.gate) * self.out(attended)
        fused = fused * text_mask[..., None]
        return fused, attn

    @property
    def gate_value(self) -> float:
        """Mean ``tanh(gate)``: how much attended image evidence enters (0 = none)."""
        return float(torch.tanh(self.gate.detach()).abs().mean())
