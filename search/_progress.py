"""A Tune callback that prints one line per finished trial: counts and the front so far."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import TextIO

from ray.tune import Callback

from robnas.analysis._pareto import pareto_mask


class FrontProgress(Callback):
    """Prints ``[done/total, running] trial: objectives | front N`` as trials finish.

    The front is that of the trials trained to ``max_epochs`` (as ``robnas analyze`` computes it).
    """

    def __init__(
        self,
        objectives: Sequence[str],
        modes: Sequence[str],
        total: int,
        *,
        max_epochs: int,
        stream: TextIO | None = None,
    ) -> None:
        self.objectives = tuple(objectives)
        self.maximize = [mode == "max" for mode in modes]
        self.total = total
        self.max_epochs = max_epochs
        self.stream = stream

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._print(trials, trial, "done")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._print(trials, trial, "failed")

    def _print(self, trials, trial, what: str) -> None:
        done = sum(t.status in ("TERMINATED", "ERROR") for t in trials) + 1
        running = sum(t.status == "RUNNING" for t in trials) - 1
        result = trial.last_result or {}
        values = "  ".join(f"{name} {_fmt(result.get(name))}" for name in self.objectives)
        finished = [t.last_result for t in trials if t.status == "TERMINATED" and t.last_result]
        if trial.last_result and trial.status != "TERMINATED":
            finished.append(trial.last_result)
        finished = [r for r in finished if r.get("epoch") == self.max_epochs]
        points = [[r.get(n, math.nan) for n in self.objectives] for r in finished]
        points = [p for p in points if all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)]
        front = int(pareto_mask(points, self.maximize).sum()) if points else 0
        line = (
            f"[{min(done, self.total)}/{self.total} done, {max(running, 0)} running] "
            f"{what} {trial.trial_id} at epoch {result.get('epoch', 0)}: {values} | front {front}"
        )
        print(line, file=self.stream or sys.stdout, flush=True)


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
