"""The ``resnet`` space part: Ray Tune domains over the residual family, per-stage keys.

The part sets ``family: resnet`` (a one-choice domain) and draws ``stages`` stages, each with a depth in
``depths`` (an inclusive ``(low, high)`` range) and a width among ``widths``, plus the block,
activation, kernel, squeeze-excitation ratio and stem. Defaults are sized by the data set:
8x8 digits get small networks (widths 8 to 64, 1 or 2 blocks per stage, up to 3 stages; the
largest about 1.8M parameters; ``--max-params 200000`` keeps about 85% of the draws); 32x32 images get
ResNet-18-like ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from robnas.spaces._checks import check_values
from robnas.spaces._resnet import MAX_STAGES, ResNetArch

__all__ = ["resnet_space"]

_SMALL = {"stages": (1, 2, 3), "depths": (1, 2), "widths": (8, 16, 32, 64), "stem_widths": (8, 16)}
_CIFAR = {"stages": (3, 4), "depths": (1, 3), "widths": (32, 64, 128, 256, 512), "stem_widths": (32, 64)}


def resnet_space(
    *,
    dataset: str = "digits",
    stages: Sequence[int] | None = None,
    depths: tuple[int, int] | None = None,
    widths: Sequence[int] | None = None,
    stem_widths: Sequence[int] | None = None,
    blocks: Sequence[str] = ("basic", "preact", "bottleneck"),
    kernel_sizes: Sequence[int] = (3, 5),
    activations: Sequence[str] = ("relu", "silu", "gelu"),
    se_ratios: Sequence[float] = (0.0, 0.25),
    stems: Sequence[str] = ("conv",),
    stem_kernel: int = 3,
) -> dict[str, Any]:
    """Ray Tune domains of the ``resnet`` family (``None``: the data set's default range).

    ``depths``: the fewest and most blocks of a stage (inclusive). Every choice is checked as a
    ``ResNetArch`` field; bottleneck blocks need widths divisible by 4.
    """
    from ray import tune

    ranges = _SMALL if dataset == "digits" else _CIFAR
    stages = check_values("stages", list(stages or ranges["stages"]))
    low, high = depths or ranges["depths"]
    widths = check_values("widths", list(widths or ranges["widths"]))
    stem_widths = check_values("stem_widths", list(stem_widths or ranges["stem_widths"]))
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
        raise ValueError(f"depths must be (low, high) with 1 <= low <= high, got {(low, high)!r}")
    if not all(isinstance(n, int) and 1 <= n <= MAX_STAGES for n in stages):
        raise ValueError(f"stages must be integers in [1, {MAX_STAGES}], got {stages!r}")
    lists = {"blocks": blocks, "kernel_sizes": kernel_sizes, "activations": activations,
             "se_ratios": se_ratios, "stems": stems}
    choices = {name: check_values(name, list(values)) for name, values in lists.items()}
    # Every choice must make a valid network on its own (raises ConfigError naming the field).
    for block in choices["blocks"]:
        for width in widths:
            ResNetArch(block=block, stage_widths=(width,), stage_depths=(low,))
    checked = {"stem": choices["stems"], "kernel_size": choices["kernel_sizes"],
               "activation": choices["activations"], "se_ratio": choices["se_ratios"], "stem_width": stem_widths}
    for field, values in checked.items():
        for value in values:
            ResNetArch(**{field: value, **({"stem_kernel": stem_kernel} if field == "stem" else {})})
    space: dict[str, Any] = {
        # One-choice domains, not constants: every drawn candidate then names its family and
        # stem (a searcher's pool holds the searched keys only).
        "family": tune.choice(["resnet"]),
        "stem": tune.choice(choices["stems"]),
        "stem_width": tune.choice(stem_widths),
        "stem_kernel": tune.choice([stem_kernel]),
        "block": tune.choice(choices["blocks"]),
        "stages": tune.choice(stages),
    }
    for i in range(1, max(stages) + 1):
        space[f"depth_{i}"] = tune.randint(low, high + 1)
        space[f"width_{i}"] = tune.choice(widths)
    space.update({
        "kernel_size": tune.choice(choices["kernel_sizes"]),
        "activation": tune.choice(choices["activations"]),
        "se_ratio": tune.choice(choices["se_ratios"]),
    })
    return space
