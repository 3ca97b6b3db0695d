"""Pandas and numpy over finished trials: Pareto fronts, hypervolume, knee, reports.

The functions here import no Ray; arrays are ``(n_points, n_objectives)``. ``analyze(dirs)``
writes a search's ``analysis/`` directory; ``evaluate(dir)`` measures its trials once on the
test split (``analysis/final.csv``); ``load_model(path)`` rebuilds an exported network.
The reading, reporting and export names are imported on first use, so that importing this
package stays cheap (no pandas, matplotlib or torch until needed).
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
from robnas.spaces._lazy import lazy_attributes
from robnas.spaces._objectives import Objective, parse_objectives

#: Public name -> private module, imported on first access.
_LAZY = {
    "Experiment": "_load",
    "load_experiment": "_load",
    "SkippedRowWarning": "_load",
    "FrontResult": "_front",
    "analyze_trials": "_front",
    "default_reference_point": "_front",
    "objectives_of": "_front",
    "SearchAnalysis": "_analyze",
    "analyze": "_analyze",
    "autoattack_correct": "_autoattack",
    "evaluate": "_evaluate",
    "read_final": "_final",
    "export_model": "_export",
    "load_model": "_export",
    "select_trial": "_export",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "Experiment",
    "FrontResult",
    "Objective",
    "SearchAnalysis",
    "SkippedRowWarning",
    "analyze",
    "analyze_trials",
    "autoattack_correct",
    "crowding_distance",
    "default_reference_point",
    "epsilon_net_order",
    "evaluate",
    "export_model",
    "hypervolume",
    "knee_point",
    "load_experiment",
    "load_model",
    "multiobjective_order",
    "nondominated_ranks",
    "objectives_of",
    "parse_objectives",
    "pareto_mask",
    "read_final",
    "select_trial",
]
