"""NAS-Bench-201 candidate operations, keyed by their genotype names.

``OP_MODULES[name](C_in, C_out, stride)`` returns an ``nn.Module`` mapping ``(N, C_in, H, W)`` to
``(N, C_out, ceil(H / stride), ceil(W / stride))``. Inside an NB201 cell every operation has
``C_in == C_out`` and ``stride == 1``; the general forms follow the NB201 reference operations.
Batch normalisation is affine and tracks running statistics; convolutions have no bias.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robnas.spaces._isomorphism import OPS

__all__ = ["OP_MODULES", "ReLUConvBN", "Pooling", "Zero", "FactorizedReduce"]


class ReLUConvBN(nn.Sequential):
    """ReLU, then a bias-free convolution, then affine batch normalisation."""

    def __init__(
        self, C_in: int, C_out: int, kernel_size: int, stride: int = 1, padding: int = 0
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out),
        )


class Pooling(nn.Module):
    """3x3 average pooling (padding not counted); a 1x1 ReLUConvBN first when ``C_in != C_out``."""

    def __init__(self, C_in: int, C_out: int, stride: int) -> None:
        super().__init__()
        self.preprocess = None if C_in == C_out else ReLUConvBN(C_in, C_out, 1)
        self.op = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.op(x)


class Zero(nn.Module):
    """The ``none`` operation: zeros of the output shape, no parameters.

    Cells skip ``none`` edges instead of calling this module; it exists so that the registry
    is complete and usable on its own.
    """

    def __init__(self, C_in: int, C_out: int, stride: int) -> None:
        super().__init__()
        self.C_out = C_out
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        s = self.stride
        return x.new_zeros((n, self.C_out, (h + s - 1) // s, (w + s - 1) // s))

    def extra_repr(self) -> str:
        return f"C_out={self.C_out}, stride={self.stride}"


class FactorizedReduce(nn.Module):
    """``skip_connect`` when shapes change: 1x1 convolutions (two offset halves at stride 2)."""

    def __init__(self, C_in: int, C_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.relu = nn.ReLU(inplace=False)
        if stride == 2:
            halves = (C_out // 2, C_out - C_out // 2)
            self.convs = nn.ModuleList(nn.Conv2d(C_in, c, 1, stride=2, bias=False) for c in halves)
            self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        else:
            self.conv = nn.Conv2d(C_in, C_out, 1, stride=stride, bias=False)
        self.bn = nn.BatchNorm2d(C_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            x = self.relu(x)
            shifted = self.pad(x)[:, :, 1:, 1:]
            out = torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1)
        else:
            out = self.conv(x)
        return self.bn(out)


def _skip(C_in: int, C_out: int, stride: int) -> nn.Module:
    if stride == 1 and C_in == C_out:
        return nn.Identity()
    return FactorizedReduce(C_in, C_out, stride)


_CONSTRUCTORS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "none": Zero,
    "skip_connect": _skip,
    "nor_conv_1x1": lambda C_in, C_out, stride: ReLUConvBN(C_in, C_out, 1, stride, 0),
    "nor_conv_3x3": lambda C_in, C_out, stride: ReLUConvBN(C_in, C_out, 3, stride, 1),
    "avg_pool_3x3": Pooling,
}
if set(_CONSTRUCTORS) != set(OPS):  # pragma: no cover - guards edits of either list
    raise RuntimeError(f"operation constructors {sorted(_CONSTRUCTORS)} differ from robnas.spaces OPS {sorted(OPS)}")

#: Op name (``robnas.spaces.OPS``, in its order) -> constructor ``(C_in, C_out, stride) -> nn.Module``.
OP_MODULES: dict[str, Callable[[int, int, int], nn.Module]] = {name: _CONSTRUCTORS[name] for name in OPS}
