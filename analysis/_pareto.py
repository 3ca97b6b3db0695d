"""Pareto dominance, non-dominated sorting and within-front tie breaking.

Every function takes ``values`` of shape ``(n_points, n_objectives)`` and, where the direction
matters, ``maximize``: one entry per objective, either a bool (True = larger is better) or the
string ``"max"`` / ``"min"``. Directions become signs only in :func:`_to_minimization`; all other
code works on the resulting loss array (smaller is better in every column).

Point ``a`` dominates ``b`` when ``a`` is no worse in every objective and strictly better in at
least one. Identical points therefore do not dominate each other: all copies of a non-dominated
point are on the front and share its rank.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Direction = bool | np.bool_ | str

TIE_BREAKERS = ("crowding", "epsnet")


def _as_2d(values: object, n_objectives: int | None = None) -> np.ndarray:
    """``values`` as a finite float array of shape (n, m); an empty input gives (0, m)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0 and n_objectives is not None:
        return arr.reshape(0, n_objectives)
    if arr.ndim != 2:
        raise ValueError(
            f"values must have shape (n_points, n_objectives), got shape {arr.shape}"
        )
    if n_objectives is not None and arr.shape[1] != n_objectives:
        raise ValueError(
            f"values have {arr.shape[1]} objectives but maximize has {n_objectives} entries"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("values must be finite (no NaN or inf)")
    return arr


def _signs(maximize: Sequence[Direction]) -> np.ndarray:
    if isinstance(maximize, str) or len(maximize) == 0:
        raise ValueError(
            f"maximize must be a non-empty sequence of bools or 'max'/'min', got {maximize!r}"
        )
    signs = []
    for d in maximize:
        if isinstance(d, str):
            if d not in ("max", "min"):
                raise ValueError(f"direction {d!r} is not one of 'max', 'min'")
            signs.append(-1.0 if d == "max" else 1.0)
        elif isinstance(d, (bool, np.bool_)):
            signs.append(-1.0 if d else 1.0)
        else:
            raise ValueError(f"direction {d!r} is not a bool or one of 'max', 'min'")
    return np.asarray(signs)


def _to_minimization(values: object, maximize: Sequence[Direction]) -> np.ndarray:
    """Loss array (n, m): maximised columns are negated so that smaller is better everywhere."""
    signs = _signs(maximize)
    return _as_2d(values, len(signs)) * signs


def _front_of_unique_sorted(loss: np.ndarray) -> np.ndarray:
    """Non-dominated mask of unique, lexicographically sorted rows.

    A row can only be dominated by rows before it, so the first remaining row is always on the
    front; every row it weakly dominates is dropped and the sweep continues.
    """
    on_front = np.zeros(len(loss), dtype=bool)
    remaining = np.arange(len(loss))
    while remaining.size:
        top = remaining[0]
        on_front[top] = True
        remaining = remaining[np.any(loss[remaining] < loss[top], axis=1)]
    return on_front


def _ranks_of_loss(loss: np.ndarray) -> np.ndarray:
    """Front index (0 = non-dominated) of each row of a loss array."""
    if len(loss) == 0:
        return np.zeros(0, dtype=int)
    unique, inverse = np.unique(loss, axis=0, return_inverse=True)
    ranks = np.empty(len(unique), dtype=int)
    remaining = np.arange(len(unique))
    rank = 0
    while remaining.size:
        on_front = _front_of_unique_sorted(unique[remaining])
        ranks[remaining[on_front]] = rank
        remaining = remaining[~on_front]
        rank += 1
    return ranks[inverse.reshape(-1)]


def pareto_mask(values: object, maximize: Sequence[Direction]) -> np.ndarray:
    """Bool array (n,): True for points no other point dominates (all copies of duplicates)."""
    return nondominated_ranks(values, maximize) == 0


def nondominated_ranks(values: object, maximize: Sequence[Direction]) -> np.ndarray:
    """Int array (n,): front of each point (0 = Pareto front, 1 = front once 0 is removed, ...)."""
    return _ranks_of_loss(_to_minimization(values, maximize))


def crowding_distance(values: object) -> np.ndarray:
    """NSGA-II crowding distance (Deb et al. 2002) of the points of one front, float array (n,).

    Per objective the points are sorted (stable, ties by index); the two ends get ``inf`` and inner
    points add the gap between their neighbours divided by that objective's range. Objectives with
    zero range add nothing. The direction of the objectives does not matter.
    """
    arr = _as_2d(values)
    n, m = arr.shape
    distance = np.zeros(n)
    if n <= 2:
        distance[:] = np.inf
        return distance
    for j in range(m):
        order = np.argsort(arr[:, j], kind="stable")
        column = arr[order, j]
        distance[order[0]] = distance[order[-1]] = np.inf
        span = column[-1] - column[0]
        if span > 0:
            distance[order[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


def _normalise(loss: np.ndarray) -> np.ndarray:
    """Min-max scale each column to [0, 1]; constant columns become 0."""
    low = loss.min(axis=0)
    span = loss.max(axis=0) - low
    return (loss - low) / np.where(span > 0, span, 1.0)


def _epsnet_of_loss(loss: np.ndarray, seed: int | None) -> np.ndarray:
    n = len(loss)
    if n == 0:
        return np.zeros(0, dtype=int)
    if seed is None:
        # Best on the first objective; ties broken by the next objectives, then by index.
        start = int(np.lexsort(loss.T[::-1])[0])
    else:
        start = int(np.random.default_rng(seed).integers(n))
    points = _normalise(loss)
    order = [start]
    chosen = np.zeros(n, dtype=bool)
    chosen[start] = True
    min_dist = np.linalg.norm(points - points[start], axis=1)
    for _ in range(n - 1):
        candidate = np.where(chosen, -1.0, min_dist)
        nxt = int(np.argmax(candidate))  # first maximum: ties go to the lower index
        order.append(nxt)
        chosen[nxt] = True
        min_dist = np.minimum(min_dist, np.linalg.norm(points - points[nxt], axis=1))
    return np.asarray(order, dtype=int)


def epsilon_net_order(
    values: object, maximize: Sequence[Direction], *, seed: int | None = None
) -> np.ndarray:
    """Index order (n,) of the epsilon-net tie breaker of MO-ASHA (Schmucker et al. 2021).

    Greedy farthest-point selection in objective space min-max normalised over the given points
    (meant for one front; dominance is not looked at): the first point is the best on the first
    objective (``seed=None``; ties by the next objectives, then index) or a point drawn with
    ``np.random.default_rng(seed)``; each next point maximises the Euclidean distance to the
    nearest point already picked (ties to the lower index).
    """
    return _epsnet_of_loss(_to_minimization(values, maximize), seed)


def multiobjective_order(
    values: object,
    maximize: Sequence[Direction],
    *,
    tie_breaker: str = "crowding",
    seed: int | None = None,
) -> np.ndarray:
    """Index array (n,) ranking all points best-first: by front, then by the tie breaker.

    ``tie_breaker="crowding"``: larger crowding distance first (ties by index).
    ``tie_breaker="epsnet"``: :func:`epsilon_net_order` within each front (``seed`` as there).
    """
    if tie_breaker not in TIE_BREAKERS:
        raise ValueError(f"tie_breaker {tie_breaker!r} is not one of {TIE_BREAKERS}")
    loss = _to_minimization(values, maximize)
    ranks = _ranks_of_loss(loss)
    parts = []
    for rank in range(int(ranks.max(initial=-1)) + 1):
        members = np.flatnonzero(ranks == rank)
        if tie_breaker == "crowding":
            within = np.argsort(-crowding_distance(loss[members]), kind="stable")
        else:
            within = _epsnet_of_loss(loss[members], seed)
        parts.append(members[within])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=int)
