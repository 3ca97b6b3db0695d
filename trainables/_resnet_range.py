"""The smallest and largest ``resnet`` network a space can build, in parameters and MACs.

More stages, deeper or wider stages, a wider stem, a larger kernel and a larger SE ratio never
make a network smaller, so for each stem and block the cheapest network takes every numeric
key's smallest value and the dearest its largest; the range is taken over stems and blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from robnas.spaces._resnet import ResNetArch
from robnas.spaces._resnet_family import RESNET_DEFAULTS
from robnas.trainables._resnet_count import resnet_sizes

__all__ = ["resnet_size_range"]


def resnet_size_range(
    values: Callable[[str], Sequence[Any] | None], *, input_shape: tuple[int, int, int], num_classes: int,
) -> dict[str, tuple[float, float]]:
    """``{"params", "macs"}`` -> ``(smallest, largest)``; ``values(key)``: the values a flat key
    takes in the space (None: not given, the data set's default); ``arch`` values, when given,
    list the networks themselves."""
    if values("arch"):  # the networks listed by description (a replayed table's rows)
        sizes = [resnet_sizes(ResNetArch.from_str(text), in_channels=input_shape[0], input_size=input_shape[1:],
                              num_classes=num_classes) for text in values("arch")]
        return {name: (float(min(s[name] for s in sizes)), float(max(s[name] for s in sizes)))
                for name in ("params", "macs")}
    dataset = (values("dataset") or ["cifar10"])[0]
    default = RESNET_DEFAULTS.get(dataset, ResNetArch())

    def options(key: str) -> list[Any]:
        given = values(key)
        return list(given) if given else [getattr(default, key)]

    numeric = {key: options(key) for key in ("stem_width", "stem_kernel", "kernel_size", "se_ratio")}
    stages = _stage_options(values, default)
    lows, highs = [], []
    for stem in options("stem"):
        for block in options("block"):
            for pick, found in ((min, lows), (max, highs)):
                depths, widths = stages(pick)
                try:
                    arch = ResNetArch(stem=stem, block=block, stage_depths=depths, stage_widths=widths,
                                      **{key: pick(choices) for key, choices in numeric.items()})
                except ValueError:
                    continue  # e.g. bottleneck blocks with a width not divisible by 4
                found.append(resnet_sizes(arch, in_channels=input_shape[0], input_size=input_shape[1:],
                                          num_classes=num_classes))
    if not lows:
        raise ValueError("the resnet space holds no valid network")
    return {name: (float(min(s[name] for s in lows)), float(max(s[name] for s in highs))) for name in ("params", "macs")}


def _stage_options(values, default: ResNetArch):
    """``pick -> (depths, widths)``: the stages of the cheapest (``min``) or dearest (``max``)."""
    if values("stages"):
        def stages(pick):
            count = int(pick(values("stages")))
            depths = tuple(int(pick(values(f"depth_{i}"))) for i in range(1, count + 1))
            return depths, tuple(int(pick(values(f"width_{i}"))) for i in range(1, count + 1))
        return stages
    depth_lists = values("stage_depths") or [default.stage_depths]
    width_lists = values("stage_widths") or [default.stage_widths]
    return lambda pick: (tuple(pick(depth_lists, key=sum)), tuple(pick(width_lists, key=sum)))
