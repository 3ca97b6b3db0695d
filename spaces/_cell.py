"""The NB201 cell search space: one categorical domain per edge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from robnas.spaces._checks import check_choice, check_values
from robnas.spaces._genotype import EDGE_KEYS, OPS

__all__ = ["cell_space"]


def cell_space(*, ops: Sequence[str] = OPS) -> dict[str, Any]:
    """Ray Tune domains ``edge_1_0`` ... ``edge_3_2``, each a choice among ``ops`` (default all 5)."""
    from ray import tune

    allowed = [check_choice("Genotype", "ops", op, OPS) for op in check_values("ops", ops)]
    if len(set(allowed)) != len(allowed):
        raise ValueError(f"ops must not repeat an op, got {list(ops)!r}")
    return {key: tune.choice(allowed) for key in EDGE_KEYS}
