"""Knee point of a Pareto front."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robnas.analysis._pareto import Direction, _normalise, _ranks_of_loss, _to_minimization


def knee_point(values: object, maximize: Sequence[Direction]) -> int:
    """Index into ``values`` (n, m) of the front point closest to the ideal point.

    Only Pareto-optimal points are candidates. Each objective is min-max normalised to [0, 1]
    over the front (0 = best; constant objectives are 0 everywhere), and the point with the
    smallest Euclidean distance to the ideal point (all zeros) is returned; ties go to the lower
    index. This compromise point is defined for any number of objectives and any front shape.
    """
    loss = _to_minimization(values, maximize)
    if len(loss) == 0:
        raise ValueError("knee_point needs at least one point, got 0")
    front = np.flatnonzero(_ranks_of_loss(loss) == 0)
    distance = np.linalg.norm(_normalise(loss[front]), axis=1)
    return int(front[np.argmin(distance)])
