"""``SearchSettings``: every option of a search, from defaults, a YAML file and flags."""

from __future__ import annotations

import dataclasses
import math
import os
import reprlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from robnas.search._points import load_points
from robnas.search._searchers import MULTI_OBJECTIVE_SEARCHERS, SEARCHERS
from robnas.search._units import parse_count, parse_duration
from robnas.spaces._defaults import DATASETS, dataset_default
from robnas.spaces._objectives import (
    DEFAULT_OBJECTIVES,
    TRIAL_OBJECTIVES,
    Objective,
    default_score_weights,
    directions_of,
    names_of,
    parse_objectives,
    parse_score_weights,
)
from robnas.spaces._suggest import did_you_mean

SCHEDULERS = ("moasha", "asha", "hyperband", "fifo")
BACKENDS = ("train", "table")
DEFAULT_SPACE = ("cell", "macro", "sparsity", "attack")
DEFAULT_STORAGE = "robnas_results"
#: Largest seed: Optuna's samplers and numpy take seeds below 2**32.
MAX_SEED = 2**32 - 1
#: Smallest non-zero CPUs or GPUs a trial may reserve (Ray's resource precision).
MIN_RESOURCE = 0.0001
#: Longest experiment name, in bytes (a directory name on common file systems).
MAX_NAME_BYTES = 200
#: Candidates screened per launched trial by default (benchmarks/RESULTS.md, search quality).
DEFAULT_SCREEN = 32
#: Free space (MiB) a search keeps on its storage: it starts with twice this and stops below it.
DEFAULT_MIN_FREE_MB = 64.0


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """A search's options. Times are in epochs; eps budgets in the ``trial`` mapping in 1/255.

    ``trial`` holds fixed trial keys (anything ``robnas.spaces.decode`` accepts, e.g.
    ``eval_steps``, ``batch_size``) that every trial of the search shares.

    ``searcher=None`` picks ``tpe`` for one objective, ``motpe`` for several.

    ``screen=K`` (K >= 2) scores K candidates, plus the one-change neighbours of the best trial
    so far, with zero-cost proxies and a surrogate model per launched trial (0 = off; see
    ``robnas.search._screening``). Default: ``DEFAULT_SCREEN``, except 0 for ``searcher="random"``
    (a random baseline stays random unless screening is asked for).

    ``min_free_mb``: the search starts only with twice this much free space on its storage and
    stops, resumable, when less is left (see ``robnas.search._storage``).

    ``max_params`` / ``max_macs``: the largest network a trial may train (its dense parameters,
    its MACs per image, in closed form from the config; with ``backend="table"``, parameters
    in the units of the table's ``params`` column when it has one); candidates above are never
    launched. Counts may be written ``1.5e6``, ``200k``, ``3M``.

    ``time_budget_s``: seconds of wall time the search may run, summed over its start and
    resumes (``90s``, ``30m``, ``1h30m`` accepted); it then stops, resumable.

    ``space_options``: part name -> keyword arguments of its domain function, e.g.
    ``{"resnet": {"depths": [1, 3], "widths": [16, 32, 64]}}`` (see ``robnas.spaces.resnet_space``).

    ``points``: configurations launched first, a points file's path or a list of mappings of
    searched keys (see ``robnas.search._points``); kept as the list of mappings.

    ``backend="table"`` replays the results table ``table`` instead of training: the space
    defaults to the cell, ``max_epochs`` to the table's epochs, and ``objectives`` must be given
    (the table's metric columns, plus ``params``).
    """

    name: str | None = None
    storage_path: str = DEFAULT_STORAGE
    dataset: str = "digits"
    data_dir: str | None = None
    space: tuple[str, ...] | None = None
    space_options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    scheduler: str = "moasha"
    searcher: str | None = None
    objectives: tuple[Objective, ...] | None = None
    score_weights: Mapping[str, float] | None = None
    num_samples: int = 12
    max_epochs: int | None = None
    grace_period: int = 1
    reduction_factor: int = 2
    max_concurrent: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 1
    address: str | None = None
    dashboard: bool = False
    seed: int = 0
    backend: str = "train"
    table: str | None = None
    screen: int | None = None
    min_free_mb: float = DEFAULT_MIN_FREE_MB
    max_params: float | None = None
    max_macs: float | None = None
    time_budget_s: float | None = None
    points: Sequence[Mapping[str, Any]] | None = None
    trial: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        if self.name is not None:
            _check_name(self.name)
        _path_like("storage_path", self.storage_path)
        for field in ("data_dir", "address", "table"):
            if getattr(self, field) is not None:
                _path_like(field, getattr(self, field))
        for field in ("dataset", "backend", "scheduler"):
            _text(field, getattr(self, field))
        if not isinstance(self.dashboard, bool):
            raise ValueError(f"dashboard must be true or false, got {_short(self.dashboard)}")
        _choose("backend", self.backend, BACKENDS)
        _choose("dataset", self.dataset, DATASETS)
        replay = self.backend == "table"
        if replay:
            if not isinstance(self.table, str) or not self.table:
                raise ValueError("the table backend needs a results table: give --table PATH")
            if self.objectives is None:
                metrics = ", ".join(self.result_table().metrics)
                raise ValueError(f"the table backend needs --objectives; the table has {metrics}")
        elif self.table is not None:
            raise ValueError("--table is used only with --backend table")
        set_("space", _as_names(self.space or (("cell",) if replay else DEFAULT_SPACE), "space"))
        set_("space_options", _space_options(self.space_options, self.space))
        if self.max_epochs is None:
            set_("max_epochs", self.result_table().epochs if replay else int(dataset_default(self.dataset, "max_epochs")))
        known = self.known_objectives
        set_("objectives", parse_objectives(self.objectives or DEFAULT_OBJECTIVES, known))
        _choose("scheduler", self.scheduler, SCHEDULERS)
        if self.searcher is None:
            set_("searcher", "motpe" if len(self.objectives) > 1 else "tpe")
        _choose("searcher", self.searcher, SEARCHERS)
        for field in ("num_samples", "max_epochs", "grace_period", "max_concurrent"):
            _integer(field, getattr(self, field), minimum=1)
        _integer("seed", self.seed, minimum=0, maximum=MAX_SEED)
        _integer("reduction_factor", self.reduction_factor, minimum=2)
        _integer("max_failures", self.max_failures, minimum=0)
        if self.screen is None:
            set_("screen", 0 if self.searcher == "random" else DEFAULT_SCREEN)
        _integer("screen", self.screen, minimum=0)
        for field in ("cpus_per_trial", "gpus_per_trial", "min_free_mb"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{field} must be a finite number >= 0, got {_short(value)}")
        for field in ("cpus_per_trial", "gpus_per_trial"):
            value = getattr(self, field)
            if 0 < value < MIN_RESOURCE:
                raise ValueError(f"{field} must be 0 or at least {MIN_RESOURCE} (Ray's resource precision), got {value!r}")
        for field in ("max_params", "max_macs"):
            if getattr(self, field) is not None:
                set_(field, parse_count(field, getattr(self, field)))
        if self.time_budget_s is not None:
            set_("time_budget_s", parse_duration("time_budget", self.time_budget_s))
        if self.points is not None:
            set_("points", load_points(self.points))
        if self.cpus_per_trial == 0 and self.gpus_per_trial == 0:
            raise ValueError("a trial needs cpus_per_trial > 0 or gpus_per_trial > 0")
        if self.grace_period > self.max_epochs:
            raise ValueError(
                f"grace_period ({self.grace_period}) must not exceed max_epochs ({self.max_epochs})"
            )
        if self.searcher in MULTI_OBJECTIVE_SEARCHERS and len(self.objectives) < 2:
            raise ValueError(f"searcher {self.searcher} needs at least two objectives")
        weights = self.score_weights
        set_(
            "score_weights",
            parse_score_weights(weights, known) if weights else default_score_weights(self.objectives),
        )
        if any(not math.isfinite(w) for w in self.score_weights.values()):
            raise ValueError(f"score weights must be finite numbers, got {_short(dict(self.score_weights))}")
        if not isinstance(self.trial, Mapping):
            raise ValueError(f"trial must be a mapping of trial keys, got {_short(self.trial)}")
        set_("trial", dict(self.trial))

    @property
    def objective_names(self) -> tuple[str, ...]:
        return names_of(self.objectives)

    @property
    def directions(self) -> tuple[str, ...]:
        """``"max"`` or ``"min"`` per objective."""
        return directions_of(self.objectives)

    @property
    def known_objectives(self) -> tuple[str, ...]:
        """Metrics that can be objectives: a trial's, or the replayed table's (and ``params``)."""
        if self.backend != "table":
            return tuple(TRIAL_OBJECTIVES)
        return (*self.result_table().metrics, "params")

    def result_table(self):
        """The replayed ``ResultTable`` (cached per process); table backend only."""
        from robnas.trainables._table import ResultTable

        return ResultTable.load(self.table)

    @property
    def experiment_name(self) -> str:
        return self.name or "search"

    @property
    def experiment_path(self) -> Path:
        return resolve_path(self.storage_path, "storage path") / self.experiment_name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``SearchSettings.from_mapping(s.to_dict()) == s``."""
        data = dataclasses.asdict(self)
        data["space"], data["objectives"] = list(self.space), [str(o) for o in self.objectives]
        if self.table is not None:
            data["table"] = str(resolve_path(self.table, "table"))
        data["score_weights"], data["trial"] = dict(self.score_weights), dict(self.trial)
        data["space_options"] = {name: dict(given) for name, given in self.space_options.items()}
        if self.points is not None:
            data["points"] = [dict(point) for point in self.points]
        return data

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any], *, source: str = "options") -> SearchSettings:
        """Build from a mapping (a YAML file's content); unknown keys are rejected by name."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown key {', '.join(map(repr, unknown))}{did_you_mean(unknown[0], known)}; "
                f"known keys: {', '.join(sorted(known))}"
            )
        return cls(**options)

    def replace(self, **changes: Any) -> SearchSettings:
        """A copy with ``changes``; defaults derived from a changed field are derived again."""
        derived = {
            "score_weights": ("objectives", "backend", "table"),
            "space": ("backend",),
            "max_epochs": ("backend", "table", "dataset"),
            "objectives": ("backend", "table"),
            "searcher": ("objectives", "backend", "table"),
            "screen": ("searcher", "objectives", "backend", "table"),
        }
        current = self.to_dict()
        for field, sources in derived.items():
            if field not in changes and any(source in changes for source in sources):
                current[field] = None
        return SearchSettings.from_mapping({**current, **changes})


def resolve_path(path: str | os.PathLike, what: str) -> Path:
    """``path`` made absolute with symlinks resolved; ValueError for a symlink loop."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError) as error:  # RuntimeError: a symlink loop (Python < 3.13)
        raise ValueError(f"{what} {os.fspath(path)}: {error}") from None


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or name in (".", "..") or os.sep in name or "/" in name:
        raise ValueError(f"name must be a plain directory name, got {_short(name)}")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES or "\0" in name:
        raise ValueError(f"name must be at most {MAX_NAME_BYTES} bytes without NUL, got {_short(name)}")


def _path_like(field: str, value: Any) -> None:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value) or "\0" in os.fspath(value):
        raise ValueError(f"{field} must be a path or address string, got {_short(value)}")


def _text(field: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a name, got {_short(value)}")


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about untrusted input."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = limit
    short.maxlist = short.maxdict = short.maxtuple = short.maxset = 6
    short.maxlevel = 2
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_names(value: Any, field: str) -> tuple[str, ...]:
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{field} must be a list of names, got {value!r}")
    names = tuple(n.strip() for n in names if n.strip())
    if not names:
        raise ValueError(f"{field} must name at least one part, got {value!r}")
    return names


def _space_options(value: Any, space: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``space_options`` as part name -> options, each part in ``space`` (the options' values are
    checked when the space is built)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise ValueError(f"space_options must map a space part to a mapping of its options, got {_short(value)}")
    unused = [str(name) for name in value if name not in space]
    if unused:
        raise ValueError(f"space_options for part(s) {', '.join(unused)} not in the space ({', '.join(space)})")
    return {str(name): dict(given) for name, given in value.items()}


def _choose(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"unknown {field} {_short(value)}{did_you_mean(value, allowed)}; choose from {', '.join(allowed)}"
        )


def _integer(field: str, value: Any, *, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{field} must be an integer {bound}, got {_short(value)}")
