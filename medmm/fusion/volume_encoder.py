"""Volume encoder: a small 3D CNN from the 2 mm lung grid to 8 mm feature tokens.

Input is four channels: the CT clipped to [-1000, 400] HU and scaled to about [-1, 1], and
three blob channels, the scale-normalized Laplacian of Gaussian ``-sigma^2 LoG`` of the CT
at sigmas matched to 6, 12 and 24 mm spheres (``sigma = r / sqrt(3)``, Lindeberg 1998; the
same filter the candidate stage uses). Without the blob channels the stage-(a) network did
not learn to find nodules in 1,000 steps on the CPU (its heatmap stayed flat). Two
stride-2 stages bring 2 mm voxels to 8 mm tokens (the grid's ``TOKEN_STRIDE``); the last
stage is dilated so each token sees about 60 mm around it. Stage (a) of alignment
training ("unimodal") fits two token heads on detection targets: a nodule-centre heatmap
and the nodule's log diameter. The heads are then dropped; the token features go on to
the cross-modal attention (:mod:`medmm.fusion.model`).

Models never do I/O: weights are loaded by :mod:`medmm.fusion.weights`.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import nn

__all__ = ["BLOB_DIAMETERS_MM", "IN_CHANNELS", "TOKEN_FEATURES", "VolumeEncoder", "encoder_input", "normalize_hu"]

TOKEN_FEATURES = 48
BLOB_DIAMETERS_MM = (6.0, 12.0, 24.0)
IN_CHANNELS = 1 + len(BLOB_DIAMETERS_MM)


def normalize_hu(hu: torch.Tensor) -> torch.Tensor:
    """CT (HU) -> network input: clip to [-1000, 400], centre -300, scale 700."""
    return (hu.clamp(-1000.0, 400.0) + 300.0) / 700.0


def encoder_input(hu: np.ndarray, spacing_mm: float = 2.0) -> torch.Tensor:
    """Network input of a CT on the encoder grid: normalized HU + three blob channels.

    Shapes:
        hu: (Z, Y, X) -> (4, Z, Y, X) float32
    """
    ct = np.clip(hu, -1000.0, 200.0).astype(np.float32)
    chans = [normalize_hu(torch.from_numpy(np.ascontiguousarray(hu, dtype=np.float32))).numpy()]
    for d in BLOB_DIAMETERS_MM:
        sigma = d / 2 / np.sqrt(3) / spacing_mm
        chans.append(-(sigma**2) * ndimage.gaussian_laplace(ct, sigma, truncate=3.0) / 100.0)
    return torch.from_numpy(np.stack(chans).astype(np.float32))


def _block(c_in: int, c_out: int, *, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.GroupNorm(min(8, c_out // 4), c_out),
        nn.ReLU(inplace=True),
    )


class VolumeEncoder(nn.Module):
    """2 mm CT grid -> 8 mm token features, with the stage (a) heads.

    Args:
        channels: Channels at 2, 4 and 8 mm.

    Shapes:
        forward: (B, 4, Z, Y, X) :func:`encoder_input` -> (B, TOKEN_FEATURES, Z/4, Y/4, X/4),
        Z, Y, X multiples of 4.
    """

    def __init__(self, channels: tuple[int, int, int] = (8, 24, TOKEN_FEATURES)) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.body = nn.Sequential(
            _block(IN_CHANNELS, c0),
            _block(c0, c1, stride=2),
            _block(c1, c1),
            _block(c1, c2, stride=2),
            _block(c2, c2, dilation=2),
            _block(c2, c2, dilation=3),
        )
        self.out_features = c2
        self.heatmap = nn.Conv3d(c2, 1, 1)
        self.log_diameter = nn.Conv3d(c2, 1, 1)
        nn.init.constant_(self.heatmap.bias, -3.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Token features. Shapes: (B, 4, Z, Y, X) -> (B, C, Z/4, Y/4, X/4)."""
        return self.body(x)

    def heads(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage (a) outputs: nodule-centre heatmap logit and log diameter (mm) per token.

        Shapes:
            features: (B, C, z, y, x) -> two (B, z, y, x) tensors.
        """
        return self.heatmap(features)[:, 0], self.log_diameter(features)[:, 0]
