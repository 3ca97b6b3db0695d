"""The NB201 macro skeleton: width of the first stage and cells per stage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from robnas.spaces._checks import check_int, check_values
from robnas.spaces._defaults import DATASET_DEFAULTS

__all__ = ["MacroConfig", "macro_space"]


@dataclass(frozen=True)
class MacroConfig:
    """Network skeleton: ``width`` channels in stage 1 (doubled per stage), ``cells_per_stage`` cells.

    NAS-Bench-201 uses ``width=16, cells_per_stage=5`` (the default for image data sets); the
    defaults here are the small network for 8x8 digits.
    """

    width: int = DATASET_DEFAULTS["digits"]["width"]
    cells_per_stage: int = DATASET_DEFAULTS["digits"]["cells_per_stage"]

    def __post_init__(self) -> None:
        object.__setattr__(self, "width", check_int("MacroConfig", "width", self.width, minimum=1))
        object.__setattr__(
            self, "cells_per_stage",
            check_int("MacroConfig", "cells_per_stage", self.cells_per_stage, minimum=1),
        )


def macro_space(
    *, widths: Sequence[int] = (8, 16), cells_per_stage: Sequence[int] = (1, 2)
) -> dict[str, Any]:
    """Ray Tune domains ``width`` and ``cells_per_stage`` (choices; small defaults for digits)."""
    from ray import tune

    widths = [check_int("MacroConfig", "width", w, minimum=1) for w in check_values("widths", widths)]
    cells = [
        check_int("MacroConfig", "cells_per_stage", n, minimum=1)
        for n in check_values("cells_per_stage", cells_per_stage)
    ]
    return {"width": tune.choice(widths), "cells_per_stage": tune.choice(cells)}
