"""GracefulStop holds Ctrl-C and robnas's own stops until no trial has a checkpoint save in flight."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest

from robnas.search._graceful_stop import GracefulStop


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tune_handler():
    """Tune's handler as ``tune.run`` installs it: one function for SIGINT and SIGUSR1."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGUSR1)}
    calls: list[int] = []

    def handler(signum, frame):
        calls.append(signum)
        signal.signal(signal.SIGINT, saved[signal.SIGINT])  # as Tune's does

    for sig in saved:
        signal.signal(sig, handler)
    yield SimpleNamespace(calls=calls, handler=handler)
    for sig, previous in saved.items():
        signal.signal(sig, previous)


def trials(*saving: bool) -> list[SimpleNamespace]:
    return [SimpleNamespace(is_saving=flag) for flag in saving]


def test_a_requested_stop_waits_until_no_save_is_in_flight(tune_handler):
    stop = GracefulStop(clock=Clock())
    stop.setup()
    assert stop.request() is True
    assert tune_handler.calls == []  # nothing before the step ends
    stop.on_step_end(iteration=1, trials=trials(False, True))
    assert tune_handler.calls == []  # a report is logged, its checkpoint not yet registered
    stop.on_step_end(iteration=2, trials=trials(False, False))
    assert tune_handler.calls == [signal.SIGUSR1]
    stop.on_step_end(iteration=3, trials=trials(False))
    assert tune_handler.calls == [signal.SIGUSR1]  # forwarded once


def test_ctrl_c_is_held_like_a_request_and_a_second_one_is_passed_on_at_once(tune_handler):
    stop = GracefulStop(clock=Clock())
    stop.setup()
    assert signal.getsignal(signal.SIGINT) == stop._on_sigint
    os.kill(os.getpid(), signal.SIGINT)
    stop.on_step_end(iteration=1, trials=trials(True))
    assert tune_handler.calls == []
    os.kill(os.getpid(), signal.SIGINT)  # pressed again: no more waiting
    assert tune_handler.calls == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is not stop._on_sigint


def test_a_stop_waits_for_saves_at_most_max_wait_s(tune_handler):
    clock = Clock()
    stop = GracefulStop(clock=clock, max_wait_s=60.0)
    stop.setup()
    stop.request()
    clock.now = 59.0
    stop.on_step_end(iteration=1, trials=trials(True))
    assert tune_handler.calls == []
    clock.now = 60.0
    stop.on_step_end(iteration=2, trials=trials(True))
    assert tune_handler.calls == [signal.SIGUSR1]


def test_no_request_no_stop_and_sigint_is_given_back_at_the_end(tune_handler):
    stop = GracefulStop(clock=Clock())
    stop.setup()
    stop.on_step_end(iteration=1, trials=trials(False))
    assert tune_handler.calls == []
    stop.on_experiment_end(trials=[])
    assert signal.getsignal(signal.SIGINT) is tune_handler.handler


def test_without_tunes_handler_a_request_says_it_cannot_stop():
    saved = signal.getsignal(signal.SIGUSR1)
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    try:
        stop = GracefulStop()
        stop.setup()
        assert stop.request() is False
    finally:
        signal.signal(signal.SIGUSR1, saved)


def test_a_restored_callback_starts_clean():
    import pickle

    stop = pickle.loads(pickle.dumps(GracefulStop(max_wait_s=5.0)))
    assert stop._requested_at is None and stop._tune_handler is None
