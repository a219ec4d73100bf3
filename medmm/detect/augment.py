"""Training augmentation of stored patches, done on whole batches with ``grid_sample``.

Each stored ``40^3`` patch (candidate at index 20) is resampled to the network's ``32^3``
input through one random similarity transform per sample: a random axis flip pattern, a
random multiple of 90 degrees in the axial (j, i) plane, a small rotation about a random
axis, an isotropic scale, and a shift. HU are then jittered (offset and gain) and
Gaussian noise is added. Targets move with the image: the centre offset is mapped into
the output frame and the diameter scales.

Conventions: coordinates are voxel offsets from the patch centre, in (k, j, i) order;
an output voxel at offset ``u`` samples the input at ``x = A u + t``. The nodule at input
offset ``o`` therefore appears at output offset ``A^-1 (o - t)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

__all__ = ["AugmentConfig", "augment_batch", "center_crop"]


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation ranges.

    Attributes:
        max_rotation_deg: Largest extra rotation about a random axis.
        scale_range: Isotropic scale factors (output size / input size).
        max_shift_mm: Largest shift per axis (kept below 40 % of the radius for positives).
        hu_offset: Largest HU offset.
        hu_gain: Largest relative HU gain change.
        max_noise_hu: Largest Gaussian noise standard deviation.
    """

    max_rotation_deg: float = 25.0
    scale_range: tuple[float, float] = (0.85, 1.18)
    max_shift_mm: float = 3.0
    hu_offset: float = 25.0
    hu_gain: float = 0.05
    max_noise_hu: float = 25.0


def center_crop(patches: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``size^3`` with the stored centre index ``S // 2`` at output index ``size // 2``.

    Shapes:
        - patches: ``(B, S, S, S)``
        - Output: ``(B, size, size, size)``
    """
    s = patches.shape[-1]
    lo = s // 2 - size // 2
    return patches[:, lo : lo + size, lo : lo + size, lo : lo + size]


def _random_rotations(n: int, max_deg: float, gen: torch.Generator) -> torch.Tensor:
    """Rotation matrices about random axes by angles uniform in ``[-max_deg, max_deg]``.

    Shapes:
        - Output: ``(n, 3, 3)``
    """
    axis = torch.randn(n, 3, generator=gen)
    axis = axis / axis.norm(dim=1, keepdim=True).clamp_min(1e-8)
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(max_deg)
    k = torch.zeros(n, 3, 3)
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k[:, 1, 0], k[:, 2, 0], k[:, 2, 1] = axis[:, 2], -axis[:, 1], axis[:, 0]
    s, c = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    return torch.eye(3).expand(n, 3, 3) + s * k + (1 - c) * (k @ k)


def augment_batch(
    patches: torch.Tensor,
    offset_mm: torch.Tensor,
    diameter_mm: torch.Tensor,
    label: torch.Tensor,
    *,
    out_size: int,
    config: AugmentConfig,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augment a batch of stored patches (1 mm voxels) into network inputs in HU.

    Args:
        patches: Stored patches in HU.
        offset_mm: Nodule centre minus patch centre (k, j, i), zero for negatives.
        diameter_mm: Nodule diameters (0 for negatives).
        label: 1 for nodules.
        out_size: Output edge (32).
        config: Ranges.
        gen: Random generator.

    Returns:
        ``(inputs_hu, offset_mm, diameter_mm)`` in the output frame.

    Shapes:
        - patches: ``(B, S, S, S)``; offset_mm ``(B, 3)``; diameter_mm, label ``(B,)``
        - inputs_hu: ``(B, 1, out_size, out_size, out_size)``
    """
    b, s = patches.shape[0], patches.shape[-1]
    # Linear part A (output offset -> input offset): flips, axial quarter turns, rotation, 1/scale.
    flips = torch.where(torch.rand(b, 3, generator=gen) < 0.5, -1.0, 1.0)
    quarter = torch.randint(0, 4, (b,), generator=gen)
    q = torch.zeros(b, 3, 3)
    q[:, 0, 0] = 1.0
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0])[quarter]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0])[quarter]
    q[:, 1, 1], q[:, 1, 2], q[:, 2, 1], q[:, 2, 2] = cos, -sin, sin, cos
    rot = _random_rotations(b, config.max_rotation_deg, gen)
    lo, hi = config.scale_range
    scale = lo + (hi - lo) * torch.rand(b, generator=gen)
    a = torch.diag_embed(flips) @ q @ rot / scale[:, None, None]
    # Shift: a fraction of the radius for nodules (stay within it), full range for negatives.
    max_shift = torch.where(label > 0, (0.4 * diameter_mm / 2).clamp(max=config.max_shift_mm), config.max_shift_mm)
    t = (torch.rand(b, 3, generator=gen) * 2 - 1) * max_shift[:, None]

    # Output voxel offsets u (k, j, i) from the centre index out_size // 2.
    r = torch.arange(out_size, dtype=torch.float32) - out_size // 2
    uk, uj, ui = torch.meshgrid(r, r, r, indexing="ij")
    u = torch.stack([uk, uj, ui], dim=-1).reshape(-1, 3)  # (P, 3)
    x = torch.einsum("bij,pj->bpi", a, u) + t[:, None, :] + s // 2  # input voxel index (k, j, i)
    # grid_sample (align_corners=True): -1 -> index 0, +1 -> index S-1; last dim is (x=i, y=j, z=k).
    norm = x / (s - 1) * 2 - 1
    grid = norm.flip(-1).reshape(b, out_size, out_size, out_size, 3)
    out = F.grid_sample(
        patches[:, None].float(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )  # (B, 1, D, H, W)
    gain = 1 + (torch.rand(b, generator=gen) * 2 - 1) * config.hu_gain
    shift = (torch.rand(b, generator=gen) * 2 - 1) * config.hu_offset
    noise_sd = torch.rand(b, generator=gen) * config.max_noise_hu
    out = (out + 1000.0) * gain[:, None, None, None, None] - 1000.0 + shift[:, None, None, None, None]
    out = out + torch.randn(out.shape, generator=gen) * noise_sd[:, None, None, None, None]
    new_offset = torch.linalg.solve(a, (offset_mm - t)[..., None])[..., 0]
    return out, new_offset, diameter_mm * scale
