"""Fault injection for tests of the search's fault tolerance: a trainable whose trials fail once.

``failing_trainable(rate, seed=...)`` is ``robust_trainable`` with faults: each trial raises
``InjectedFault`` once with probability ``rate``, at an epoch drawn in ``2..max_epochs`` (after
at least one checkpoint, so the retry has something to resume from). The draw is a function of
``seed`` and the trial id (CRC-32, not Python's ``hash``), so a search is reproducible. Only an
attempt that started from scratch fails: the retry, restored from a checkpoint by Tune, runs
through. Select it explicitly: ``robnas.search.run(..., trainable=failing_trainable(0.5))``.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from robnas.search._trainables import open_epochs, report_epochs

if TYPE_CHECKING:
    from robnas.trainables._epochs import TrialEpochs

__all__ = ["InjectedFault", "failing_epoch", "failing_trainable"]


class InjectedFault(RuntimeError):
    """Raised on purpose by a trial of ``failing_trainable``."""


def failing_epoch(trial_id: str, *, rate: float, seed: int, max_epochs: int) -> int | None:
    """The 1-based epoch at which trial ``trial_id`` fails once, or None if it never does."""
    _check_rate(rate)
    if max_epochs < 2:
        return None
    rng = random.Random(zlib.crc32(f"{seed}:{trial_id}".encode()))
    fails = rng.random() < rate
    epoch = rng.randint(2, max_epochs)
    return epoch if fails else None


def failing_trainable(rate: float, *, seed: int = 0) -> Callable[[dict[str, Any]], None]:
    """A Tune function trainable: ``robust_trainable`` whose trials fail once with probability
    ``rate`` (in [0, 1]) at the epoch ``failing_epoch`` draws for their trial id and ``seed``."""
    _check_rate(rate)

    def fault_trainable(config: dict[str, Any]) -> None:
        from ray import tune

        epochs, restored = open_epochs(config)
        trial_id = tune.get_context().get_trial_id() or ""
        failing = failing_epoch(trial_id, rate=rate, seed=seed, max_epochs=epochs.max_epochs)
        report_epochs(_failing(epochs, failing, restored=restored), epochs.save)

    return fault_trainable


def _failing(epochs: TrialEpochs, failing: int | None, *, restored: bool) -> Iterator[dict[str, Any]]:
    """The reports of ``epochs``; raises ``InjectedFault`` before training epoch ``failing`` of
    an attempt that started from scratch."""
    reports = iter(epochs)
    while True:
        if failing is not None and epochs.next_epoch == failing and not restored:
            raise InjectedFault(f"injected fault at epoch {failing}")
        report = next(reports, None)
        if report is None:
            return
        yield report


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"fault_rate must be in [0, 1], got {rate!r}")
