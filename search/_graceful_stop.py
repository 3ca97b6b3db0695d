"""Stopping a running search the way Ctrl-C does, at a point where no finished epoch is lost.

Tune ends an experiment gracefully on SIGINT or SIGUSR1: its handler (installed in the main
thread while a search runs) sets a flag that ends the loop after the current step, then the
experiment state is saved and the running trials keep their last registered checkpoint. Tune
registers a checkpoint one step after it logged the epoch's report (a separate save task), so a
stop landing in between would leave a written row without its checkpoint, and the resumed trial
would train that epoch again. :class:`GracefulStop` holds every stop (Ctrl-C, the time budget,
the storage guard) until the end of a step in which no trial has a save in flight.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ray.tune import Callback

from robnas.search._ray_compat import save_in_flight

__all__ = ["MAX_WAIT_S", "GracefulStop", "stop_like_ctrl_c"]

#: Seconds a requested stop waits for checkpoint saves at most; then it stops regardless.
MAX_WAIT_S = 60.0


def stop_like_ctrl_c() -> bool:
    """Ask Tune to end the running search as on Ctrl-C, at once; False if it cannot be asked here."""
    if threading.current_thread() is threading.main_thread() and callable(signal.getsignal(signal.SIGUSR1)):
        os.kill(os.getpid(), signal.SIGUSR1)
        return True
    return False


class GracefulStop(Callback):
    """A Tune callback that ends the search on :meth:`request` or Ctrl-C once no trial has a
    checkpoint save in flight (checked at the end of every step; :data:`MAX_WAIT_S` at most).

    A second Ctrl-C while the stop waits is passed to Tune at once. ``clock``: seconds,
    monotonic (for tests).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_wait_s: float = MAX_WAIT_S) -> None:
        self.clock, self.max_wait_s = clock, max_wait_s
        self._tune_handler: Callable[[int, Any], Any] | None = None
        self._requested_at: float | None = None
        self._forwarded = False

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def setup(self, **info) -> None:
        """Take over Tune's SIGINT handler (Tune installs it before it sets up its callbacks)."""
        self._requested_at, self._forwarded = None, False
        if threading.current_thread() is not threading.main_thread():
            return
        handler = signal.getsignal(signal.SIGUSR1)
        if not callable(handler):
            return
        self._tune_handler = handler
        if signal.getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, self._on_sigint)

    def request(self) -> bool:
        """Stop the search at the next safe point; False if Tune cannot be asked here."""
        if self._tune_handler is None:
            return stop_like_ctrl_c()
        if self._requested_at is None:
            self._requested_at = self.clock()
        return True

    def on_step_end(self, iteration: int, trials: Sequence[Any], **info) -> None:
        if self._requested_at is None or self._forwarded:
            return
        waited = self.clock() - self._requested_at
        if waited >= self.max_wait_s or not any(save_in_flight(trial) for trial in trials):
            self._forward(signal.SIGUSR1, None)

    def on_experiment_end(self, trials: Sequence[Any], **info) -> None:
        self._restore_sigint()

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._requested_at is not None:  # pressed again: do not wait
            self._forward(signum, frame)
        else:
            self._requested_at = self.clock()

    def _forward(self, signum: int, frame: Any) -> None:
        self._forwarded = True
        self._restore_sigint()
        self._tune_handler(signum, frame)

    def _restore_sigint(self) -> None:
        """Give SIGINT back to Tune's handler (which on its first call restores the original)."""
        if self._tune_handler is not None and signal.getsignal(signal.SIGINT) == self._on_sigint:
            signal.signal(signal.SIGINT, self._tune_handler)
