"""How close a search on a table of results came to the table's best: hypervolume fraction and regret.

A search on the table backend (``robnas search --backend table``) replays published results, so
every network's true values are known: the table's columns and the parameters of the network
the search counted (``params``, when the table has no such column; its family's closed-form
count). The search's
hypervolume is compared with that of the table's true front, both bounded by the same
reference point, and each objective's best found with the table's best (regret, in the
objective's units; 0 = the table's best was found).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robnas.analysis._hypervolume import hypervolume
from robnas.analysis._pareto import pareto_mask
from robnas.spaces._objectives import Objective
from robnas.trainables._table import TABLE_MACRO, ResultTable, row_networks, table_params

__all__ = ["table_quality", "true_values"]


def true_values(table: ResultTable, objectives: Sequence[Objective], *, width: int = 16,
                cells_per_stage: int = 5) -> np.ndarray | None:
    """Final values ``(networks, m)`` of every network of ``table`` on ``objectives``; ``params``
    is counted (``table_params``; NB201 cells in the skeleton of ``width`` and
    ``cells_per_stage``, one row per member of a row's isomorphism class) when the table has
    none. None when an objective is neither a column nor ``params``."""
    names = [o.name for o in objectives]
    if any(n not in table.metrics and n != "params" for n in names):
        return None
    rows = []
    macro = {"width": width, "cells_per_stage": cells_per_stage}
    for text in table.descriptions():
        values = table.lookup(text, table.epochs)
        if "params" in names and "params" not in values:
            # An NB201 row stands for its isomorphism class: the search can draw any member,
            # and members can have fewer parameters than the row's own cell.
            for network in row_networks(text, macro):
                rows.append([float(values[n]) if n != "params" else float(table_params(network)) for n in names])
        else:
            rows.append([float(values[n]) for n in names])
    return np.array(rows, dtype=float)


def table_quality(settings: Mapping[str, Any], objectives: Sequence[Objective], reference: Sequence[float],
                  found: np.ndarray) -> dict[str, Any] | None:
    """Hypervolume fraction and per-objective regret of ``found`` ``(n, m)`` (the search's
    eligible trials) against the table of a table-backend search with ``settings``.

    Returns ``{"table", "table_hypervolume", "hypervolume_fraction", "regret": {name: value}}``
    (``hypervolume_fraction`` None when the table's front does not beat ``reference``), or None
    when the search did not replay a readable table with these objectives.
    """
    if settings.get("backend") != "table" or not settings.get("table"):
        return None
    try:
        table = ResultTable.load(settings["table"])
    except (OSError, ValueError):
        return None
    macro = {key: int(settings.get(key) or default) for key, default in TABLE_MACRO.items()}
    truth = true_values(table, objectives, **macro)
    if truth is None or len(truth) == 0:
        return None
    maximize = [o.maximize for o in objectives]
    total = hypervolume(truth[pareto_mask(truth, maximize)], maximize, reference)
    found = np.asarray(found, dtype=float).reshape(-1, len(objectives))
    own = hypervolume(found, maximize, reference) if len(found) else 0.0
    regret = {}
    for column, objective in enumerate(objectives):
        best_true = truth[:, column].max() if objective.maximize else truth[:, column].min()
        if len(found):
            best_found = found[:, column].max() if objective.maximize else found[:, column].min()
            regret[objective.name] = float(abs(best_true - best_found))
        else:
            regret[objective.name] = None
    return {"table": str(settings["table"]), "table_hypervolume": total,
            "hypervolume_fraction": own / total if total > 0 else None, "regret": regret}
