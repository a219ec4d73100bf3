"""Pad fusion examples into batches (text tokens and volume tokens differ per case)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from medmm.fusion.examples import FusionExample
from medmm.text.encoder import TextEncoding

__all__ = ["Batch", "collate"]


@dataclass
class Batch:
    """Padded tensors of B examples (see :class:`medmm.fusion.model.AlignmentModel` shapes)."""

    text_tokens: torch.Tensor
    text_mask: torch.Tensor
    sentence: torch.Tensor
    vol_features: torch.Tensor
    vol_lobes: torch.Tensor
    vol_positions: torch.Tensor
    vol_mask: torch.Tensor
    centre: torch.Tensor

    def model_inputs(self) -> tuple[torch.Tensor, ...]:
        """Positional arguments of ``AlignmentModel.forward``."""
        return (
            self.text_tokens,
            self.text_mask,
            self.vol_features,
            self.vol_lobes,
            self.vol_positions,
            self.vol_mask,
            self.centre,
        )


def _pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(max(len(r) for r in rows), 1)
    out = torch.zeros((len(rows), n, *rows[0].shape[1:]), dtype=torch.float32)
    mask = torch.zeros((len(rows), n), dtype=torch.bool)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
        mask[i, : len(r)] = True
    return out, mask


def collate(examples: list[FusionExample], texts: list[TextEncoding] | None = None) -> Batch:
    """Batch examples; ``texts`` replaces their report encodings (e.g. counterfactuals)."""
    encs = texts if texts is not None else [e.text for e in examples]
    tt, tm = _pad([e.tokens for e in encs])
    vf, vm = _pad([e.volume.model_features() for e in examples])
    vl, _ = _pad([e.volume.lobes for e in examples])
    vp, _ = _pad([e.volume.positions_lps_mm for e in examples])
    return Batch(
        text_tokens=tt,
        text_mask=tm,
        sentence=torch.stack([e.sentence for e in encs]),
        vol_features=vf,
        vol_lobes=vl,
        vol_positions=vp,
        vol_mask=vm,
        centre=torch.stack([e.centre_lps_mm for e in examples]),
    )
