"""Fault injection for tests of the search's fault tolerance: a trial that fails once.

``fault_rate`` is the probability (per trial) that the trial raises ``InjectedFault`` once, at
an epoch drawn in ``1..max_epochs``. The draw is a function of ``fault_seed`` and the trial id
(CRC-32, not Python's ``hash``), so a search is reproducible; a marker file in the trial's
directory makes the retried trial succeed.
"""

from __future__ import annotations

import random
import zlib
from pathlib import Path

MARKER = "fault_injected"


class InjectedFault(RuntimeError):
    """Raised on purpose by a trial with fault injection on."""


def failing_epoch(trial_id: str, *, rate: float, seed: int, max_epochs: int) -> int | None:
    """The 1-based epoch at which trial ``trial_id`` fails once, or None if it never does."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"fault_rate must be in [0, 1], got {rate!r}")
    rng = random.Random(zlib.crc32(f"{seed}:{trial_id}".encode()))
    fails = rng.random() < rate
    epoch = rng.randint(1, max_epochs)
    return epoch if fails else None


def maybe_fail(trial_dir: str | Path | None, epoch: int, failing: int | None) -> None:
    """Raise ``InjectedFault`` when ``epoch`` is the failing one and no earlier attempt failed."""
    if failing is None or epoch != failing or trial_dir is None:
        return
    marker = Path(trial_dir) / MARKER
    if marker.exists():
        return
    marker.write_text(f"failed once at epoch {epoch}\n")
    raise InjectedFault(f"injected fault at epoch {epoch}")
