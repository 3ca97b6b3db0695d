"""A search's trials as an Optuna study in an RDB storage (``sqlite:///runs.db``, ...).

One Optuna trial per robnas trial that finished: ``params`` are its searched config values,
``values`` its objectives at its last epoch, ``intermediate_values`` the first objective per
epoch (Optuna's pruning API is single-objective), and the user attributes ``trial_id``,
``arch``, ``epochs`` (every objective per epoch: ``[{"epoch": 1, "clean_acc": ...}, ...]``),
``status``, ``error`` and ``duplicate_of`` where there is one. States: ``COMPLETE`` for a trial
that trained ``max_epochs`` epochs, ``PRUNED`` for one a scheduler stopped earlier (no values
with several objectives, as Optuna's own pruned trials; the last value with one), ``FAIL`` for
a failed, diverged or catastrophically overfitted trial or one without a finite value for every objective. So
``study.best_trials`` is the search's Pareto front over its full-length trials.

Distributions come from the searcher's saved space (``robnas-searcher-state-*.json``) where a
value fits it, else from the values the trials took: integers as an ``IntDistribution`` and
numbers as a ``FloatDistribution`` over their range, anything else as a
``CategoricalDistribution``. The keys are ``searched_keys`` of ``robnas.json`` (else those of
the saved space, else the config keys whose values differ between trials).

Writing again adds only the trials not in the study yet (matched by ``trial_id``): a search
can be written while it runs and again when it has finished or been extended. A study of the
same name holding another search, or other objectives, is refused.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from robnas.analysis._front import FrontResult, finished_order, objective_values
from robnas.analysis._load import SETTINGS_FILE, Experiment
from robnas.analysis._paths import check_outside_searches
from robnas.spaces._objectives import Objective
from robnas.spaces._runtime import RUNTIME_KEYS
from robnas.trainables._layout import read_params

SEARCHER_STATES = "robnas-searcher-state-*.json"
_DIRECTIONS = {"max": "maximize", "min": "minimize"}


@dataclass(frozen=True)
class StudyExport:
    """What :func:`write_study` did: the study's name, the storage (its password hidden), the
    trial ids added, those already in the study, and those not finished (not written)."""

    name: str
    storage: str
    added: tuple[str, ...] = ()
    already: tuple[str, ...] = ()
    unfinished: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class StudyPlan:
    """A checked storage and study name, the study if it exists, and the trials to add."""

    storage: Any
    name: str
    shown: str
    study: Any
    trials: list = field(default_factory=list)
    export: StudyExport | None = None


def prepare_study(
    storage: Any, experiment: Experiment, result: FrontResult, *, study_name: str | None = None
) -> StudyPlan:
    """Open ``storage`` (an RDB URL or an Optuna storage), check that the study (default name:
    the experiment's) is new or holds this search on the same objectives, and build the trials
    to add. Writes nothing; ValueError (one line) on a bad URL or a clashing study."""
    import optuna

    shown = hide_password(storage) if isinstance(storage, str) else type(storage).__name__
    name = study_name if study_name is not None else str(experiment.settings.get("name") or experiment.path.name)
    if not name:
        raise ValueError("the Optuna study name must not be empty")
    if isinstance(storage, str):
        _check_database_file(storage)
    with _optuna_errors(shown):
        if isinstance(storage, str):
            storage = optuna.storages.RDBStorage(storage)
        study = optuna.load_study(study_name=name, storage=storage) if name in optuna.get_all_study_names(storage) else None
    objectives = result.objectives
    ids = set()
    if study is not None:
        with _optuna_errors(shown):
            metric_names = study.metric_names
            ids = {str(t.user_attrs.get("trial_id")) for t in study.get_trials(deepcopy=False)}
        _check_same_search(study, metric_names, name, experiment, objectives)
    trials, added, already, unfinished = [], [], [], []
    finished = set(finished_order(result.trials, max_epochs=experiment.max_epochs)["trial_id"].astype(str))
    distributions = _distributions(experiment)
    for row in result.trials.to_dict("records"):
        trial_id = str(row["trial_id"])
        if trial_id not in finished:
            unfinished.append(trial_id)
        elif trial_id in ids:
            already.append(trial_id)
        else:
            trials.append(_frozen_trial(row, experiment, objectives, distributions))
            added.append(trial_id)
    export = StudyExport(name, shown, tuple(added), tuple(already), tuple(unfinished))
    return StudyPlan(storage, name, shown, study, trials, export)


def write_study(plan: StudyPlan, experiment: Experiment, objectives: Sequence[Objective]) -> StudyExport:
    """Create the study of ``plan`` if it is new, and add its trials."""
    import optuna

    with _optuna_errors(plan.shown):
        study = plan.study
        if study is None:
            study = optuna.create_study(storage=plan.storage, study_name=plan.name,
                                        directions=[_DIRECTIONS[o.direction] for o in objectives])
            study.set_metric_names([o.name for o in objectives])
            study.set_user_attr("robnas_experiment", str(experiment.path.resolve()))
            study.set_user_attr("max_epochs", experiment.max_epochs)
        study.add_trials(plan.trials)
    return plan.export


def hide_password(url: str) -> str:
    """``url`` with the password of ``scheme://user:password@host`` replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _check_database_file(url: str) -> None:
    """ValueError if ``url`` is an SQLite file inside a search directory (a study gathers
    searches; it does not belong to one)."""
    if url.startswith("sqlite:///") and url[len("sqlite:///"):] not in ("", ":memory:"):
        check_outside_searches(Path(url[len("sqlite:///"):].split("?")[0]).expanduser())


@contextlib.contextmanager
def _optuna_errors(shown: str) -> Iterator[None]:
    """Optuna's log and experimental warnings quiet, and any error of the storage as one
    ValueError line."""
    import optuna
    from optuna.exceptions import ExperimentalWarning

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            yield
    except Exception as error:  # sqlalchemy, a missing driver, a locked database: all one line
        lines = str(error).strip().splitlines()
        reason = " ".join(lines[0].split())[:200] if lines else type(error).__name__
        raise ValueError(f"cannot use the Optuna storage {shown}: {reason}") from None
    finally:
        optuna.logging.set_verbosity(verbosity)


def _check_same_search(study, metric_names: list[str] | None, name: str, experiment: Experiment,
                       objectives: Sequence[Objective]) -> None:
    ours = str(experiment.path.resolve())
    theirs = study.user_attrs.get("robnas_experiment")
    if theirs != ours:
        held = f"the search {theirs}" if theirs else "no robnas search"
        raise ValueError(f"the Optuna study {name!r} holds {held}; choose another --study-name")
    wanted = [_DIRECTIONS[o.direction] for o in objectives]
    directions = [d.name.lower() for d in study.directions]
    names = metric_names or [o.name for o in objectives]
    if directions != wanted or list(names) != [o.name for o in objectives]:
        have = ", ".join(f"{n} ({d})" for n, d in zip(names, directions))
        raise ValueError(f"the Optuna study {name!r} has the objectives {have}, not "
                         f"{', '.join(str(o) for o in objectives)}; choose another --study-name")


def _frozen_trial(row: dict[str, Any], experiment: Experiment, objectives: Sequence[Objective],
                  distributions: dict[str, Any]):
    import optuna
    from optuna.trial import TrialState

    trial_id = str(row["trial_id"])
    values = objective_values(pd.DataFrame([row]), objectives)[0].tolist()
    epoch = int(row["epoch"]) if pd.notna(row.get("epoch")) else 0
    failed = (row.get("status") == "ERROR" or row.get("diverged") is True
              or row.get("catastrophic_overfit") is True or epoch <= 0)
    if failed or not all(math.isfinite(v) for v in values):
        state, kept = TrialState.FAIL, None
    elif epoch >= experiment.max_epochs:
        state, kept = TrialState.COMPLETE, values
    else:
        state, kept = TrialState.PRUNED, values if len(values) == 1 else None
    history = experiment.results[experiment.results["trial_id"].astype(str) == trial_id]
    epochs = [{"epoch": int(r["epoch"]), **{o.name: _number(r.get(o.name)) for o in objectives}}
              for r in history.to_dict("records")]
    first = objectives[0].name
    config = _config(experiment, row)
    params = {k: _plain(config[k]) for k in distributions if k in config}
    attrs = {"trial_id": trial_id, "arch": str(row.get("arch") or ""), "epochs": epochs,
             "status": str(row.get("status"))}
    for key in ("error", "duplicate_of"):
        if row.get(key):
            attrs[key] = str(row[key])
    trial = optuna.trial.create_trial(
        state=state, values=kept, params=params,
        distributions={k: distributions[k] for k in params}, user_attrs=attrs,
        intermediate_values={e["epoch"]: e[first] for e in epochs if e[first] is not None},
    )
    start, end = _time(row.get("started_at")), _time(row.get("finished_at"))
    if start is not None:
        trial.datetime_start = start
    if end is not None and end >= trial.datetime_start:
        trial.datetime_complete = end
    return trial


def _config(experiment: Experiment, row: dict[str, Any]) -> dict[str, Any]:
    directory = row.get("trial_dir")
    return (read_params(experiment.path / directory) if directory else None) or {}


def _distributions(experiment: Experiment) -> dict[str, Any]:
    """Searched key -> the distribution every trial's value fits (see the module's docstring)."""
    configs = [_config(experiment, row) for row in experiment.trials.to_dict("records")]
    saved = _saved_space(experiment.path)
    keys = _searched_keys(experiment.path)
    if keys is None:
        keys = sorted(saved) or sorted(k for k in {k for c in configs for k in c} - set(RUNTIME_KEYS)
                                       if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1)
    distributions = {}
    for key in keys:
        values = [_plain(c[key]) for c in configs if key in c]
        if not values:
            continue
        fits = key in saved and all(_contains(saved[key], v) for v in values)
        distributions[key] = saved[key] if fits else _inferred(values)
    return distributions


def _inferred(values: list[Any]):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        if all(isinstance(v, int) for v in values):
            return IntDistribution(min(values), max(values))
        return FloatDistribution(float(min(values)), float(max(values)))
    numbers = sorted({v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)})
    rest = sorted({v for v in values if v not in numbers}, key=lambda v: json.dumps(v))
    return CategoricalDistribution([*numbers, *rest])


def _contains(distribution, value: Any) -> bool:
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def _saved_space(path: Path) -> dict[str, Any]:
    """The distributions of the newest searcher state of ``path`` ({} if none reads)."""
    from optuna.distributions import json_to_distribution

    files = sorted(path.glob(SEARCHER_STATES))
    try:
        state = json.loads(files[-1].read_text(encoding="utf-8")) if files else {}
        space = state.get("space") if isinstance(state, dict) and state.get("kind") == "searcher" else None
        return {str(k): json_to_distribution(v) for k, v in space.items()} if isinstance(space, dict) else {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return {}


def _searched_keys(path: Path) -> list[str] | None:
    try:
        keys = json.loads((path / SETTINGS_FILE).read_text(encoding="utf-8")).get("searched_keys")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return [str(k) for k in keys] if isinstance(keys, list) else None


def _plain(value: Any) -> Any:
    """A config value as an Optuna parameter: lists and mappings as their JSON text."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _time(value: Any) -> datetime.datetime | None:
    number = _number(value)
    return datetime.datetime.fromtimestamp(number) if number is not None else None
