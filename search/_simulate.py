"""A search's searcher driven without Ray: one trial at a time, results from a function.

``simulate(settings)`` builds the searcher ``robnas search`` builds for ``settings``
(``make_search_algorithm``) and drives it as Tune does with one trial running and a FIFO
scheduler: ``suggest``, one ``on_trial_result`` per reported epoch, ``on_trial_complete`` with
the last report. The reports come from ``reports_of(config)`` (default: the table backend's
replay), so a search on a results table runs in milliseconds per trial and launches the same
configurations, in the same order, as the same search on Ray with ``max_concurrent=1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from robnas.search._run import _param_space, make_search_algorithm
from robnas.search._settings import SearchSettings

__all__ = ["simulate"]

Reports = list[dict[str, Any]]


def simulate(
    settings: SearchSettings,
    reports_of: Callable[[Mapping[str, Any]], Reports] | None = None,
    *,
    scorer: Callable[[Mapping[str, Any]], Mapping[str, float]] | None = None,
) -> list[tuple[dict[str, Any], Reports]]:
    """``(config, reports)`` of each of ``settings.num_samples`` trials, in launch order.

    ``config`` is the full Tune config (searched and fixed keys). Stops early when the searcher
    has nothing left to suggest. ``scorer``: the screening's proxy scorer (to share a cache).
    """
    if reports_of is None:
        if settings.backend != "table":
            raise ValueError("simulate needs reports_of, or a search on the table backend")
        from robnas.trainables._table import config_reports as reports_of
    from robnas.search._size_limits import size_limits

    space, record = _param_space(settings)
    fixed = {key: value for key, value in space.items() if not hasattr(value, "sample")}
    searcher = make_search_algorithm(settings, scorer=scorer, limits=size_limits(settings, record["resolved_trial"]))
    searcher.set_search_properties(None, None, space)
    trials = []
    for number in range(settings.num_samples):
        trial_id = f"sim_{number:05d}"
        suggestion = searcher.suggest(trial_id)
        if not isinstance(suggestion, dict):  # None or FINISHED: nothing left
            break
        config = {**fixed, **suggestion}
        reports = [{**report, "training_iteration": i} for i, report in enumerate(reports_of(config), start=1)]
        for report in reports:
            searcher.on_trial_result(trial_id, report)
        searcher.on_trial_complete(trial_id, reports[-1])
        trials.append((config, reports))
    return trials
