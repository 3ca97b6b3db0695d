from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from robnas.analysis._hypervolume import hypervolume
from robnas.analysis._knee import knee_point
from robnas.analysis._pareto import (
    crowding_distance,
    epsilon_net_order,
    multiobjective_order,
    nondominated_ranks,
    pareto_mask,
)

# ---------------------------------------------------------------- brute-force references


def _loss(values, maximize):
    signs = np.array([-1.0 if d in (True, "max") else 1.0 for d in maximize])
    return np.asarray(values, dtype=float) * signs


def _dominates(a, b):
    return bool(np.all(a <= b) and np.any(a < b))


def _brute_mask(loss):
    n = len(loss)
    return np.array([not any(_dominates(loss[j], loss[i]) for j in range(n)) for i in range(n)])


def _brute_ranks(loss):
    ranks = np.full(len(loss), -1)
    remaining = list(range(len(loss)))
    rank = 0
    while remaining:
        sub = loss[remaining]
        front = [remaining[k] for k, on in enumerate(_brute_mask(sub)) if on]
        ranks[front] = rank
        remaining = [i for i in remaining if i not in front]
        rank += 1
    return ranks


def _voxel_hypervolume(loss, ref_loss):
    """Number of unit cells below ref_loss dominated by a point (exact for integer coordinates)."""
    low = np.minimum(loss.min(axis=0), ref_loss) if len(loss) else ref_loss
    axes = [range(int(lo), int(r)) for lo, r in zip(low, ref_loss)]
    count = 0
    for cell in itertools.product(*axes):
        if any(np.all(p <= np.array(cell)) for p in loss):
            count += 1
    return float(count)


def _random_case(rng, m):
    n = int(rng.integers(0, 25))
    values = rng.integers(0, 4, size=(n, m)).astype(float)  # small range forces ties/duplicates
    maximize = [bool(b) for b in rng.integers(0, 2, size=m)]
    if rng.random() < 0.5:
        maximize = ["max" if b else "min" for b in maximize]
    return values, maximize


# ---------------------------------------------------------------- dominance and ranks


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_mask_and_ranks_match_brute_force(m):
    rng = np.random.default_rng(100 + m)
    for _ in range(60):
        values, maximize = _random_case(rng, m)
        loss = _loss(values, maximize)
        np.testing.assert_array_equal(pareto_mask(values, maximize), _brute_mask(loss))
        np.testing.assert_array_equal(nondominated_ranks(values, maximize), _brute_ranks(loss))


def test_duplicates_share_the_front_and_ranks():
    values = [[1, 1], [1, 1], [0, 2], [2, 0], [0, 0], [0, 0]]
    np.testing.assert_array_equal(
        pareto_mask(values, [True, True]), [True, True, True, True, False, False]
    )
    np.testing.assert_array_equal(nondominated_ranks(values, [True, True]), [0, 0, 0, 0, 1, 1])


def test_directions_are_equivalent_to_negation():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(40, 3))
    np.testing.assert_array_equal(
        nondominated_ranks(values, ["max", "min", "max"]),
        nondominated_ranks(values * [-1, 1, -1], [False, False, False]),
    )


def test_single_objective_ranks_are_value_levels():
    np.testing.assert_array_equal(nondominated_ranks([[3], [1], [3], [2]], ["max"]), [0, 2, 0, 1])


def test_empty_input():
    assert pareto_mask(np.zeros((0, 2)), [True, True]).shape == (0,)
    assert nondominated_ranks([], [True, False]).shape == (0,)
    assert multiobjective_order([], [True, False]).shape == (0,)


@pytest.mark.parametrize(
    "values, maximize, match",
    [
        ([[1.0, np.nan]], [True, True], "finite"),
        ([[1.0, 2.0]], [True], "objectives"),
        ([1.0, 2.0], [True, True], "shape"),
        ([[1.0, 2.0]], ["max", "up"], "'up'"),
        ([[1.0, 2.0]], "max", "non-empty sequence"),
        ([[1.0, 2.0]], [1, 0], "bool"),
    ],
)
def test_bad_input_raises(values, maximize, match):
    with pytest.raises(ValueError, match=match):
        nondominated_ranks(values, maximize)


# ---------------------------------------------------------------- tie breakers and ordering


def test_crowding_distance_hand_computed():
    # Objective ranges are both 10; inner points sum neighbour gaps / range.
    front = [[0, 10], [1, 4], [6, 1], [10, 0]]
    np.testing.assert_allclose(crowding_distance(front), [np.inf, 1.5, 1.3, np.inf])


def test_crowding_distance_small_and_constant():
    np.testing.assert_array_equal(crowding_distance([[1, 2], [3, 4]]), [np.inf, np.inf])
    # The constant second objective adds nothing.
    np.testing.assert_allclose(crowding_distance([[0, 5], [1, 5], [4, 5]]), [np.inf, 1.0, np.inf])


def test_epsilon_net_order_farthest_point():
    front = [[0.0, 1.0], [0.1, 0.9], [0.5, 0.5], [1.0, 0.0]]
    # Start at the best first objective (0.0 when minimised), then the opposite end, then the
    # point farthest from both ends.
    np.testing.assert_array_equal(epsilon_net_order(front, ["min", "min"]), [0, 3, 2, 1])
    np.testing.assert_array_equal(epsilon_net_order(front, ["max", "max"]), [3, 0, 2, 1])
    # Normalisation makes the order independent of the objectives' scales.
    scaled = np.asarray(front) * [1.0, 100.0]
    np.testing.assert_array_equal(epsilon_net_order(scaled, ["min", "min"]), [0, 3, 2, 1])


