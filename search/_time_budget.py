"""A search's wall time and its time budget (``--time-budget``).

Tune's own ``time_budget_s`` counts from the start of the current process, and a restored
search keeps the ``TuneConfig`` it was started with; so robnas keeps the time itself: the
:class:`TimeBudget` callback of every search adds up the seconds Tune ran, over the start and
every resume, in ``elapsed_s`` of the search's ``robnas.json`` (written every
:data:`SAVE_PERIOD_S` seconds and when Tune stops), and stops the search as Ctrl-C does (state
saved, every trial resumable) once ``elapsed_s`` reaches the settings' ``time_budget_s``. The
budget is read from ``robnas.json`` when Tune starts, so a resume can raise it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ray.tune import Callback

from robnas.search._elapsed import read_budget, read_elapsed, record_elapsed
from robnas.search._graceful_stop import stop_like_ctrl_c

__all__ = ["SAVE_PERIOD_S", "TimeBudget"]

#: Seconds between two writes of the elapsed time while a search runs.
SAVE_PERIOD_S = 2.0


class TimeBudget(Callback):
    """Adds the seconds Tune runs to the search's ``elapsed_s`` and stops the search, as Ctrl-C
    does, once they reach its ``time_budget_s`` (both in ``path/robnas.json``).

    ``clock``: seconds, monotonic; ``stop``: asks Tune to stop, True if it could (both for tests).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        clock: Callable[[], float] = time.monotonic,
        stop: Callable[[], bool] = stop_like_ctrl_c,
        period_s: float = SAVE_PERIOD_S,
    ) -> None:
        self.path = str(path)
        self.clock, self.stop, self.period_s = clock, stop, period_s
        self._started: float | None = None
        self._before = 0.0
        self._budget: float | None = None
        self._saved_at = 0.0
        self._stopping = False

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def setup(self, **info) -> None:
        self._begin()

    def on_step_begin(self, iteration, trials, **info) -> None:
        self.check()

    def on_experiment_end(self, trials, **info) -> None:
        if self._started is not None:
            self._save()

    @property
    def elapsed_s(self) -> float:
        """Seconds the search has run, this run included."""
        return self._before + (0.0 if self._started is None else self.clock() - self._started)

    def check(self) -> None:
        """Save the elapsed time every ``period_s`` seconds; stop the search once it has spent
        its budget."""
        if self._started is None:
            self._begin()
        spent = self._budget is not None and self.elapsed_s >= self._budget
        if spent or self.clock() - self._saved_at >= self.period_s:
            self._save()
        if spent and not self._stopping:
            self._stopping = self.stop()

    def _begin(self) -> None:
        self._started = self._saved_at = self.clock()
        self._before = read_elapsed(self.path) or 0.0
        self._budget = read_budget(self.path)
        self._stopping = False

    def _save(self) -> None:
        self._saved_at = self.clock()
        record_elapsed(self.path, self.elapsed_s)
