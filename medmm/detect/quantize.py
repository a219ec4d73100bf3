"""INT8 inference for the nodule CNN: static post-training quantization (torch FX).

Dynamic quantization only covers linear layers, and the CNN's time is in its 3D
convolutions, so this path quantizes the whole network statically (x86/fbgemm backend,
per-channel weights, int8 activations) with ``torch.ao.quantization.quantize_fx``.
Activation ranges come from one of two places:

* **shipped observers** (default when the model card has ``int8_observers``): the
  observers' state after calibration on validation patches at training time
  (:func:`calibrate_observers`), saved beside the weights; the INT8 network is built
  once per detector, so a scan pays nothing for calibration;
* **per scan** otherwise: the first ``calibration_patches`` candidate patches of the scan
  being analyzed (a scan always gives the same result whatever ran before it).

The accuracy change and the speed-up are measured by ``benchmarks/bench_detect_int8.py``
and reported in the model card.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from medmm.detect.model import NoduleNet, NoduleNetOutput

__all__ = ["QuantizedNoduleNet", "calibrate_observers", "quantize_int8"]

_OBSERVER_KEY = "activation_post_process"


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


def _prepare(model: NoduleNet) -> torch.fx.GraphModule:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    core = _Core(copy.deepcopy(model)).eval()
    example = torch.zeros(1, 1, 32, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FX quantization's deprecation notices
        return prepare_fx(core, get_default_qconfig_mapping("x86"), example_inputs=(example,))


@torch.no_grad()
def calibrate_observers(model: NoduleNet, calibration: torch.Tensor) -> dict[str, torch.Tensor]:
    """Activation observers' state after running ``calibration`` through ``model``.

    The result can be saved (safetensors) and passed to :func:`quantize_int8` later.

    Shapes:
        - calibration: ``(N, 1, 32, 32, 32)`` normalized patches
    """
    prepared = _prepare(model)
    prepared(calibration)
    return {k: v.detach().clone() for k, v in prepared.state_dict().items() if _OBSERVER_KEY in k}


@torch.no_grad()
def quantize_int8(
    model: NoduleNet,
    calibration: torch.Tensor | None = None,
    *,
    observers: dict[str, torch.Tensor] | None = None,
) -> QuantizedNoduleNet:
    """Statically quantize ``model`` to INT8.

    Args:
        model: Float network (left unchanged).
        calibration: Normalized input patches to calibrate activation ranges on.
        observers: Saved observer state (:func:`calibrate_observers`) instead of calibrating.

    Raises:
        ValueError: Neither or both of ``calibration`` and ``observers``, or observers that
            do not fit this network.

    Shapes:
        - calibration: ``(N, 1, 32, 32, 32)``
    """
    from torch.ao.quantization.quantize_fx import convert_fx

    if (calibration is None) == (observers is None):
        raise ValueError("give exactly one of calibration patches or saved observers")
    prepared = _prepare(model)
    if observers is not None:
        expected = {k for k in prepared.state_dict() if _OBSERVER_KEY in k}
        if set(observers) != expected:
            raise ValueError("saved INT8 observers do not fit this network")
        prepared.load_state_dict(observers, strict=False)
    else:
        prepared(calibration)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = convert_fx(prepared)
    return QuantizedNoduleNet(quantized).eval()
