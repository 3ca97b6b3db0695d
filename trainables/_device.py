"""Where a trial trains: the device for its share of a GPU, that share's memory cap, and
deterministic CUDA kernels.

Ray hands a trial its GPU through ``CUDA_VISIBLE_DEVICES``, so in the trial's own process the
GPU is always ``cuda:0``; with ``--gpus-per-trial 0.25`` four trials share one GPU, and each caps
its CUDA caching allocator at a quarter of the GPU's memory so that no trial starves the others.
The ``cuda`` and ``cudnn`` modules are parameters (default: torch's) so that tests on a machine
without a GPU pass fakes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["apply_memory_fraction", "choose_device", "use_deterministic_kernels"]


def _check_share(gpu_share: Any) -> float:
    if isinstance(gpu_share, bool) or not isinstance(gpu_share, (int, float)) or not math.isfinite(gpu_share) \
            or gpu_share < 0:
        raise ValueError(f"gpu_share must be a finite number >= 0 (GPUs per trial), got {gpu_share!r}")
    return float(gpu_share)


def choose_device(gpu_share: float, *, visible_gpus: Sequence[Any], cuda: Any = torch.cuda) -> torch.device:
    """``cuda:0`` when the trial holds ``gpu_share`` > 0 GPUs, ``visible_gpus`` (the GPU ids Ray
    assigned it) is not empty and ``cuda.is_available()``; else ``cpu``."""
    if _check_share(gpu_share) > 0 and len(visible_gpus) > 0 and cuda.is_available():
        return torch.device("cuda", 0)
    return torch.device("cpu")


def apply_memory_fraction(gpu_share: float, device: torch.device, *, cuda: Any = torch.cuda) -> float | None:
    """Cap this process's CUDA memory on ``device`` at ``gpu_share`` of the GPU when the share is
    a fraction (0 < share < 1). Returns the fraction set; ``None`` when nothing was capped (a
    CPU device, or one or more whole GPUs). Call before the trial allocates on the GPU."""
    share = _check_share(gpu_share)
    if torch.device(device).type != "cuda" or not 0 < share < 1:
        return None
    cuda.set_per_process_memory_fraction(share, torch.device(device))
    return share


def use_deterministic_kernels(device: torch.device, *, cudnn: Any = torch.backends.cudnn) -> bool:
    """On CUDA, make cuDNN pick deterministic convolution kernels (no autotuning), so that the
    same seed gives the same numbers on the same GPU and precision; returns whether it did."""
    if torch.device(device).type != "cuda":
        return False
    cudnn.deterministic, cudnn.benchmark = True, False
    return True
