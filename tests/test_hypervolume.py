"""robnas's own hypervolume against independent computations: the union of boxes on a grid,
and (on random sets only) Optuna's implementation. Hand-checked values are in test_pareto.py."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from robnas.analysis._hypervolume import hypervolume


def _union_of_boxes(values, maximize, reference) -> float:
    """Volume of the union of the boxes between each point and the reference point.

    Brute force: the coordinates of all points and of the reference cut space into a grid; a
    grid cell is covered when its lower corner (in losses) is weakly dominated by a point that
    strictly dominates the reference. Exact for any coordinates; cost n^m cells.
    """
    signs = np.array([-1.0 if d in (True, "max") else 1.0 for d in maximize])
    loss = np.asarray(values, dtype=float).reshape(-1, len(signs)) * signs
    ref = np.asarray(reference, dtype=float) * signs
    loss = loss[np.all(loss < ref, axis=1)]
    cuts = [np.unique(np.append(loss[:, j], ref[j])) for j in range(len(ref))]
    volume = 0.0
    for cell in itertools.product(*(range(len(c) - 1) for c in cuts)):
        low = np.array([c[i] for c, i in zip(cuts, cell)])
        if any(np.all(p <= low) for p in loss):
            volume += math.prod(c[i + 1] - c[i] for c, i in zip(cuts, cell))
    return volume


def _directions(rng, m):
    return ["max" if b else "min" for b in rng.integers(0, 2, size=m)]


@pytest.mark.parametrize("m", [2, 3, 4])
def test_random_integer_sets_match_the_union_of_boxes(m):
    rng = np.random.default_rng(20 + m)
    for _ in range(25):
        n = int(rng.integers(0, 14 if m == 4 else 30))
        values = rng.integers(-3, 4, size=(n, m)).astype(float)  # ties, duplicates, points beyond
        maximize = _directions(rng, m)
        reference = rng.integers(-1, 3, size=m).astype(float)
        assert hypervolume(values, maximize, reference) == pytest.approx(
            _union_of_boxes(values, maximize, reference), rel=1e-12, abs=1e-12
        )


@pytest.mark.parametrize("m", [2, 3, 4])
def test_random_real_sets_match_the_union_of_boxes(m):
    rng = np.random.default_rng(40 + m)
    for _ in range(10):
        values = rng.normal(size=(int(rng.integers(1, 12)), m))
        maximize = _directions(rng, m)
        reference = rng.normal(scale=0.5, size=m)
        assert hypervolume(values, maximize, reference) == pytest.approx(
            _union_of_boxes(values, maximize, reference), rel=1e-12, abs=1e-12
        )


@pytest.mark.parametrize(("n", "m"), [(30, 2), (300, 2), (30, 3), (100, 3), (600, 3), (30, 4), (60, 4), (20, 5)])
def test_random_sets_match_optuna(n, m):
    from optuna._hypervolume import compute_hypervolume  # private: only as a reference here

    rng = np.random.default_rng(n * 10 + m)
    for trial in range(3):
        values = rng.random((n, m))
        if trial == 1:  # every point on the front
            values /= values.sum(axis=1, keepdims=True)
        if trial == 2:  # a coarse grid: many ties and duplicates
            values = np.round(values * 5) / 5
        reference = np.full(m, 1.0)
        inside = values[np.all(values < reference, axis=1)]
        expected = compute_hypervolume(inside, reference) if len(inside) else 0.0
        assert hypervolume(values, ["min"] * m, reference) == pytest.approx(expected, rel=1e-12)
        assert hypervolume(-values, ["max"] * m, -reference) == pytest.approx(expected, rel=1e-12)


def test_one_objective_and_non_finite_input():
    assert hypervolume([[3.0], [1.0], [5.0]], ["min"], [4.0]) == pytest.approx(3.0)
    assert hypervolume([[0.2], [0.7]], ["max"], [0.5]) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="finite"):
        hypervolume([[1.0, math.nan], [1.0, 1.0]], ["min", "min"], [2.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        hypervolume([[1.0, 1.0]], ["min", "min"], [2.0, math.inf])


def test_dominated_points_duplicates_and_order_do_not_change_a_bit():
    rng = np.random.default_rng(7)
    for m in (2, 3, 4):
        values = rng.random((40, m))
        expected = hypervolume(values, ["min"] * m, np.ones(m))
        worse = np.vstack([values, values[:5], values[:10] + 0.01])[rng.permutation(55)]
        assert hypervolume(worse, ["min"] * m, np.ones(m)) == expected
