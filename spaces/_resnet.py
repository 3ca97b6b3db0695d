"""A residual network description (RobArch / "Robust Principles" style design space).

Stem (``conv``: a ``stem_kernel`` convolution at stride 1; ``patchify``: kernel = stride =
``stem_kernel``) to ``stem_width`` channels, then 1 to 4 stages of ``stage_depths[i]`` blocks
with ``stage_widths[i]`` output channels; the first stage keeps the resolution, each later
stage halves it in its first block. Blocks are ``basic`` (two convolutions, post-activation),
``preact`` (two convolutions, pre-activation, as in WRN) or ``bottleneck`` (1x1, kxk, 1x1 with a
middle width of a quarter of the output width). ``se_ratio`` > 0 adds squeeze-excitation with
``max(1, round(width * se_ratio))`` hidden channels to every block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from robnas.spaces._checks import ConfigError, check_choice, check_float, check_int

__all__ = ["ACTIVATIONS", "BLOCKS", "KERNEL_SIZES", "MAX_STAGES", "STEMS", "ResNetArch", "se_hidden"]

STEMS: tuple[str, ...] = ("conv", "patchify")
BLOCKS: tuple[str, ...] = ("basic", "preact", "bottleneck")
ACTIVATIONS: tuple[str, ...] = ("relu", "silu", "gelu")
KERNEL_SIZES: tuple[int, ...] = (3, 5)
MAX_STAGES = 4
#: Output width / middle width of a bottleneck block.
BOTTLENECK_EXPANSION = 4

_OWNER = "ResNetArch"
#: ``ResNetArch.to_str``'s form: stem, width, stem kernel, block, depths, widths, kernel, activation, SE.
_DESCRIPTION = re.compile(r"([a-z]+)(\d+)k(\d+)-([a-z]+)-d(\d+(?:\.\d+)*)-w(\d+(?:\.\d+)*)"
                          r"-k(\d+)-([a-z]+)-se(\d+(?:\.\d*)?(?:e-?\d+)?)")


@dataclass(frozen=True)
class ResNetArch:
    """One residual network; the defaults are CIFAR ResNet-18. Lists are stored as tuples."""

    family: ClassVar[str] = "resnet"
    stem: str = "conv"
    stem_width: int = 64
    stem_kernel: int = 3
    block: str = "basic"
    stage_depths: tuple[int, ...] = (2, 2, 2, 2)
    stage_widths: tuple[int, ...] = (64, 128, 256, 512)
    kernel_size: int = 3
    activation: str = "relu"
    se_ratio: float = 0.0

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        put("stem", check_choice(_OWNER, "stem", self.stem, STEMS))
        put("stem_width", check_int(_OWNER, "stem_width", self.stem_width, minimum=1))
        put("stem_kernel", check_int(_OWNER, "stem_kernel", self.stem_kernel, minimum=1))
        if self.stem == "conv" and self.stem_kernel % 2 == 0:
            raise ConfigError(_OWNER, "stem_kernel", f"of a conv stem must be odd, got {self.stem_kernel}")
        put("block", check_choice(_OWNER, "block", self.block, BLOCKS))
        put("stage_depths", _int_list("stage_depths", self.stage_depths))
        put("stage_widths", _int_list("stage_widths", self.stage_widths))
        if len(self.stage_depths) != len(self.stage_widths):
            raise ConfigError(_OWNER, "stage_widths", f"must have one width per stage "
                              f"({len(self.stage_depths)} depths), got {len(self.stage_widths)}")
        if self.block == "bottleneck":
            odd = [w for w in self.stage_widths if w % BOTTLENECK_EXPANSION]
            if odd:
                raise ConfigError(_OWNER, "stage_widths", f"of bottleneck blocks must be divisible by "
                                  f"{BOTTLENECK_EXPANSION}, got {odd[0]}")
        kernel = check_int(_OWNER, "kernel_size", self.kernel_size)
        if kernel not in KERNEL_SIZES:
            raise ConfigError(_OWNER, "kernel_size", f"must be one of {', '.join(map(str, KERNEL_SIZES))}, got {kernel}")
        put("kernel_size", kernel)
        put("activation", check_choice(_OWNER, "activation", self.activation, ACTIVATIONS))
        put("se_ratio", check_float(_OWNER, "se_ratio", self.se_ratio, low=0.0, high=1.0, high_open=True))

    @property
    def blocks(self) -> int:
        """Residual blocks over all stages."""
        return sum(self.stage_depths)

    def to_str(self) -> str:
        """One line naming every field, e.g. ``conv64k3-basic-d2.2.2.2-w64.128.256.512-k3-relu-se0``."""
        dots = lambda values: ".".join(map(str, values))  # noqa: E731
        short = f"{self.se_ratio:g}"
        se = short if float(short) == self.se_ratio else repr(self.se_ratio)  # exact, so it parses back
        return (f"{self.stem}{self.stem_width}k{self.stem_kernel}-{self.block}-d{dots(self.stage_depths)}"
                f"-w{dots(self.stage_widths)}-k{self.kernel_size}-{self.activation}-se{se}")

    @classmethod
    def from_str(cls, text: Any) -> ResNetArch:
        """The network named by ``to_str``'s line; ValueError naming the text for any other."""
        match = _DESCRIPTION.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"not a resnet description: {text!r} "
                             f"(expected e.g. {cls(stem_width=16, stage_depths=(2, 1), stage_widths=(8, 32)).to_str()})")
        stem, width, stem_kernel, block, depths, widths, kernel, activation, se = match.groups()
        ints = lambda dotted: tuple(int(v) for v in dotted.split("."))  # noqa: E731
        try:
            return cls(stem=stem, stem_width=int(width), stem_kernel=int(stem_kernel), block=block,
                       stage_depths=ints(depths), stage_widths=ints(widths), kernel_size=int(kernel),
                       activation=activation, se_ratio=float(se))
        except ValueError as error:
            raise ValueError(f"resnet description {text!r}: {error}") from None


def se_hidden(width: int, se_ratio: float) -> int:
    """Hidden channels of a squeeze-excitation on ``width`` channels (0: no SE)."""
    return max(1, round(width * se_ratio)) if se_ratio > 0 else 0


def _int_list(field: str, values: Any) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(_OWNER, field, f"must be a list of 1 to {MAX_STAGES} positive integers, got {values!r}")
    items = tuple(check_int(_OWNER, field, value, minimum=1) for value in values)
    if not 1 <= len(items) <= MAX_STAGES:
        raise ConfigError(_OWNER, field, f"must list 1 to {MAX_STAGES} stages, got {len(items)}")
    return items
