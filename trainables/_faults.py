"""Fault injection for tests of the search's fault tolerance: a trial that fails once.

``fault_rate`` is the probability (per trial) that the trial raises ``InjectedFault`` once, at
an epoch drawn in ``2..max_epochs`` (after at least one checkpoint, so the retry has something
to resume from). The draw is a function of ``fault_seed`` and the trial id (CRC-32, not
Python's ``hash``), so a search is reproducible. Only an attempt that started from scratch
fails: the retry, restored from a checkpoint by Tune, runs through.
"""

from __future__ import annotations

import random
import zlib


class InjectedFault(RuntimeError):
    """Raised on purpose by a trial with fault injection on."""


def failing_epoch(trial_id: str, *, rate: float, seed: int, max_epochs: int) -> int | None:
    """The 1-based epoch at which trial ``trial_id`` fails once, or None if it never does."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"fault_rate must be in [0, 1], got {rate!r}")
    if max_epochs < 2:
        return None
    rng = random.Random(zlib.crc32(f"{seed}:{trial_id}".encode()))
    fails = rng.random() < rate
    epoch = rng.randint(2, max_epochs)
    return epoch if fails else None


def maybe_fail(epoch: int, failing: int | None, *, restored: bool) -> None:
    """Raise ``InjectedFault`` when ``epoch`` is the failing one of a first (unrestored) attempt."""
    if failing is not None and epoch == failing and not restored:
        raise InjectedFault(f"injected fault at epoch {epoch}")
