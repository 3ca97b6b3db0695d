"""Pandas and numpy over finished trials: Pareto fronts, hypervolume, knee, reports.

The functions here import no Ray; arrays are ``(n_points, n_objectives)``.
"""

from robnas.analysis._hypervolume import hypervolume
from robnas.analysis._knee import knee_point
from robnas.analysis._pareto import (
    crowding_distance,
    epsilon_net_order,
    multiobjective_order,
    nondominated_ranks,
    pareto_mask,
)

__all__ = [
    "crowding_distance",
    "epsilon_net_order",
    "hypervolume",
    "knee_point",
    "multiobjective_order",
    "nondominated_ranks",
    "pareto_mask",
]