def test_epsilon_net_order_seeded_start():
    rng = np.random.default_rng(3)
    front = rng.random((12, 3))
    a = epsilon_net_order(front, [True] * 3, seed=7)
    np.testing.assert_array_equal(a, epsilon_net_order(front, [True] * 3, seed=7))
    assert sorted(a.tolist()) == list(range(12))
    expected_start = np.random.default_rng(7).integers(12)
    assert a[0] == expected_start


def test_multiobjective_order_fronts_then_tie_breaker():
    # Loss-space front x + y = 1 at x = 0, .35, .45, .7, 1 (maximised as 1 - x, x), plus a
    # dominated point. Crowding prefers .7 (gap .45+.55), the epsilon-net .45 (farthest from ends).
    values = [[1.0, 0.0], [0.65, 0.35], [0.55, 0.45], [0.3, 0.7], [0.0, 1.0], [0.2, 0.2]]
    crowd = multiobjective_order(values, ["max", "max"], tie_breaker="crowding")
    eps = multiobjective_order(values, ["max", "max"], tie_breaker="epsnet")
    np.testing.assert_array_equal(crowd, [0, 4, 3, 1, 2, 5])
    np.testing.assert_array_equal(eps, [0, 4, 2, 3, 1, 5])


@pytest.mark.parametrize("tie_breaker", ["crowding", "epsnet"])
def test_multiobjective_order_is_a_front_sorted_permutation(tie_breaker):
    rng = np.random.default_rng(11)
    for m in (2, 3, 4):
        values, maximize = _random_case(rng, m)
        order = multiobjective_order(values, maximize, tie_breaker=tie_breaker)
        assert sorted(order.tolist()) == list(range(len(values)))
        ranks = nondominated_ranks(values, maximize)[order]
        assert np.all(np.diff(ranks) >= 0)


def test_multiobjective_order_rejects_unknown_tie_breaker():
    with pytest.raises(ValueError, match="'random'"):
        multiobjective_order([[1, 2]], [True, True], tie_breaker="random")


# ---------------------------------------------------------------- hypervolume


def test_hypervolume_2d_hand_computed():
    pts = [[1, 5], [2, 3], [3, 2], [5, 1], [4, 4], [1, 5]]  # one dominated, one duplicate
    assert hypervolume(pts, ["min", "min"], [6, 6]) == pytest.approx(17.0)
    accs = [[0.9, 0.5], [0.6, 0.8]]
    assert hypervolume(accs, ["max", "max"], [0.0, 0.0]) == pytest.approx(0.63)


def test_hypervolume_3d_hand_computed():
    assert hypervolume([[1, 1, 1]], [False] * 3, [2, 3, 4]) == pytest.approx(6.0)
    # Boxes 2*2*1 and 1*1*2 overlap in a unit cube.
    two = [[0, 0, 1], [1, 1, 0], [1, 1, 0]]
    assert hypervolume(two, [False] * 3, [2, 2, 2]) == pytest.approx(5.0)
    # Same set, maximised: mirror the points and the reference point.
    assert hypervolume(-np.asarray(two), [True] * 3, [-2, -2, -2]) == pytest.approx(5.0)


def test_hypervolume_points_outside_the_reference_box():
    ref = [4, 4]
    assert hypervolume([[5, 0], [0, 4]], ["min", "min"], ref) == 0.0  # outside / on the border
    assert hypervolume([[5, 0], [2, 2]], ["min", "min"], ref) == pytest.approx(4.0)
    assert hypervolume(np.zeros((0, 2)), ["min", "min"], ref) == 0.0
    assert hypervolume([], ["min", "min"], ref) == 0.0


@pytest.mark.parametrize("m", [2, 3, 4])
def test_hypervolume_matches_voxel_count(m):
    rng = np.random.default_rng(m)
    for _ in range(15):
        values, maximize = _random_case(rng, m)
        ref = np.where([d in (True, "max") for d in maximize], -1.0, 4.0)
        expected = _voxel_hypervolume(_loss(values, maximize), _loss(ref[None], maximize)[0])
        assert hypervolume(values, maximize, ref) == pytest.approx(expected)


def test_hypervolume_reference_shape_checked():
    with pytest.raises(ValueError, match="reference_point"):
        hypervolume([[1, 2]], [True, True], [0, 0, 0])


# ---------------------------------------------------------------- knee point


def test_knee_point_closest_to_ideal():
    # Normalised front: (0,1) (.25,.5) (.5,.25) (1,0); two tie at distance .559 -> lower index.
    values = [[1, 5], [2, 3], [3, 2], [5, 1], [4, 4]]
    assert knee_point(values, ["min", "min"]) == 1
    # Directions matter: (0.9, 0.9) is the knee when maximising, (0.2, 0.2) when minimising.
    values = [[0.0, 1.0], [0.2, 0.2], [1.0, 0.0], [0.9, 0.9]]
    assert knee_point(values, ["max", "max"]) == 3
    assert knee_point(values, ["min", "min"]) == 1
    assert knee_point(values, ["min", "max"]) == 0
    assert knee_point([[3.0, 1.0]], [True, False]) == 0


def test_knee_point_empty_raises():
    with pytest.raises(ValueError, match="at least one point"):
        knee_point(np.zeros((0, 2)), [True, True])


# ---------------------------------------------------------------- packaging


def test_analysis_imports_without_ray():
    code = (
        "import sys; import robnas.analysis._pareto, robnas.analysis._hypervolume, "
        "robnas.analysis._knee; sys.exit('ray' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
