"""``run()`` starts a search and ``resume()`` continues one; both return Tune's ``ResultGrid``.

A search is a normal Ray Tune experiment directory ``STORAGE/NAME`` (readable with
``tune.ExperimentAnalysis`` or ``Tuner.restore``) plus ``robnas.json``: the settings, the
trial keys every trial shares with each default filled in (``resolved_trial``), the keys the
space searches (``searched_keys``), the seconds the search has run (``elapsed_s``) and the
library versions. Trials, also resumed ones, get the recorded ``resolved_trial`` values for
the keys their config lacks.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robnas.search._elapsed import ELAPSED_KEY
from robnas.search._lock import empty_directory, experiment_lock
from robnas.search._ray_compat import check_ray_compat, tune_environment
from robnas.search._settings import SearchSettings, resolve_path
from robnas.search._storage import check_storage, stopped_for_storage
from robnas.search._units import format_duration
from robnas.spaces._resolve import complete_record
from robnas.trainables._layout import SEARCH_SETTINGS_FILE as SETTINGS_FILE
from robnas.trainables._layout import atomic_write_json

# Tune saves the experiment state (trials, searcher, scheduler) at most this often, seconds.
STATE_PERIOD_S = "2"


def trial_dirname(trial) -> str:
    """Short trial directory names: ``trial_<id>`` (the config is in each trial's params.json)."""
    return f"trial_{trial.trial_id}"


class ExperimentExistsError(ValueError):
    """The experiment directory exists and neither resume nor overwrite was asked for."""


def run(
    settings: SearchSettings | None = None,
    *,
    resume_existing: bool = False,
    overwrite: bool = False,
    trainable: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
):
    """Run a search and return its ``ray.tune.ResultGrid``.

    Args:
        settings: the search's options (default: the default digits search).
        resume_existing: continue the experiment if its directory exists.
        overwrite: delete an existing experiment directory first.
        trainable: a Tune function trainable ``config -> None`` run instead of the built-in
            one (``robust_trainable``, or ``table_trainable`` for ``backend="table"``), e.g.
            ``robnas.search._faults.failing_trainable(0.5)`` in fault-tolerance tests. It gets
            the same config and resources; pass it again to ``resume``.
        **options: ``SearchSettings`` fields overriding ``settings``.
    """
    check_ray_compat()
    if settings is None:
        settings = SearchSettings.from_mapping(options)
    elif options:
        settings = settings.replace(**options)
    if settings.name is None:
        settings = settings.replace(name=datetime.datetime.now().strftime("search-%Y%m%d-%H%M%S"))
    if resume_existing and overwrite:
        raise ValueError("choose one of resume and overwrite")
    path = settings.experiment_path
    exists = path.exists() and any(path.iterdir())
    if exists and resume_existing:
        return resume(path, trainable=trainable)
    if exists and not overwrite:
        raise ExperimentExistsError(
            f"experiment directory {path} exists; use --resume to continue it or --overwrite to replace it"
        )
    if exists:
        _check_is_experiment(path)
    # Everything is checked and built before the directory is locked or an earlier run touched.
    check_storage(path, 2 * _min_free_bytes(settings))
    from robnas.search._size_limits import size_limits

    param_space, record = _param_space(settings)
    components = _components(settings, path, size_limits(settings, record["resolved_trial"]))
    _init_ray(settings)
    _check_resources(settings)
    with experiment_lock(path):
        if any(path.iterdir()):
            if not overwrite:  # another process created it meanwhile
                raise ExperimentExistsError(f"experiment directory {path} exists")
            _check_is_experiment(path)
            empty_directory(path)
        _write_settings(path, settings, {**record, ELAPSED_KEY: 0.0})
        trainable = _trainable(settings, trainable, defaults=record["resolved_trial"])
        tuner = _new_tuner(settings, param_space, components, trainable)
        return _fit(tuner, path, settings)


def _fit(tuner, path: Path, settings: SearchSettings):
    """``tuner.fit()``; a search that ran out of storage ends with a one-line ``StorageError``."""
    try:
        with tune_environment(state_period_s=STATE_PERIOD_S):
            grid = tuner.fit()
    except Exception as error:
        storage = stopped_for_storage(path, _min_free_bytes(settings), error)
        if storage is not None:
            raise storage from error
        raise
    from robnas.search._study_state import progress

    if not progress(path)[2]:
        storage = stopped_for_storage(path, _min_free_bytes(settings))
        if storage is not None:
            raise storage
    return grid


def _min_free_bytes(settings: SearchSettings) -> float:
    return settings.min_free_mb * 2**20


def resume(
    path: str | os.PathLike,
    *,
    num_samples: int | None = None,
    time_budget_s: float | str | None = None,
    trainable: Callable[[dict[str, Any]], None] | None = None,
):
    """Continue the search in ``path``; finished trials are kept, unfinished ones continue
    from their last checkpoint, and the searcher's and scheduler's state come back.

    Args:
        num_samples: extend the search to this many trials in total (default: as started).
        time_budget_s: the search's new time budget, over all its runs (seconds, or ``"2h"``;
            default: as started). A search whose budget is spent resumes only with a larger one.
        trainable: a Tune function trainable run instead of the built-in one (see ``run``);
            give the one the search was started with.
    """
    check_ray_compat()
    path = resolve_path(path, "run directory")
    read_settings(path)  # a robnas search: never create a directory here
    with experiment_lock(path):
        return _resume(path, num_samples=num_samples, time_budget_s=time_budget_s, trainable=trainable)


def _resume(path: Path, *, num_samples: int | None = None, time_budget_s=None, trainable=None):
    from ray import tune

    from robnas.search._reconcile import reconcile
    from robnas.search._study_state import saved_state, set_budget

    settings = read_settings(path)
    record = read_trial_record(path)
    if num_samples is not None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}")
        settings = settings.replace(num_samples=num_samples)
    if time_budget_s is not None:
        if record is None or ELAPSED_KEY not in record:
            raise ValueError(f"{path} was started before robnas kept a search's running time; it takes no time budget")
        settings = settings.replace(time_budget_s=time_budget_s)
    check_time_left(path, settings.time_budget_s, record.get(ELAPSED_KEY) if record else None)
    if not tune.Tuner.can_restore(str(path)):
        raise ValueError(f"{path} has no saved search state to resume from")
    saved_state(path)  # robnas's own state is checked before anything runs or changes
    _check_tune_state(path)
    check_storage(path, 2 * _min_free_bytes(settings))
    _init_ray(settings)
    # Tune restores each trial's config as it was sampled; the recorded resolved values fill
    # in the rest, so a default changed since the search started does not reach its trials.
    defaults = record["resolved_trial"] if record else None
    tuner = tune.Tuner.restore(
        str(path),
        trainable=_trainable(settings, trainable, defaults=defaults),
        resume_unfinished=True,
        resume_errored=True,
    )
    # The first writes, once the restore has succeeded.
    reconcile(path, settings.max_epochs, make_search_algorithm(settings))
    if num_samples is not None:
        set_budget(path, num_samples)
    if num_samples is not None or time_budget_s is not None:
        _write_settings(path, settings, record)
    return _fit(tuner, path, settings)


