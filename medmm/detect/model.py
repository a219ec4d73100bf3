"""The nodule classifier-regressor: a small 3D CNN over a patch around each candidate.

Input is a ``32^3`` patch at 1 mm around a candidate, HU mapped by
:func:`medmm.detect.patches.normalize_hu`. A plain residual-free VGG-style stack of
3x3x3 convolutions (batch norm, ReLU), halving the grid three times (32 -> 16 -> 8 -> 4),
then global average pooling feeds five heads:

* ``logit``: nodule vs not (the candidate lies within a nodule's radius);
* ``offset_mm``: nodule centre minus patch centre, along the patch axes (k, j, i);
* ``log_diameter``: natural log of the diameter in mm;
* ``texture_logits``: solid / part-solid / ground glass (:data:`TEXTURES` order);
* ``calcified_logit``: calcified or not.

Width 8 (about 0.2 M parameters) classifies 300 patches in ~2 s on two CPU cores; the
benchmark ``benchmarks/bench_detect.py`` measures it. The model never reads files:
:mod:`medmm.detect.weights` loads its state.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from medmm.types import NoduleTexture

__all__ = ["PATCH_SIZE", "TEXTURES", "CentreGlobalPool", "NoduleNet", "NoduleNetOutput", "inference_copy"]

PATCH_SIZE = 32
TEXTURES: tuple[NoduleTexture, ...] = (NoduleTexture.SOLID, NoduleTexture.PART_SOLID, NoduleTexture.GROUND_GLASS)


@dataclass
class NoduleNetOutput:
    """The heads' raw outputs for a batch.

    Shapes:
        - logit: ``(B,)``
        - offset_mm: ``(B, 3)`` in patch axis order (k, j, i)
        - log_diameter: ``(B,)``
        - texture_logits: ``(B, 3)``
        - calcified_logit: ``(B,)``
        - features: ``(B, C)`` pooled features (for downstream stages)
    """

    logit: torch.Tensor
    offset_mm: torch.Tensor
    log_diameter: torch.Tensor
    texture_logits: torch.Tensor
    calcified_logit: torch.Tensor
    features: torch.Tensor


def _block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv3d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(c_out),
        nn.ReLU(inplace=True),
    ]


class CentreGlobalPool(nn.Module):
    """Global average pooling side by side with the average of the central ``2^3`` cells.

    Global pooling keeps *where* a structure lies only through border effects: a 4 mm
    nodule under the candidate and the same nodule 8 mm beside it (a negative candidate on
    the fissure next to a perifissural nodule) can pool to similar vectors. The central
    cells keep what lies under the candidate. An experiment, not shipped: trained with a
    perifissural-rich extra set it scored held-out CPM 0.834 vs v2's 0.853
    (docs/architecture.md).

    Args:
        grid: Side of the (cubic) feature map: 4 for a 32^3 patch halved three times.

    Shapes:
        - Input: ``(B, C, grid, grid, grid)``
        - Output: ``(B, 2 * C)``: ``[global mean, centre mean]``
    """

    def __init__(self, grid: int = PATCH_SIZE // 8) -> None:
        super().__init__()
        if grid < 2 or grid % 2:
            raise ValueError(f"the feature grid must be even and >= 2, not {grid}")
        self.lo, self.hi = grid // 2 - 1, grid // 2 + 1  # fixed, so torch.fx can trace it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool ``x``."""
        centre = x[:, :, self.lo : self.hi, self.lo : self.hi, self.lo : self.hi]
        return torch.cat([x.mean((2, 3, 4)), centre.mean((2, 3, 4))], 1)


class NoduleNet(nn.Module):
    """3D CNN: patch -> nodule probability, centre offset, diameter, texture, calcification.

    Args:
        width: Channels of the first stage (doubled at each of the three downsamplings).
        centre_pool: Pool the last feature map globally *and* over its central cells
            (:class:`CentreGlobalPool`) rather than globally only (detector v2).

    Shapes:
        - Input: ``(B, 1, 32, 32, 32)`` normalized HU
        - Output: :class:`NoduleNetOutput`
    """

    def __init__(self, width: int = 8, centre_pool: bool = False) -> None:
        super().__init__()
        w = width
        self.width = width
        self.centre_pool = centre_pool
        self.features = nn.Sequential(
            *_block(1, w, 1),
            *_block(w, w, 1),
            *_block(w, 2 * w, 2),
            *_block(2 * w, 2 * w, 1),
            *_block(2 * w, 4 * w, 2),
            *_block(4 * w, 4 * w, 1),
            *_block(4 * w, 8 * w, 2),
            *_block(8 * w, 8 * w, 1),
            *((CentreGlobalPool(),) if centre_pool else (nn.AdaptiveAvgPool3d(1), nn.Flatten())),
        )
        c = 8 * w
        self.trunk = nn.Sequential(nn.Linear(2 * c if centre_pool else c, 2 * c), nn.ReLU(inplace=True))
        # 1 logit + 3 offset + 1 log-diameter + 3 texture + 1 calcification
        self.head = nn.Linear(2 * c, 9)

    @property
    def feature_dim(self) -> int:
        """Length of :attr:`NoduleNetOutput.features`."""
        return 16 * self.width

    def forward(self, x: torch.Tensor) -> NoduleNetOutput:
        """Run the network.

        Shapes:
            - x: ``(B, 1, D, H, W)`` with ``D = H = W = 32``
        """
        f = self.trunk(self.features(x))
        h = self.head(f)
        return NoduleNetOutput(
            logit=h[:, 0],
            offset_mm=h[:, 1:4],
            log_diameter=h[:, 4],
            texture_logits=h[:, 5:8],
            calcified_logit=h[:, 8],
            features=f,
        )


def inference_copy(net: NoduleNet) -> NoduleNet:
    """A copy of ``net`` for float32 CPU inference: batch norms folded, channels last.

    Each ``Conv3d`` + ``BatchNorm3d`` pair of the feature extractor becomes one
    convolution (the batch norm's running statistics folded into its weights and bias),
    and the weights are stored channels-last, the layout oneDNN's 3D convolutions run
    fastest in; feed it ``x.contiguous(memory_format=torch.channels_last_3d)``. Outputs
    equal ``net``'s in eval mode to float32 rounding (about 1e-6); about 2x faster on a
    2-core CPU (``benchmarks/bench_detect_int8.py``). ``net`` is left as it was.
    """
    out = copy.deepcopy(net).eval()
    layers = list(out.features)
    for i, (a, b) in enumerate(itertools.pairwise(layers)):
        if isinstance(a, nn.Conv3d) and isinstance(b, nn.BatchNorm3d):
            layers[i], layers[i + 1] = fuse_conv_bn_eval(a, b), nn.Identity()
    out.features = nn.Sequential(*layers)
    return out.to(memory_format=torch.channels_last_3d)
