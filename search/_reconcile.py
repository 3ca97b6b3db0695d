"""Before a resume: trials that finished after Tune's last state save stay finished.

Tune saves its experiment state every few seconds, and copies the trials' result files to the
storage in the background. A search killed between the two leaves trials whose
``result.json`` already holds their last epoch while the state still lists them as running:
a plain restore trains them again from an older checkpoint and rewrites their last rows. So
before Tune restores a search, robnas marks each such trial finished, in the searcher's state
(its result told to the study, as if Tune had reported it) and in Tune's state (``TERMINATED``
with that last result). A finished trial's rows are then never written again (and the
restored search frees its concurrency slot: ``StudySearchGenerator.set_state``).

A trial counts as finished when its last good row is the search's last epoch or reports a
diverged network. Scheduler state is left alone: a finished trial takes no further decision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robnas.search._ray_compat import mark_finished, newest_experiment_state, unfinished_trials
from robnas.search._study_state import saved_state
from robnas.trainables._layout import read_results


def finished_after_last_save(path: Path, max_epochs: int) -> dict[str, dict[str, Any]]:
    """``{trial_id: last result row}`` of the trials Tune's state lists as unfinished whose
    ``result.json`` shows them finished (last epoch ``max_epochs``, diverged, or stopped on
    catastrophic overfitting)."""
    state_file = newest_experiment_state(path)
    if state_file is None:
        return {}
    finished = {}
    for trial_id, dirname in unfinished_trials(state_file).items():
        rows = read_results(path / dirname)
        last = rows[-1] if rows else {}
        if rows and (last.get("epoch") == max_epochs or last.get("diverged") is True
                     or last.get("stopped_on_overfit") is True):
            finished[trial_id] = rows[-1]
    return finished


def reconcile(path: Path, max_epochs: int, searcher) -> list[str]:
    """Mark the trials of :func:`finished_after_last_save` finished in the saved state of
    ``searcher`` (the search's new, unrestored ``StudySearcher``) and in Tune's; returns their
    ids. Writes nothing when there are none."""
    finished = finished_after_last_save(path, max_epochs)
    if not finished:
        return []
    saved = saved_state(path)
    if saved is not None:
        searcher.restore(saved[0])
        for trial_id, row in finished.items():
            searcher.on_trial_complete(trial_id, result=row)
        searcher.save(saved[0])
    mark_finished(newest_experiment_state(path), finished)
    return sorted(finished)