def read_settings(path: str | os.PathLike) -> SearchSettings:
    """The settings a search in ``path`` was started with (from its ``robnas.json``)."""
    from robnas.analysis._load import read_search_settings

    path = Path(path)
    return SearchSettings.from_mapping(read_search_settings(path), source=str(path / SETTINGS_FILE))


def read_trial_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """``{"resolved_trial": {key: value}, "searched_keys": [key, ...], "score_scales": {name:
    [low, high]}, "elapsed_s": seconds}`` from ``path``'s ``robnas.json`` (``elapsed_s`` only
    when recorded); ``None`` for a search started before robnas recorded them. A key added to
    the trial keys after the search started gets the value its trials had
    (``robnas.spaces._resolve.complete_record``).

    Raises:
        ValueError: the file cannot be read, or holds a malformed record.
    """
    file = Path(path) / SETTINGS_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"cannot read {file}: {error}") from None
    if not isinstance(data, dict) or "resolved_trial" not in data:
        return None
    resolved, searched = data["resolved_trial"], data.get("searched_keys", [])
    if not isinstance(resolved, dict) or not isinstance(searched, list):
        raise ValueError(f"{file}: resolved_trial must be a mapping and searched_keys a list")
    scales = data.get("score_scales", {})
    if not isinstance(scales, dict):
        raise ValueError(f"{file}: score_scales must be a mapping")
    record = {"resolved_trial": complete_record(resolved), "searched_keys": searched, "score_scales": scales}
    elapsed = data.get(ELAPSED_KEY)
    if elapsed is not None:
        if isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) or not elapsed >= 0:
            raise ValueError(f"{file}: {ELAPSED_KEY} must be a number of seconds >= 0")
        record[ELAPSED_KEY] = float(elapsed)
    return record


