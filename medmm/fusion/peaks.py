"""Attention-map peaks in world mm, refined below the 8 mm token size.

The peak token is the map's maximum; its position is refined to the attention-weighted
centroid of the tokens within one token step (a 3 x 3 x 3 neighbourhood), a soft-argmax
that moves the point toward where the neighbouring attention mass lies.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["map_peaks"]


def map_peaks(
    weights: torch.Tensor,
    positions_lps_mm: torch.Tensor,
    *,
    k: int = 3,
    neighbourhood_mm: float = 12.0,
    min_separation_mm: float = 20.0,
) -> list[tuple[np.ndarray, float]]:
    """Up to ``k`` separated peaks of an attention map over volume tokens.

    Args:
        weights: Attention over tokens (sums to 1).
        positions_lps_mm: Token centres.
        k: Peaks to return.
        neighbourhood_mm: Radius of the centroid refinement.
        min_separation_mm: Peaks closer than this to a stronger one are skipped.

    Returns:
        ``(point_lps_mm, attention_mass)`` per peak, strongest first; the mass is the
        attention within ``neighbourhood_mm`` of the peak token.

    Shapes:
        weights: (N,); positions_lps_mm: (N, 3)
    """
    w = weights.detach().double().numpy()
    pos = positions_lps_mm.detach().double().numpy()
    out: list[tuple[np.ndarray, float]] = []
    for i in np.argsort(-w):
        if len(out) >= k:
            break
        if any(np.linalg.norm(pos[i] - p) < min_separation_mm for p, _ in out):
            continue
        near = np.linalg.norm(pos - pos[i], axis=1) <= neighbourhood_mm
        mass = float(w[near].sum())
        point = (w[near, None] * pos[near]).sum(0) / max(mass, 1e-12)
        out.append((point, mass))
    return out
