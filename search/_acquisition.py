"""The screening's launch rule on arrays: which predicted candidate to launch.

Everything here is numpy over *gains* ``(n, m)``: objective values with minimised columns
negated (:func:`gains`), so that higher is better in every column.

* :func:`best_first` - the candidate with the best first objective.
* :func:`front_reference` - the reference point of a predicted front: the first objective of
  a typical configuration, and just below the worst value of each other objective.
* :func:`front_members` - the front of finished trials that beats that reference.
* :func:`hypervolume_improvements` - what each candidate would add to the front.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robnas.analysis import hypervolume, pareto_mask
from robnas.spaces._objectives import Objective

__all__ = ["best_first", "front_members", "front_reference", "gains", "hypervolume_improvements"]


def gains(values: np.ndarray, objectives: Sequence[Objective]) -> np.ndarray:
    """``values`` ``(n, m)`` in the objectives' units as gains (minimised columns negated)."""
    values = np.asarray(values, dtype=float).reshape(-1, len(objectives))
    return values * np.array([o.sign for o in objectives])


def best_first(gain: np.ndarray) -> int:
    """Row of ``gain`` ``(n, m)`` with the best first objective (``nan`` counts as worst)."""
    return int(np.argmax(np.nan_to_num(gain[:, 0], nan=-np.inf)))


def front_reference(gain: np.ndarray, *, typical: np.ndarray, learnt: np.ndarray | None = None) -> np.ndarray:
    """Reference point ``(m,)`` in gains for the hypervolume of a predicted front.

    Without ``learnt``: the first objective at the median of ``typical`` ``(k,)`` (e.g. its
    predictions for a random pool), so that only configurations better than a typical one
    count; every other 1 % of its range below the worst row of ``gain`` ``(n, m)``.
    With ``learnt`` ``(m,)`` booleans: every learnt objective at the median of its column of
    ``typical`` ``(k, m)``, every other (a size, known for every candidate) below the worst row.
    """
    gain = np.asarray(gain, dtype=float)
    low, high = np.nanmin(gain, axis=0), np.nanmax(gain, axis=0)
    below = low - 0.01 * (high - low)
    if learnt is None:
        return np.concatenate([[float(np.nanmedian(typical))], below[1:]])
    median = np.nanmedian(np.asarray(typical, dtype=float).reshape(-1, gain.shape[1]), axis=0)
    return np.where(np.asarray(learnt, dtype=bool), median, below)


def front_members(front: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``front`` ``(k, m)`` on its Pareto front and above ``reference``."""
    front = np.asarray(front, dtype=float)
    if len(front) == 0:
        return np.zeros(0, dtype=int)
    return np.flatnonzero(pareto_mask(front, [True] * front.shape[1]) & np.all(front > reference, axis=1))


def hypervolume_improvements(front: np.ndarray, candidates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Hypervolume ``(n,)`` each row of ``candidates`` ``(n, m)`` would add to ``front`` ``(k, m)``.

    All in gains (higher = better), bounded by ``reference`` ``(m,)``; rows with a ``nan`` add 0.
    """
    front = np.asarray(front, dtype=float)
    front = front[np.all(np.isfinite(front), axis=1)]
    maximize = [True] * len(reference)
    base = hypervolume(front, maximize, reference) if len(front) else 0.0
    return np.array([
        hypervolume(np.vstack([front, row]), maximize, reference) - base if np.all(np.isfinite(row)) else 0.0
        for row in np.asarray(candidates, dtype=float)
    ])
