"""Search tasks on a results table: every cell's true objective values and the quality of a search.

A task is a list of objectives in ``robnas search``'s vocabulary (``name`` or ``name:max`` /
``name:min``, see ``robnas.spaces._objectives``): the table's metric columns, plus ``params``
and ``macs`` of the NB201 network (C=16, N=5) computed for the given input and classes when
the table has no such column.

* One objective: regret = the table's best value minus the best found, in the table's units
  (points for NAS-RobBench-201).
* Several: hypervolume of the found front as a fraction of the table's true front's (the front
  of every cell a search can draw: an NB201 row's values with the size of each member of its
  isomorphism class). Reference point per objective: the median of the table's column for one
  maximised, 1.01 x its largest value for one minimised (a size or a cost).

``BoundScreen`` is the screening with a perfect predictor: it launches the candidate the launch
rule would pick if every prediction were the table's true value (the bound of any surrogate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robnas.analysis import hypervolume
from robnas.analysis._pareto import pareto_mask
from robnas.search import _acquisition as acq
from robnas.search._screening import Screen
from robnas.spaces._genotype import Genotype
from robnas.spaces._objectives import Objective, parse_objectives
from robnas.spaces._runtime import scalarize
from robnas.trainables._network import nb201_mac_count, nb201_param_count
from robnas.trainables._table import ResultTable, replay

#: Tasks measured when none are given: every robust column and clean accuracy against the
#: parameters, two accuracies together, three objectives, and each column alone.
COLUMNS = ("pgd_eps8_acc", "pgd_eps3_acc", "fgsm_eps8_acc", "autoattack_eps8_acc", "clean_acc")
DEFAULT_TASKS: tuple[str, ...] = (
    *(f"{c},params" for c in COLUMNS),
    "clean_acc,pgd_eps8_acc",
    "clean_acc,autoattack_eps8_acc",
    "clean_acc,pgd_eps8_acc,params",
    *COLUMNS,
)
#: Sizes computed from the cell when the table has no such column.
COMPUTED = ("params", "macs")


class Task:
    """One search task on ``table``: objectives, every cell's true values and the quality rule.

    ``spec``: comma-separated objectives; ``in_channels``, ``input_size`` ``(H, W)`` and
    ``num_classes`` describe the network whose ``params`` / ``macs`` count.
    """

    def __init__(self, table: ResultTable, spec: str, *, in_channels: int = 3,
                 input_size: tuple[int, int] = (32, 32), num_classes: int = 10) -> None:
        available = (*table.metrics, *(c for c in COMPUTED if c not in table.metrics))
        self.objectives: tuple[Objective, ...] = parse_objectives(spec, available)
        self.name = ",".join(o.name for o in self.objectives)
        self.table = table
        self.network = {"width": 16, "cells_per_stage": 5, "in_channels": in_channels, "num_classes": num_classes}
        self.input_size = input_size
        self._truth: dict[str, dict[str, float]] = {}
        rows = np.array([self.values_of(self.truth(cell)) for cell in table.cells()])
        # Every cell a search can draw: a row's isomorphism class shares its results, not its size.
        values = np.array([self.values_of(self.truth(member)) for cell in table.cells()
                           for member in cell.isomorphic_cells()])
        self.maximize = [o.maximize for o in self.objectives]
        self.best = float(values[:, 0].max() if self.maximize[0] else values[:, 0].min())
        if len(self.objectives) > 1:
            self.reference = np.array([
                float(np.median(column)) if o.maximize else 1.01 * float(column.max())
                for o, column in zip(self.objectives, rows.T)
            ])
            front = values[pareto_mask(values, self.maximize)]
            self.true_hypervolume = hypervolume(front, self.maximize, self.reference)

    @property
    def single(self) -> bool:
        return len(self.objectives) == 1

    def truth(self, cell: Genotype) -> dict[str, float]:
        """The cell's final metrics and computed sizes (cached by its canonical string)."""
        key = cell.to_str()
        if key not in self._truth:
            values = dict(self.table.lookup(cell, self.table.epochs))
            values.setdefault("params", float(nb201_param_count(cell, **self.network)))
            values.setdefault("macs", float(nb201_mac_count(cell, input_size=self.input_size, **self.network)))
            self._truth[key] = values
        return self._truth[key]

    def reports(self, config: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The table backend's reports of ``config`` with the task's computed sizes and score."""
        cell = Genotype.from_config(config)
        truth = self.truth(cell)
        reports = replay(cell, self.table)
        for report in reports:
            for name in COMPUTED:
                if name not in self.table.metrics:
                    report[name] = truth[name]
            if config.get("score_weights"):
                report["score"] = scalarize(report, config["score_weights"], config.get("score_scales") or None)
        return reports

    def values_of(self, values: Mapping[str, float]) -> tuple[float, ...]:
        return tuple(float(values[o.name]) for o in self.objectives)

    def quality(self, found: np.ndarray) -> float:
        """Regret of the found values ``(n, 1)``, or hypervolume fraction of ``(n, m)``."""
        if self.single:
            best = found[:, 0].max() if self.maximize[0] else found[:, 0].min()
            return abs(self.best - float(best))
        return hypervolume(found, self.maximize, self.reference) / self.true_hypervolume


def bound_screen(task: Task) -> type[Screen]:
    """A ``Screen`` class whose predictions are ``task``'s true values (``score``: the first
    objective's gain); it scores no proxies and trains no ranker."""

    class BoundScreen(Screen):
        def _gains(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
            rows = []
            for config in configs:
                truth = task.truth(Genotype.from_config(config))
                first = task.objectives[0]
                rows.append([truth[n] if n != "score" else first.sign * truth[first.name] for n in self.names])
            return acq.gains(np.array(rows, dtype=float), self.objectives)

        def observe(self, key, config, result) -> None:
            return None

    return BoundScreen
