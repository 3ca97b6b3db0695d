"""Exact hypervolume of a point set: a sweep in 2-D, slices of 2-D sweeps in 3-D, HSO above.

Everything below ``hypervolume`` works on losses (smaller is better) of points that strictly
dominate the reference point, an ``(n, m)`` array with ``n >= 1``:

* m = 2: sort by the first objective; the front is the points below the lowest second
  objective seen so far; each front point's strip runs to the next one's first objective.
* m >= 3: the front first (distinct non-dominated points), so that the result is the same,
  to the last bit, whatever dominated points or duplicates come with it and in which order.
* m = 3: slice along the third objective at every point's value; the slice above the k-th
  point is the 2-D sweep of the points up to it. All slices at once: a matrix of heights
  indexed by (rank along the third objective, rank along the first) whose running maxima along
  both axes give every slice's strip heights.
* m >= 4: HSO (hypervolume by slicing objectives; While, Hingston, Barone, Huband 2006): slice
  along the last objective, the (m-1)-D hypervolume of each slice's front times its thickness.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robnas.analysis._pareto import Direction, _front_of_unique_sorted, _to_minimization

#: Points up to which a front is found by comparing all pairs at once (n^2 m booleans).
_PAIRWISE_UP_TO = 512


def hypervolume(
    values: object, maximize: Sequence[Direction], reference_point: Sequence[float]
) -> float:
    """Exact hypervolume dominated by ``values`` (n, m) and bounded by ``reference_point`` (m,).

    The reference point is in the objectives' own units and directions (e.g. ``(0.0, 0.0)`` for
    two accuracies that are maximised). Points that do not strictly dominate it in every objective
    contribute nothing; duplicates count once; an empty set gives 0.0. Units: product of the
    objectives' units. Exact for any m (2-D sweep, 3-D slices of 2-D sweeps, HSO above).
    Values and reference point must be finite (``ValueError``).
    """
    loss = _to_minimization(values, maximize)
    reference = np.asarray(reference_point, dtype=float)
    if reference.shape != (loss.shape[1],):
        raise ValueError(
            f"reference_point must have shape ({loss.shape[1]},), got shape {reference.shape}"
        )
    ref_loss = _to_minimization(reference[np.newaxis], maximize)[0]
    inside = loss[np.all(loss < ref_loss, axis=1)]
    return float(_volume(inside, ref_loss)) if len(inside) else 0.0


def _volume(loss: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of ``loss`` (n >= 1, m), every row strictly below ``ref`` (m,)."""
    m = loss.shape[1]
    if m == 1:
        return float(ref[0] - loss[:, 0].min())
    if m == 2:
        return _sweep_2d(loss, ref)
    front = _front(loss)  # the volume is a function of the front alone, to the last bit
    return _slices_3d(front, ref) if m == 3 else _slices(front, ref)


def _sweep_2d(loss: np.ndarray, ref: np.ndarray) -> float:
    x, y = loss[np.lexsort((loss[:, 1], loss[:, 0]))].T
    # On the front: below every point before it (dominated points and duplicates are not).
    front = np.append(True, y[1:] < np.minimum.accumulate(y)[:-1])
    x, y = x[front], y[front]
    return float(np.diff(np.append(x, ref[0])) @ (ref[1] - y))


def _slices_3d(loss: np.ndarray, ref: np.ndarray) -> float:
    n = len(loss)
    by_z = np.argsort(loss[:, 2], kind="stable")
    by_x = np.argsort(loss[:, 0], kind="stable")
    x_rank = np.empty(n, dtype=int)
    x_rank[by_x] = np.arange(n)
    # heights[k, i]: ref_y - y of the point that is k-th along z if it is i-th along x, else 0.
    # After the running maxima, ref_y minus the lowest y among the points of slice k (z-rank <= k)
    # with x-rank <= i: the height of slice k's 2-D sweep over the i-th strip.
    heights = np.zeros((n, n))
    heights[np.arange(n), x_rank[by_z]] = ref[1] - loss[by_z, 1]
    heights = np.maximum.accumulate(np.maximum.accumulate(heights, axis=0), axis=1)
    widths = np.diff(np.append(loss[by_x, 0], ref[0]))
    thickness = np.diff(np.append(loss[by_z, 2], ref[2]))
    return float(thickness @ (heights @ widths))


def _slices(loss: np.ndarray, ref: np.ndarray) -> float:
    """HSO: slices along the last objective, each the (m-1)-D volume of the points below it."""
    loss = loss[np.argsort(loss[:, -1], kind="stable")]
    tops = np.append(loss[1:, -1], ref[-1])
    thick = np.flatnonzero(tops > loss[:, -1])  # slices of zero thickness (ties) are skipped
    return float(sum((tops[k] - loss[k, -1]) * _volume(loss[: k + 1, :-1], ref[:-1]) for k in thick))


def _front(loss: np.ndarray) -> np.ndarray:
    """The distinct non-dominated rows of ``loss``."""
    unique = np.unique(loss, axis=0)
    if len(unique) > _PAIRWISE_UP_TO:  # a sweep in memory O(n)
        return unique[_front_of_unique_sorted(unique)]
    # Rows are distinct: weakly dominated by another row is dominated. O(n^2 m), in one step.
    dominated_by = unique[:, np.newaxis, 0] <= unique[np.newaxis, :, 0]
    for j in range(1, unique.shape[1]):
        dominated_by &= unique[:, np.newaxis, j] <= unique[np.newaxis, :, j]
    np.fill_diagonal(dominated_by, False)
    return unique[~dominated_by.any(axis=0)]
