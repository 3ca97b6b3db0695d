"""Ray Tune orchestration: schedulers, searchers, resume and the ``robnas`` command line.

``run(...)`` starts a search and ``resume(path)`` continues one; both return Ray Tune's
``ResultGrid``. Importing this package does not start or import Ray.
"""

from robnas.search._run import ExperimentExistsError, read_settings, resume, run
from robnas.search._settings import SCHEDULERS, SearchSettings
from robnas.search._searchers import SEARCHERS

__all__ = [
    "SCHEDULERS",
    "SEARCHERS",
    "ExperimentExistsError",
    "SearchSettings",
    "read_settings",
    "resume",
    "run",
]
