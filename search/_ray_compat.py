"""The one place where robnas relies on Ray Tune internals (checked against ray 2.60).

- ASHA's rungs: Tune does not save a scheduler's state with the experiment, so robnas reads
  ``ASHAScheduler``'s rungs as plain JSON-able data (:func:`asha_state`) and writes them back
  into a fresh scheduler (:func:`load_asha_state`).
- ``SearchGenerator``'s trial counter and budget, which a resume may raise.
- The trial statuses in Tune's ``experiment_state-*.json``, which a resume reconciles with the
  trials' own result files (:func:`mark_finished`).
- Which packages Ray's dashboard needs (``ray.dashboard.optional_deps``).
- Settings that Tune reads only from ``os.environ``, set around ``tuner.fit()`` by
  :func:`tune_environment` and restored afterwards.
- Whether a trial's checkpoint save is still in flight (``Trial.is_saving``), so a graceful
  stop waits for it (:func:`save_in_flight`).

:func:`check_ray_compat` verifies, when a search starts, that every private attribute used here
still exists with the shape robnas expects, and raises a one-line ``RuntimeError`` otherwise.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from robnas.search._callback_json import check_count, check_record, decode_float, encode_float
from robnas.search._json_state import StateError

TESTED_RAY = "2.40-2.60"
_ASHA_STATE_KEYS = {"brackets": list, "trial_brackets": dict, "num_stopped": int, "counter": int}


def _incompatible(component: str, detail: str) -> RuntimeError:
    import ray

    return RuntimeError(
        f"robnas: Ray {ray.__version__} changed {component} internals ({detail}); "
        f"robnas is tested with ray {TESTED_RAY}"
    )


# --------------------------------------------------------------------------- ASHA rungs


def _check_asha(scheduler: Any) -> None:
    """The ``AsyncHyperBandScheduler`` attributes robnas reads and writes (ray 2.60):
    ``_brackets``: list of ``_Bracket`` whose ``_rungs`` is a list of ``(milestone, {trial_id:
    reward})`` in descending milestone order; ``_trial_info``: ``{trial_id: _Bracket}`` (one of
    ``_brackets``); ``_num_stopped`` and ``_counter``: ints."""
    for name in ("_brackets", "_trial_info", "_num_stopped", "_counter"):
        if not hasattr(scheduler, name):
            raise _incompatible("ASHAScheduler", f"no {name}")
    if not isinstance(scheduler._brackets, list) or not scheduler._brackets:
        raise _incompatible("ASHAScheduler", "_brackets is not a non-empty list")
    if not isinstance(scheduler._trial_info, dict):
        raise _incompatible("ASHAScheduler", "_trial_info is not a dict")
    for bracket in scheduler._brackets:
        rungs = getattr(bracket, "_rungs", None)
        if not isinstance(rungs, list):
            raise _incompatible("ASHAScheduler", "no _Bracket._rungs list")
        for rung in rungs:
            if not (isinstance(rung, tuple) and len(rung) == 2 and isinstance(rung[1], dict)):
                raise _incompatible("ASHAScheduler", "a rung is not (milestone, {trial_id: reward})")


def asha_state(scheduler: Any) -> dict[str, Any]:
    """``scheduler``'s rungs and counters as JSON-able data.

    ``brackets``: per bracket, its rungs as ``[milestone, {trial_id: reward}]`` (reward =
    metric signed by mode; NaN as ``null``, infinities as ``"inf"``/``"-inf"``), in Ray's order;
    ``trial_brackets``: ``{trial_id: bracket index}`` of the trials in play.
    """
    _check_asha(scheduler)
    brackets = scheduler._brackets  # ray 2.60: list[_Bracket]
    index = {id(bracket): i for i, bracket in enumerate(brackets)}
    return {
        "brackets": [
            [[milestone, {str(t): encode_float(r) for t, r in recorded.items()}] for milestone, recorded in b._rungs]
            for b in brackets  # ray 2.60: _Bracket._rungs = [(milestone, {trial_id: reward})]
        ],
        # ray 2.60: _trial_info = {trial_id: _Bracket}, the bracket objects of _brackets
        "trial_brackets": {str(t): index[id(b)] for t, b in scheduler._trial_info.items()},
        "num_stopped": int(scheduler._num_stopped),  # ray 2.60: int
        "counter": int(scheduler._counter),  # ray 2.60: int (unused by Ray, kept as it was)
    }


def load_asha_state(scheduler: Any, data: Any, source: str) -> None:
    """Put :func:`asha_state` output into ``scheduler``, which must have the same brackets and
    milestones. Everything is checked before anything is changed; errors name ``source``."""
    _check_asha(scheduler)
    check_record(data, _ASHA_STATE_KEYS, source)
    brackets = scheduler._brackets  # ray 2.60: list[_Bracket]
    saved = data["brackets"]
    if len(saved) != len(brackets):
        raise StateError(f"{source}: {len(saved)} saved brackets, the scheduler has {len(brackets)}")
    rungs: list[list[dict[str, float]]] = []
    for i, (bracket, saved_rungs) in enumerate(zip(brackets, saved)):
        where = f"{source}: bracket {i}"
        mine = [milestone for milestone, _ in bracket._rungs]  # ray 2.60: descending milestones
        if not isinstance(saved_rungs, list) or not all(
            isinstance(r, list) and len(r) == 2 and isinstance(r[1], dict) for r in saved_rungs
        ):
            raise StateError(f"{where} must be a list of [milestone, {{trial_id: reward}}]")
        theirs = [r[0] for r in saved_rungs]
        if not _same_milestones(theirs, mine):
            raise StateError(f"{where}: saved rung milestones {theirs} differ from {mine}")
        rungs.append([
            {t: decode_float(r, f"{where} milestone {m} trial {t!r}") for t, r in recorded.items()}
            for m, recorded in saved_rungs
        ])
    trial_brackets = data["trial_brackets"]
    for trial_id, i in trial_brackets.items():
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(brackets):
            raise StateError(f"{source}: trial {trial_id!r} has bracket {i!r}, not in 0..{len(brackets) - 1}")
    num_stopped = check_count(data["num_stopped"], f"{source}: num_stopped")
    counter = check_count(data["counter"], f"{source}: counter")

    for bracket, recorded_per_rung in zip(brackets, rungs):
        for (_, recorded), saved_recorded in zip(bracket._rungs, recorded_per_rung):  # ray 2.60
            recorded.clear()  # keep Ray's dict objects and milestones, replace the contents
            recorded.update(saved_recorded)
    scheduler._trial_info = {t: brackets[i] for t, i in trial_brackets.items()}  # ray 2.60
    scheduler._num_stopped = num_stopped  # ray 2.60
    scheduler._counter = counter  # ray 2.60


def _same_milestones(saved: list[Any], mine: list[Any]) -> bool:
    return len(saved) == len(mine) and all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and math.isclose(s, m, rel_tol=1e-12)
        for s, m in zip(saved, mine)
    )


# --------------------------------------------------------------------------- SearchGenerator


def _check_search_generator(generator: Any) -> None:
    """ray 2.60 ``SearchGenerator``: ``_counter`` (trials created), ``_total_samples`` (budget),
    ``_finished`` (the searcher said FINISHED); ``is_finished()`` reads all three."""
    for name in ("_counter", "_total_samples", "_finished"):
        if not hasattr(generator, name):
            raise _incompatible("SearchGenerator", f"no {name}")
    saved = generator._counter, generator._total_samples, generator._finished
    try:  # the budget a resume raises must be what is_finished() reads
        generator._counter, generator._total_samples, generator._finished = 1, 2, False
        open_budget = not generator.is_finished()
        generator._finished = True
        closes = generator.is_finished()
    finally:
        generator._counter, generator._total_samples, generator._finished = saved
    if not (open_budget and closes):
        raise _incompatible("SearchGenerator", "is_finished() ignores _counter/_total_samples/_finished")


def trials_created(generator: Any) -> int:
    """Trials the generator has created so far."""
    return generator._counter  # ray 2.60


def set_trial_budget(generator: Any, total_samples: int) -> None:
    """Let ``generator`` create trials until ``total_samples`` exist, even if it had finished."""
    generator._total_samples = total_samples  # ray 2.60
    reopen_search_generator(generator)


def reopen_search_generator(generator: Any) -> None:
    """Clear the flag a ``SearchGenerator`` sets when its searcher said FINISHED (restored with
    the search state), so that a restored search whose budget was raised creates trials again."""
    generator._finished = False  # ray 2.60


# --------------------------------------------------------------------------- environment


@contextlib.contextmanager
def tune_environment(*, state_period_s: str) -> Iterator[None]:
    """Set the options Tune reads only from ``os.environ`` while active, then restore them.

    ``TUNE_GLOBAL_CHECKPOINT_S`` (ray 2.60: read by ``TuneController.__init__`` inside
    ``tuner.fit()``): seconds between experiment-state checkpoints. ``RAY_AIR_NEW_OUTPUT=0``
    (ray 2.60: read in ``tune.run``): Tune's legacy reporter, quiet at ``verbose=0``, since
    progress is robnas's own; a value the user set is kept.
    """
    wanted = {"TUNE_GLOBAL_CHECKPOINT_S": state_period_s}
    if "RAY_AIR_NEW_OUTPUT" not in os.environ:
        wanted["RAY_AIR_NEW_OUTPUT"] = "0"
    previous = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def workers_at_normal_priority() -> None:
    """Start the worker processes of a new local Ray instance at the driver's priority.

    Ray (2.60: the ``worker_niceness`` config, read from ``RAY_worker_niceness`` when the local
    raylet starts) runs workers at niceness 15, so on a machine where anything else runs the
    trials get almost no CPU. A value the user set is kept. Call before ``ray.init``.
    """
    os.environ.setdefault("RAY_worker_niceness", "0")


def save_in_flight(trial: Any) -> bool:
    """True while Tune has processed a trial's report but not yet registered its checkpoint.

    Tune (2.60) logs a report, then asks the trial's actor for the checkpoint in a separate
    task; ``Trial.is_saving`` is true until that task's result is processed. An experiment
    stopped in between saves a state without that checkpoint, and a resume trains the epoch
    again although its row is already written.
    """
    return bool(getattr(trial, "is_saving", False))


# --------------------------------------------------------------------------- experiment state

#: Statuses of trials that a restored Tune experiment does not run again.
FINISHED_STATUSES = ("TERMINATED", "ERROR")


def newest_experiment_state(path: Path) -> Path | None:
    """The ``experiment_state-*.json`` Tune restores ``path`` from (the newest), if any."""
    files = sorted(Path(path).glob("experiment_state-*.json"))
    return files[-1] if files else None


def unfinished_trials(state_file: Path) -> dict[str, str]:
    """``{trial_id: trial directory name}`` of the trials Tune's state file lists as not
    finished (ray 2.60: ``trial_data`` is a list of ``[trial JSON, run metadata JSON]``)."""
    data = json.loads(state_file.read_text(encoding="utf-8"))
    unfinished = {}
    for trial_json, _ in data["trial_data"]:
        trial = json.loads(trial_json)
        if trial["status"] not in FINISHED_STATUSES:
            unfinished[str(trial["trial_id"])] = str(trial["relative_logdir"])
    return unfinished


def mark_finished(state_file: Path, last_results: dict[str, dict[str, Any]]) -> None:
    """Rewrite Tune's state file (atomically) with the trials ``last_results`` names marked
    ``TERMINATED``, each with that last result: a restore then keeps them as finished."""
    from robnas.trainables._layout import atomic_write_json

    data = json.loads(state_file.read_text(encoding="utf-8"))
    for entry in data["trial_data"]:
        trial, metadata = json.loads(entry[0]), json.loads(entry[1])
        result = last_results.get(str(trial["trial_id"]))
        if result is None:
            continue
        trial["status"] = "TERMINATED"
        metadata["last_result"] = result
        if isinstance(result.get("timestamp"), (int, float)):
            metadata["last_result_time"] = float(result["timestamp"])
        entry[0], entry[1] = json.dumps(trial), json.dumps(metadata)
    atomic_write_json(state_file, data)


def release_slots(limiter: Any, finished: Callable[[str], bool]) -> list[str]:
    """Free the slots of a restored ``ConcurrencyLimiter`` held by trials that ``finished(trial_id)``
    says are over, and return their ids (ray 2.60: ``live_trials``, ``num_unfinished_live_trials``).

    The limiter's state is saved with Tune's, but a trial robnas marks finished before a resume
    (``robnas.search._reconcile``) is never reported to it again: its slot would stay held, and
    with every slot held the restored search waits for ever."""
    stale = sorted(t for t in limiter.live_trials if finished(t))
    if stale:
        limiter.live_trials = set(limiter.live_trials) - set(stale)
        limiter.num_unfinished_live_trials = max(0, limiter.num_unfinished_live_trials - len(stale))
    return stale


# --------------------------------------------------------------------------- ConcurrencyLimiter


def _check_concurrency_limiter() -> None:
    """ray 2.60 ``ConcurrencyLimiter``: a set ``live_trials`` and an int ``num_unfinished_live_trials``."""
    from ray.tune.search import ConcurrencyLimiter, Searcher

    limiter = ConcurrencyLimiter(Searcher(metric="score", mode="max"), max_concurrent=1)
    if not isinstance(getattr(limiter, "live_trials", None), set):
        raise _incompatible("ConcurrencyLimiter", "no live_trials set")
    if not isinstance(getattr(limiter, "num_unfinished_live_trials", None), int):
        raise _incompatible("ConcurrencyLimiter", "no num_unfinished_live_trials count")


# --------------------------------------------------------------------------- the dashboard


def missing_dashboard_package() -> str | None:
    """The first package Ray's dashboard needs that is not installed (``None`` if all are): Ray
    lists them in ``ray.dashboard.optional_deps``, installed by ``ray[default]``."""
    import importlib

    try:
        importlib.import_module("ray.dashboard.optional_deps")
    except ImportError as error:
        return error.name or str(error)
    return None


# --------------------------------------------------------------------------- the check


def _check_trial() -> None:
    from ray.tune.experiment import Trial

    if not isinstance(getattr(Trial, "is_saving", None), property):
        raise _incompatible("Trial", "has no is_saving property")


def check_ray_compat() -> None:
    """Raise a one-line ``RuntimeError`` if Ray's internals that robnas uses have changed."""
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import SearchGenerator, Searcher

    _check_asha(ASHAScheduler(metric="score", mode="max", max_t=4, grace_period=1, reduction_factor=2))
    _check_search_generator(SearchGenerator(Searcher()))
    _check_concurrency_limiter()
    _check_trial()
