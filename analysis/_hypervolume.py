"""Exact hypervolume of a point set, wrapping Optuna's implementation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from optuna._hypervolume import compute_hypervolume

from robnas.analysis._pareto import Direction, _to_minimization


def hypervolume(
    values: object, maximize: Sequence[Direction], reference_point: Sequence[float]
) -> float:
    """Exact hypervolume dominated by ``values`` (n, m) and bounded by ``reference_point`` (m,).

    The reference point is in the objectives' own units and directions (e.g. ``(0.0, 0.0)`` for
    two accuracies that are maximised). Points that do not strictly dominate it in every objective
    contribute nothing; duplicates count once; an empty set gives 0.0. Units: product of the
    objectives' units. Exact for any m (2-D sweep, 3-D sweep, WFG above; via Optuna).
    """
    loss = _to_minimization(values, maximize)
    reference = np.asarray(reference_point, dtype=float)
    if reference.shape != (loss.shape[1],):
        raise ValueError(
            f"reference_point must have shape ({loss.shape[1]},), got shape {reference.shape}"
        )
    ref_loss = _to_minimization(reference[np.newaxis], maximize)[0]
    inside = loss[np.all(loss < ref_loss, axis=1)]
    if len(inside) == 0:
        return 0.0
    return float(compute_hypervolume(inside, ref_loss))