def check_time_left(path: Path, budget_s: float | None, elapsed_s: float | None) -> None:
    """Refuse to resume a search that has spent its time budget (it would stop at once)."""
    if budget_s is not None and elapsed_s is not None and elapsed_s >= budget_s:
        raise ValueError(
            f"the time budget {format_duration(budget_s)} of {path} is spent ({format_duration(elapsed_s)} run); "
            f"to continue, give a larger one: robnas resume {path} --time-budget {format_duration(2 * budget_s)}"
        )


def _check_tune_state(path: Path) -> None:
    """Refuse a resume whose newest ``experiment_state-*.json`` (the file Tune restores from,
    ray 2.60's layout) is not readable JSON with its trial list: Tune would start an empty
    experiment over it."""
    from robnas.search._ray_compat import newest_experiment_state

    newest = newest_experiment_state(path)
    if newest is None:
        return
    try:
        data = json.loads(newest.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("trial_data"), list):
            raise ValueError("no trial list")
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = str(error).splitlines()[0][:80] if str(error) else type(error).__name__
        raise ValueError(f"cannot resume: {newest} is damaged ({reason})") from None


def _check_resources(settings: SearchSettings) -> None:
    """Refuse a trial that asks for more CPUs or GPUs than the Ray cluster has (it would wait
    forever)."""
    import ray

    available = ray.cluster_resources()
    for kind, wanted in (("CPU", settings.cpus_per_trial), ("GPU", settings.gpus_per_trial)):
        if wanted > available.get(kind, 0.0):
            raise ValueError(
                f"a trial asks for {wanted:g} {kind}s but the Ray cluster has {available.get(kind, 0.0):g}; "
                f"lower --{kind.lower()}s-per-trial"
            )


def _check_is_experiment(path: Path) -> None:
    if not (path / SETTINGS_FILE).is_file():
        raise ValueError(f"refusing to overwrite {path}: it is not a robnas search (no {SETTINGS_FILE})")


