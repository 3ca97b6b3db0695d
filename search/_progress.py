"""A Tune callback that shows where a search stands: a line per finished trial, and a status
line at least every ``STATUS_PERIOD_S`` seconds while trials run."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ray.tune import Callback

from robnas.analysis._pareto import pareto_mask

#: Seconds between two status lines.
STATUS_PERIOD_S = 10.0
#: ``quiet``: nothing while the search runs; ``normal``: robnas's lines; ``verbose``: also Tune's
#: own progress table (on a new search).
VERBOSITIES = ("quiet", "normal", "verbose")
_verbosity = ["normal"]


def set_verbosity(verbosity: str) -> None:
    """How much this process prints while searches run (one of :data:`VERBOSITIES`)."""
    if verbosity not in VERBOSITIES:
        raise ValueError(f"verbosity must be one of {', '.join(VERBOSITIES)}, got {verbosity!r}")
    _verbosity[0] = verbosity


def verbosity() -> str:
    return _verbosity[0]


class FrontProgress(Callback):
    """Prints, as trials finish, ``[done/total, running] ID finished at epoch E: objectives |
    front N`` (``stopped at epoch E`` for a trial a scheduler stopped, ``failed``), and every
    ``STATUS_PERIOD_S`` seconds a status line: trials done / running / pending, epochs trained of
    the most the budget can take, elapsed time and an estimate of the time left (from the epochs
    per second so far; schedulers that stop trials early make it an upper bound), the best value
    per objective and the front size.

    The front is that of the trials trained to ``max_epochs`` (as ``robnas analyze`` computes it).
    ``total``: the trial budget; with ``experiment``, the current budget is re-read from the
    search's ``robnas.json`` (a resume may have raised it).
    """

    def __init__(
        self,
        objectives: Sequence[str],
        modes: Sequence[str],
        total: int,
        *,
        max_epochs: int,
        stream: TextIO | None = None,
        experiment: str | Path | None = None,
        period_s: float = STATUS_PERIOD_S,
    ) -> None:
        self.objectives = tuple(objectives)
        self.maximize = [mode == "max" for mode in modes]
        self.total = total
        self.max_epochs = max_epochs
        self.stream = stream
        self.experiment = None if experiment is None else str(experiment)
        self.period_s = period_s
        self._started = self._last_status = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["stream"] = None  # a stream does not pickle; a restored search prints to stdout
        state["_started"] = state["_last_status"] = None
        return state

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        epoch = (trial.last_result or {}).get("epoch", 0)
        self._print_trial(trials, trial, "finished" if epoch == self.max_epochs else f"stopped at epoch {epoch}:")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._print_trial(trials, trial, "failed")

    def on_step_end(self, iteration, trials, **info) -> None:
        now = time.monotonic()
        if self._started is None:
            self._started = self._last_status = now
        if now - self._last_status >= self.period_s and any(t.status == "RUNNING" for t in trials):
            self._last_status = now
            self._write(self.status_line(trials, elapsed_s=now - self._started))

    # ------------------------------------------------------------------ lines

    def status_line(self, trials, *, elapsed_s: float) -> str:
        """``[status 1m20s] 3/12 done, 2 running, 7 pending | 14 of at most 48 epochs | about 3m left |
        best clean_acc 0.953 ... | front 3``."""
        total = self._total()
        done = sum(t.status in ("TERMINATED", "ERROR") for t in trials)
        running = sum(t.status == "RUNNING" for t in trials)
        pending = max(total - done - running, 0)
        epochs = sum(int((t.last_result or {}).get("epoch", 0) or 0) for t in trials)
        budget = total * self.max_epochs
        left = "time left unknown"
        if epochs > 0 and elapsed_s > 0:
            left = f"at most about {_duration((budget - epochs) * elapsed_s / epochs)} left"
        best = "  ".join(f"{name} {_fmt(value)}" for name, value in zip(self.objectives, self._best(trials)))
        return (f"[status {_duration(elapsed_s)}] {done}/{total} done, {running} running, {pending} pending"
                f" | {epochs} of at most {budget} epochs | {left} | best {best} | front {self._front(trials)}")

    def _print_trial(self, trials, trial, what: str) -> None:
        done = sum(t.status in ("TERMINATED", "ERROR") for t in trials) + 1
        running = sum(t.status == "RUNNING" for t in trials) - 1
        result = trial.last_result or {}
        values = "  ".join(f"{name} {_fmt(result.get(name))}" for name in self.objectives)
        total = self._total()
        head = f"[{min(done, total)}/{total} done, {max(running, 0)} running]"
        if what in ("finished", "failed"):
            what = f"{what} at epoch {result.get('epoch', 0)}:"
        what = f"{trial.trial_id} {what}"  # "ID finished at epoch E:", "ID stopped at epoch E:"
        self._write(f"{head} {what} {values} | front {self._front(trials, trial)}")

    def _write(self, line: str) -> None:
        if verbosity() != "quiet":
            print(line, file=self.stream or sys.stdout, flush=True)

    def _total(self) -> int:
        """The trial budget: the search's current one when its directory is known."""
        if self.experiment is not None:
            from robnas.search._study_state import progress

            try:
                budget = progress(self.experiment)[1]
            except (OSError, ValueError):
                budget = None
            if isinstance(budget, int) and budget > 0:
                return budget
        return self.total

    def _finished_points(self, trials, trial=None) -> list[list[float]]:
        finished = [t.last_result for t in trials if t.status == "TERMINATED" and t.last_result]
        if trial is not None and trial.last_result and trial.status != "TERMINATED":
            finished.append(trial.last_result)
        points = [[r.get(n, math.nan) for n in self.objectives] for r in finished if r.get("epoch") == self.max_epochs]
        return [p for p in points if all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)]

    def _front(self, trials, trial=None) -> int:
        points = self._finished_points(trials, trial)
        return int(pareto_mask(points, self.maximize).sum()) if points else 0

    def _best(self, trials) -> list[float | None]:
        """Per objective, the best value of the trials trained to ``max_epochs`` (None: none yet)."""
        points = self._finished_points(trials)
        if not points:
            return [None] * len(self.objectives)
        columns = list(zip(*points))
        return [max(c) if up else min(c) for c, up in zip(columns, self.maximize)]


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("-" if value is None else str(value))


def _duration(seconds: float) -> str:
    """``45s``, ``3m05s``, ``2h10m``."""
    seconds = max(int(round(seconds)), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
