"""Ray Tune orchestration: schedulers, searchers, resume and the ``robnas`` command line.

``run(...)`` starts a search and ``resume(path)`` continues one; both return Ray Tune's
``ResultGrid``; ``robust_trainable`` and ``table_trainable`` are the Ray Tune function
trainables they run. ``simulate(settings)`` drives the same searcher without Ray, one trial at a
time, on a results table (``--backend table``). Importing this package does not start Ray.
"""

from robnas.search._run import ExperimentExistsError, make_search_algorithm, read_settings, resume, run
from robnas.search._settings import SCHEDULERS, SearchSettings
from robnas.search._searchers import SEARCHERS
from robnas.search._simulate import simulate
from robnas.search._trainables import robust_trainable, table_trainable


def __getattr__(name: str):
    if name == "StudySearcher":  # imports Ray: only on first use
        from robnas.search._study import StudySearcher

        return StudySearcher
    raise AttributeError(f"module 'robnas.search' has no attribute {name!r}")


__all__ = [
    "SCHEDULERS",
    "SEARCHERS",
    "ExperimentExistsError",
    "SearchSettings",
    "StudySearcher",
    "make_search_algorithm",
    "read_settings",
    "resume",
    "robust_trainable",
    "run",
    "simulate",
    "table_trainable",
]
