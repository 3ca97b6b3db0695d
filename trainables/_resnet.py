"""Residual networks of the ``resnet`` family, built from a ``ResNetArch``.

``(N, in_channels, H, W)`` images -> ``(N, num_classes)`` logits. Convolutions have no bias and
are followed by batch norm (or, in pre-activation blocks, preceded by it); a 1x1 convolution
shortcut (with its own BN for ``basic`` and ``bottleneck``, without for ``preact``) only where a
block changes the shape. Pre-activation networks (``preact``, e.g. WRN) have a bare convolution
as stem and end with BN and the activation before pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from robnas.spaces._resnet import BOTTLENECK_EXPANSION, ResNetArch, se_hidden

__all__ = ["ResNet", "build_resnet"]

_ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "silu": lambda: nn.SiLU(inplace=True), "gelu": nn.GELU}


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)


class SqueezeExcite(nn.Module):
    """Channel gates ``(N, C, H, W) -> (N, C, H, W)``: pool, 1x1 conv to ``hidden``, activation,
    1x1 conv back, sigmoid."""

    def __init__(self, channels: int, hidden: int, activation: str) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), _ACTIVATIONS[activation](),
            nn.Conv2d(hidden, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


def _se(channels: int, arch: ResNetArch) -> nn.Module:
    hidden = se_hidden(channels, arch.se_ratio)
    return SqueezeExcite(channels, hidden, arch.activation) if hidden else nn.Identity()


class BasicBlock(nn.Module):
    """conv-BN-act, conv-BN, SE, + shortcut, act."""

    def __init__(self, c_in: int, c_out: int, stride: int, arch: ResNetArch) -> None:
        super().__init__()
        k = arch.kernel_size
        self.body = nn.Sequential(
            _conv(c_in, c_out, k, stride), nn.BatchNorm2d(c_out), _ACTIVATIONS[arch.activation](),
            _conv(c_out, c_out, k), nn.BatchNorm2d(c_out), _se(c_out, arch),
        )
        changes = stride != 1 or c_in != c_out
        self.shortcut = nn.Sequential(_conv(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out)) if changes else nn.Identity()
        self.act = _ACTIVATIONS[arch.activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class BottleneckBlock(nn.Module):
    """1x1 conv-BN-act to width / 4, kxk conv-BN-act (stride here), 1x1 conv-BN, SE, + shortcut, act."""

    def __init__(self, c_in: int, c_out: int, stride: int, arch: ResNetArch) -> None:
        super().__init__()
        mid, act = c_out // BOTTLENECK_EXPANSION, _ACTIVATIONS[arch.activation]
        self.body = nn.Sequential(
            _conv(c_in, mid, 1), nn.BatchNorm2d(mid), act(),
            _conv(mid, mid, arch.kernel_size, stride), nn.BatchNorm2d(mid), act(),
            _conv(mid, c_out, 1), nn.BatchNorm2d(c_out), _se(c_out, arch),
        )
        changes = stride != 1 or c_in != c_out
        self.shortcut = nn.Sequential(_conv(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out)) if changes else nn.Identity()
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class PreActBlock(nn.Module):
    """BN-act, conv, BN-act, conv, SE, + shortcut (a 1x1 conv of the pre-activated input where
    the shape changes, else the input itself)."""

    def __init__(self, c_in: int, c_out: int, stride: int, arch: ResNetArch) -> None:
        super().__init__()
        k, act = arch.kernel_size, _ACTIVATIONS[arch.activation]
        self.pre = nn.Sequential(nn.BatchNorm2d(c_in), act())
        self.body = nn.Sequential(
            _conv(c_in, c_out, k, stride), nn.BatchNorm2d(c_out), act(), _conv(c_out, c_out, k), _se(c_out, arch),
        )
        self.shortcut = _conv(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pre(x)
        return self.body(out) + (x if self.shortcut is None else self.shortcut(out))


_BLOCKS = {"basic": BasicBlock, "preact": PreActBlock, "bottleneck": BottleneckBlock}


class ResNet(nn.Module):
    """Stem -> stages -> (BN, act for pre-activation) -> global average pool -> linear; records
    ``in_channels`` and ``num_classes`` as NB201Network does."""

    def __init__(self, arch: ResNetArch, *, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.arch = arch
        self.in_channels = in_channels
        self.num_classes = num_classes
        preact = arch.block == "preact"
        if arch.stem == "conv":
            stem_conv = _conv(in_channels, arch.stem_width, arch.stem_kernel)
        else:
            stem_conv = nn.Conv2d(in_channels, arch.stem_width, arch.stem_kernel, stride=arch.stem_kernel, bias=False)
        post = [] if preact else [nn.BatchNorm2d(arch.stem_width), _ACTIVATIONS[arch.activation]()]
        self.stem = nn.Sequential(stem_conv, *post)
        blocks: list[nn.Module] = []
        channels = arch.stem_width
        for stage, (depth, width) in enumerate(zip(arch.stage_depths, arch.stage_widths)):
            for index in range(depth):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(_BLOCKS[arch.block](channels, width, stride, arch))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head_norm = (nn.Sequential(nn.BatchNorm2d(channels), _ACTIVATIONS[arch.activation]())
                          if preact else nn.Identity())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head_norm(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(out), 1))


def build_resnet(arch: ResNetArch, *, in_channels: int = 3, num_classes: int = 10) -> ResNet:
    """The network of ``arch`` (PyTorch's default initialisation from the global torch RNG)."""
    if not isinstance(arch, ResNetArch):
        raise ValueError(f"build_resnet needs a ResNetArch, got {arch!r}")
    return ResNet(arch, in_channels=in_channels, num_classes=num_classes)
