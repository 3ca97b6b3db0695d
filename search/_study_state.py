"""The files of a ``StudySearcher``'s state: the Optuna trials as JSON, the newest state of a
search, and raising its trial budget before a resume."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from robnas.search._json_state import StateError, read_state, write_state

STATE_KIND = "searcher"
STATE_VERSION = 1
STATE_PATTERN = "robnas-searcher-state-{}.json"


def trials_to_json(study) -> list[dict[str, Any]]:
    """Every trial of an Optuna ``study``, in number order, as JSON-ready dicts."""
    from optuna.distributions import distribution_to_json

    return [{
        "state": t.state.name, "values": t.values, "params": t.params,
        "distributions": {k: distribution_to_json(d) for k, d in t.distributions.items()},
        "system_attrs": t.system_attrs, "user_attrs": t.user_attrs,
    } for t in study.get_trials(deepcopy=False)]


def trials_from_json(trials: list[Any]) -> list:
    """The ``FrozenTrial``s of :func:`trials_to_json`'s output (add them to a new study)."""
    import optuna
    from optuna.distributions import json_to_distribution

    return [optuna.trial.create_trial(
        state=trial_state(t["state"]), values=t["values"], params=t["params"],
        distributions={k: json_to_distribution(d) for k, d in t["distributions"].items()},
        system_attrs=t["system_attrs"], user_attrs=t["user_attrs"],
    ) for t in trials]


def trial_state(name: str):
    """Optuna's ``TrialState`` called ``name``."""
    from optuna.trial import TrialState

    try:
        return TrialState[name]
    except KeyError:
        raise StateError(f"unknown trial state {name!r}") from None


def saved_state(experiment_dir: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The newest searcher state file of a search and its content, read and checked as JSON
    (StateError if it is damaged), or None if the search has saved none yet."""
    paths = glob.glob(os.path.join(glob.escape(str(experiment_dir)), STATE_PATTERN.format("*")))
    if not paths:
        return None
    path = Path(max(paths))
    return path, read_state(path, STATE_KIND, STATE_VERSION)


def set_budget(experiment_dir: str | os.PathLike, budget: int) -> Path:
    """Set the trial budget in the newest searcher state of a search (to extend it on resume)."""
    saved = saved_state(experiment_dir)
    if saved is None:
        raise StateError(f"{experiment_dir} has no saved searcher state ({STATE_PATTERN.format('*')})")
    path, state = saved
    state["budget"] = int(budget)
    write_state(path, STATE_KIND, STATE_VERSION, {k: v for k, v in state.items() if k not in ("kind", "version")})
    return path



def progress(experiment_dir: str | os.PathLike) -> tuple[int, int | None, bool]:
    """``(trials done, trial budget, whether the search is complete)`` from the newest searcher
    state of a search: complete when the space is exhausted, or every launched trial is done
    and the budget is used up."""
    saved = saved_state(experiment_dir)
    if saved is None:
        return 0, None, False
    state = saved[1]
    launched = state.get("launched") or {}
    done = sum(bool(launch.get("done")) for launch in launched.values() if isinstance(launch, dict))
    budget = state.get("budget")
    complete = bool(state.get("exhausted")) or (
        done == len(launched) and isinstance(budget, int) and len(launched) >= budget
    )
    return done, budget, complete
