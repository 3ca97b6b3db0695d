"""Ray Tune's ``SearchGenerator`` with a trial budget that a resume may raise.

Tune saves the number of samples with the search state and restores it on
``Tuner.restore``, so a finished search cannot be extended to more trials. ``robnas resume
--num-samples M`` sets a pending budget that the restored generator adopts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ray.tune.search import SearchGenerator

_pending_budget: int | None = None


@contextlib.contextmanager
def budget_on_restore(num_samples: int | None) -> Iterator[None]:
    """While active, a restored ``BudgetedSearchGenerator`` takes ``num_samples`` as budget."""
    global _pending_budget
    previous, _pending_budget = _pending_budget, num_samples
    try:
        yield
    finally:
        _pending_budget = previous


class BudgetedSearchGenerator(SearchGenerator):
    """Creates trials until ``total_samples`` exist; the budget can grow on restore."""

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        if _pending_budget is not None:
            self._total_samples = _pending_budget
            self._finished = False

    @property
    def num_created(self) -> int:
        """Trials created so far (duplicates rejected by the searcher do not count)."""
        return self._counter