def _param_space(settings: SearchSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tune domains of the searched parts plus the trial keys every trial shares and the
    runtime keys (``score_weights``, ``score_scales``, ``gpu_share``), and the record for
    ``robnas.json``: ``{"resolved_trial": ..., "searched_keys": ..., "score_scales": ...}`` (the
    shared keys with every default filled in; the keys of the domains; the range of each
    weighted objective, see ``robnas.search._score_scales``)."""
    from robnas.search._points import check_points
    from robnas.search._score_scales import score_scales
    from robnas.search._size_limits import size_limits
    from robnas.search._table_space import table_space
    from robnas.spaces._compose import CONFIG_KEYS, build_space, decode
    from robnas.spaces._resolve import resolve_fixed
    from robnas.spaces._runtime import RUNTIME_KEYS
    from robnas.trainables._data import load_dataset
    from robnas.trainables._table import TABLE_MACRO

    space = build_space(settings.space, dataset=settings.dataset, options=settings.space_options)
    clash = sorted(set(space) & set(settings.trial))
    if clash:
        raise ValueError(f"trial keys {', '.join(clash)} are searched by the space; remove them from trial")
    fixed: dict[str, Any] = {"max_epochs": settings.max_epochs, **settings.trial}
    if settings.backend == "table":
        table = settings.result_table()
        if settings.max_epochs > table.epochs:
            raise ValueError(f"max_epochs {settings.max_epochs} exceeds the table's {table.epochs} epochs")
        unknown = sorted(set(settings.trial) - {*CONFIG_KEYS, *RUNTIME_KEYS})
        if unknown:
            raise ValueError(f"unknown trial key(s) {', '.join(unknown)}")
        fixed["table"] = table.path
        space = table_space(space, table)
        shared = {**TABLE_MACRO, **fixed}  # the keys the table trainable reads
        resolved = {key: value for key, value in shared.items() if key not in space and key not in RUNTIME_KEYS}
        scales = score_scales(settings.score_weights, space=space, fixed=resolved, table=table)
    else:
        data = load_dataset(settings.dataset, settings.data_dir)  # fail now, not in every trial
        fixed = {"dataset": settings.dataset, "data_dir": settings.data_dir, **fixed}
        sample = {key: domain.sample() if hasattr(domain, "sample") else domain for key, domain in space.items()}
        decode({**sample, **fixed}, ignore=RUNTIME_KEYS)  # every fixed trial key is valid
        resolved = resolve_fixed(fixed, searched=space)
        scales = score_scales(settings.score_weights, space=space, fixed=resolved,
                              input_shape=tuple(data.x_train.shape[1:]), num_classes=data.num_classes)
    if settings.points:
        check_points(settings.points, space)
    limits = size_limits(settings, resolved)
    if limits is not None:
        limits.check_reachable(space, settings.points or ())
    record = {"resolved_trial": resolved, "searched_keys": sorted(space), "score_scales": scales}
    runtime = {"score_weights": dict(settings.score_weights), "score_scales": scales, "gpu_share": settings.gpus_per_trial}
    return {**space, **fixed, **runtime}, record


def _trainable(
    settings: SearchSettings,
    trainable: Callable[[dict[str, Any]], None] | None = None,
    *,
    defaults: dict[str, Any] | None = None,
):
    """The trial function with the search's resources: ``trainable``, else the backend's,
    given ``defaults`` (the recorded ``resolved_trial``) for the keys a config lacks."""
    from ray import tune

    from robnas.search._trainables import robust_trainable, table_trainable, with_trial_defaults

    if trainable is None:
        trainable = table_trainable if settings.backend == "table" else robust_trainable
    if defaults:
        trainable = with_trial_defaults(trainable, defaults)
    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    return tune.with_resources(trainable, resources)


def make_search_algorithm(settings: SearchSettings, *, scorer=None, limits=None):
    """The Tune ``Searcher`` of a search: the named sampler behind a ``StudySearcher`` that
    launches the settings' points first, deduplicates, screens when asked, launches no network
    above ``limits`` and stops at ``num_samples`` trials.

    ``scorer``: the screening's ``config -> {proxy: score}`` (default: a new ``CandidateScorer``);
    pass one to share its cache between searches. ``limits``: the search's ``SizeLimits``
    (``robnas.search._size_limits.size_limits``), None for none.
    """
    from robnas.search._searchers import MULTI_OBJECTIVE_SEARCHERS
    from robnas.search._study import StudySearcher

    multi = settings.searcher in MULTI_OBJECTIVE_SEARCHERS
    screen = None
    if settings.screen > 1:
        from robnas.search._screening import Screen

        # Random search has no objective of its own: screen for the search's objectives.
        screened = settings.objectives if multi or settings.searcher == "random" else ("score:max",)
        screen = Screen(screened, size=settings.screen, seed=settings.seed, scorer=scorer)
    return StudySearcher(
        settings.searcher,
        objectives=settings.objectives if multi else None,
        seed=settings.seed,
        budget=settings.num_samples,
        screen=screen,
        points_to_evaluate=settings.points or (),
        limits=limits,
    )


def _components(settings: SearchSettings, path: Path, limits=None) -> dict[str, Any]:
    """The search algorithm (with the size ``limits``), scheduler and callbacks of a new search
    (built, and so validated, before anything on disk changes)."""
    from ray.tune.search import ConcurrencyLimiter

    from robnas.search._graceful_stop import GracefulStop
    from robnas.search._progress import FrontProgress
    from robnas.search._schedulers import make_scheduler, state_callback
    from robnas.search._storage import is_local
    from robnas.search._storage_guard import StorageGuard
    from robnas.search._study import StudySearchGenerator
    from robnas.search._time_budget import TimeBudget

    searcher = make_search_algorithm(settings, limits=limits)
    if settings.scheduler != "hyperband":
        # Tune ignores max_concurrent_trials for a SearchGenerator: limit the searcher itself.
        # Not under HyperBand: its paused trials count as live and would stall the search.
        searcher = ConcurrencyLimiter(searcher, max_concurrent=settings.max_concurrent)
    scheduler = make_scheduler(settings)
    callbacks = [
        FrontProgress(settings.objective_names, settings.directions, settings.num_samples,
                      max_epochs=settings.max_epochs, experiment=path)
    ]
    callbacks += [c for c in [state_callback(scheduler)] if c is not None]
    graceful = GracefulStop()  # Ctrl-C and the two stops below wait for checkpoint saves in flight
    if is_local(settings.storage_path):
        callbacks.append(StorageGuard(path, _min_free_bytes(settings), stop=graceful.request))
    # Every search keeps its running time; a resume may set a budget.
    callbacks += [TimeBudget(path, stop=graceful.request), graceful]
    return {"search_alg": StudySearchGenerator(searcher), "scheduler": scheduler, "callbacks": callbacks}


def _new_tuner(settings: SearchSettings, param_space: dict[str, Any], components: dict[str, Any], trainable):
    from ray import tune

    from robnas.search._progress import verbosity

    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=components["search_alg"],
            scheduler=components["scheduler"],
            num_samples=-1,  # the searcher ends the search at its budget (extendable on resume)
            max_concurrent_trials=settings.max_concurrent,
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=settings.experiment_name,
            storage_path=str(resolve_path(settings.storage_path, "storage path")),
            verbose=2 if verbosity() == "verbose" else 0,
            callbacks=components["callbacks"],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
        ),
    )


def _init_ray(settings: SearchSettings) -> None:
    init_ray(settings.address, dashboard=settings.dashboard)


def init_ray(address: str | None, *, dashboard: bool = False) -> None:
    """Join the Ray cluster at ``address``, or start a new local instance on 127.0.0.1
    (unless Ray is running in this process already)."""
    import ray

    from robnas.search._ray_compat import missing_dashboard_package, workers_at_normal_priority

    if address:
        check_address(address)
    elif dashboard and (missing := missing_dashboard_package()):
        raise ValueError(
            f"--dashboard needs Ray's dashboard packages ({missing} is missing): pip install 'robnas[dashboard]'"
        )
    if ray.is_initialized():
        return
    if address:
        try:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        except ConnectionError as error:
            raise ValueError(f"cannot join the Ray cluster at {address}: {error}") from None
    else:
        workers_at_normal_priority()
        ray.init(
            address="local",  # a new local instance; --address auto joins a running cluster
            include_dashboard=dashboard,
            log_to_driver=False,
            logging_level="ERROR",
            _node_ip_address="127.0.0.1",
        )


#: Seconds robnas waits for a Ray cluster's address to accept a connection.
CONNECT_TIMEOUT_S = 30.0


def check_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse a cluster ``address`` (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``) whose port
    does not accept a TCP connection within ``timeout_s`` seconds: Ray itself retries for many
    minutes without a word."""
    import socket

    if address in ("auto", "local"):
        return
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--address must be auto, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise ValueError(f"cannot reach the Ray cluster at {address} within {timeout_s:g} s: {reason}") from None


def _write_settings(path: Path, settings: SearchSettings, record: dict[str, Any] | None) -> None:
    """Write ``robnas.json``: the settings, the trial ``record`` (see ``_param_space``; ``None``
    for a search started without one) and the versions."""
    data = {"settings": settings.to_dict(), **(record or {}), "versions": versions()}
    atomic_write_json(path / SETTINGS_FILE, data)


def versions() -> dict[str, str]:
    """Versions of robnas and the libraries a search's results depend on."""
    import optuna
    import ray
    import torch

    from robnas import __version__

    return {
        "robnas": __version__,
        "ray": ray.__version__,
        "optuna": optuna.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
