"""The number format and memory layout a trial's network computes in.

The trial keys ``precision`` and ``memory_format`` (``robnas.spaces.TrainingConfig``) are
``"auto"`` by default: bf16 autocast and channels-last on CUDA, where tensor cores and NHWC
convolution kernels make them pay, fp32 and contiguous (NCHW) everywhere else.
``PrecisionForward`` wraps the network so that every forward pass (training loss, attacks,
evaluation) runs that way and returns fp32 logits: losses, input gradients, attack steps and
projections are computed in fp32 outside autocast, and the weights and their gradients stay
fp32 (bf16 needs no loss scaling).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from robnas.spaces._checks import check_choice
from robnas.spaces._training import MEMORY_FORMATS, PRECISIONS

__all__ = ["PrecisionForward", "resolve_memory_format", "resolve_precision"]


def resolve_precision(precision: str, device: torch.device, *, cuda: Any = torch.cuda) -> str:
    """``"fp32"`` or ``"bf16"``: ``precision`` as given, or for ``"auto"`` bf16 on a CUDA GPU
    that computes bf16 natively (Ampere or later), fp32 elsewhere."""
    precision = check_choice("trial", "precision", precision, PRECISIONS)
    if precision != "auto":
        return precision
    native = torch.device(device).type == "cuda" and cuda.is_bf16_supported(including_emulation=False)
    return "bf16" if native else "fp32"


def resolve_memory_format(memory_format: str, device: torch.device) -> str:
    """``"contiguous"`` or ``"channels_last"``: ``memory_format`` as given, or for ``"auto"``
    channels-last on CUDA, contiguous elsewhere."""
    memory_format = check_choice("trial", "memory_format", memory_format, MEMORY_FORMATS)
    if memory_format != "auto":
        return memory_format
    return "channels_last" if torch.device(device).type == "cuda" else "contiguous"


class PrecisionForward(nn.Module):
    """``network`` run in ``precision`` (``"fp32"`` or ``"bf16"``, resolved) with inputs and
    4-D weights in ``memory_format`` (``"contiguous"`` or ``"channels_last"``, resolved).

    Takes images (N, C, H, W) and returns fp32 logits (N, classes). ``network`` is its only
    submodule, so modes and parameters are the network's; with ``"channels_last"`` the
    network's weights are converted in place when wrapped (values unchanged).
    """

    def __init__(self, network: nn.Module, *, precision: str, memory_format: str, device_type: str) -> None:
        super().__init__()
        if precision not in ("fp32", "bf16") or memory_format not in ("contiguous", "channels_last"):
            raise ValueError(
                f"PrecisionForward needs a resolved precision (fp32, bf16) and memory format "
                f"(contiguous, channels_last), got {precision!r} and {memory_format!r}"
            )
        self.network = network
        self.precision, self.memory_format, self.device_type = precision, memory_format, device_type
        if memory_format == "channels_last":
            network.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        if self.memory_format == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        if self.precision == "fp32":
            return self.network(x)
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            logits = self.network(x)
        return logits.float()
