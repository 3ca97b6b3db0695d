"""``StorageGuard``: a Tune callback that stops a search, resumable, before its storage fills up."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ray.tune import Callback

from robnas.search._graceful_stop import stop_like_ctrl_c
from robnas.search._storage import storage_problem

#: Seconds between two free-space checks of a running search.
CHECK_PERIOD_S = 1.0


class StorageGuard(Callback):
    """Stops a running search as Ctrl-C does when its storage ``path`` has less than
    ``min_free_bytes`` free or turns read-only; checks at most every :data:`CHECK_PERIOD_S`
    seconds, and after every trial failure. ``stop`` asks Tune to stop, True if it could."""

    def __init__(self, path: str | os.PathLike, min_free_bytes: float, *,
                 stop: Callable[[], bool] = stop_like_ctrl_c) -> None:
        self.path = str(path)
        self.min_free_bytes = float(min_free_bytes)
        self.stop = stop
        self._checked_at = -float("inf")
        self._stopping = False

    def __getstate__(self) -> dict:
        return {"path": self.path, "min_free_bytes": self.min_free_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["min_free_bytes"])

    def on_step_begin(self, iteration, trials, **info) -> None:
        if time.monotonic() - self._checked_at >= CHECK_PERIOD_S:
            self._check()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._check()

    def _check(self) -> None:
        self._checked_at = time.monotonic()
        if self._stopping or storage_problem(self.path, self.min_free_bytes) is None:
            return
        self._stopping = self.stop()
