"""INT8 inference for the nodule CNN: static post-training quantization (torch FX).

Dynamic quantization only covers linear layers, and the CNN's time is in its 3D
convolutions, so this path quantizes the whole network statically (x86/fbgemm backend,
per-channel weights, int8 activations) with ``torch.ao.quantization.quantize_fx``.
Activation ranges are calibrated on the scan being analyzed: the first
``calibration_patches`` candidate patches in candidate-score order, so a scan always
gives the same result whatever else ran before it. The accuracy change and the speed-up
are measured by ``benchmarks/bench_detect_int8.py`` and reported in the model card.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from medmm.detect.model import NoduleNet, NoduleNetOutput

__all__ = ["QuantizedNoduleNet", "quantize_int8"]


class _Core(nn.Module):
    """NoduleNet without the dataclass output (FX traces tensors only)."""

    def __init__(self, model: NoduleNet) -> None:
        super().__init__()
        self.features = model.features
        self.trunk = model.trunk
        self.head = model.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw head output ``(B, 9)``."""
        return self.head(self.trunk(self.features(x)))


class QuantizedNoduleNet(nn.Module):
    """An INT8 NoduleNet with the float model's output type (``features`` left empty).

    Shapes:
        - Input: ``(B, 1, 32, 32, 32)``
    """

    def __init__(self, core: nn.Module) -> None:
        super().__init__()
        self.core = core

    def forward(self, x: torch.Tensor) -> NoduleNetOutput:
        """Run the INT8 network."""
        h = self.core(x)
        return NoduleNetOutput(h[:, 0], h[:, 1:4], h[:, 4], h[:, 5:8], h[:, 8], torch.empty(len(x), 0))


@torch.no_grad()
def quantize_int8(model: NoduleNet, calibration: torch.Tensor) -> QuantizedNoduleNet:
    """Statically quantize ``model`` to INT8, calibrating on ``calibration``.

    Args:
        model: Float network (left unchanged).
        calibration: Normalized input patches.

    Shapes:
        - calibration: ``(N, 1, 32, 32, 32)``
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    core = _Core(copy.deepcopy(model)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FX quantization's deprecation notices
        prepared = prepare_fx(core, get_default_qconfig_mapping("x86"), example_inputs=(calibration[:1],))
        prepared(calibration)
        quantized = convert_fx(prepared)
    return QuantizedNoduleNet(quantized).eval()
