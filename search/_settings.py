"""``SearchSettings``: every option of a search, from defaults, a YAML file and flags."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robnas.search._objectives import (
    DEFAULT_OBJECTIVES,
    default_score_weights,
    modes_of,
    parse_objectives,
    parse_score_weights,
)
from robnas.search._searchers import MULTI_OBJECTIVE_SEARCHERS, SEARCHERS

SCHEDULERS = ("moasha", "asha", "hyperband", "fifo")
DEFAULT_STORAGE = "robnas_results"


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """A search's options. Times are in epochs; eps budgets in the ``trial`` mapping in 1/255.

    ``trial`` holds fixed trial keys (anything ``robnas.spaces.decode`` accepts, e.g.
    ``eval_steps``, ``batch_size``) that every trial of the search shares.
    """

    name: str | None = None
    storage_path: str = DEFAULT_STORAGE
    dataset: str = "digits"
    data_dir: str | None = None
    space: tuple[str, ...] = ("cell", "macro", "sparsity", "attack")
    scheduler: str = "moasha"
    searcher: str = "motpe"
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    score_weights: Mapping[str, float] | None = None
    num_samples: int = 12
    max_epochs: int = 4
    grace_period: int = 1
    reduction_factor: int = 2
    max_concurrent: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 1
    address: str | None = None
    dashboard: bool = False
    seed: int = 0
    trial: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        if self.name is not None:
            _check_name(self.name)
        set_("space", _as_names(self.space, "space"))
        set_("objectives", parse_objectives(self.objectives))
        _choose("scheduler", self.scheduler, SCHEDULERS)
        _choose("searcher", self.searcher, SEARCHERS)
        for field in ("num_samples", "max_epochs", "grace_period", "max_concurrent", "seed"):
            _integer(field, getattr(self, field), minimum=0 if field == "seed" else 1)
        _integer("reduction_factor", self.reduction_factor, minimum=2)
        _integer("max_failures", self.max_failures, minimum=0)
        for field in ("cpus_per_trial", "gpus_per_trial"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{field} must be a number >= 0, got {value!r}")
        if self.cpus_per_trial == 0 and self.gpus_per_trial == 0:
            raise ValueError("a trial needs cpus_per_trial > 0 or gpus_per_trial > 0")
        if self.grace_period > self.max_epochs:
            raise ValueError(
                f"grace_period ({self.grace_period}) must not exceed max_epochs ({self.max_epochs})"
            )
        if self.searcher in MULTI_OBJECTIVE_SEARCHERS and len(self.objectives) < 2:
            raise ValueError(f"searcher {self.searcher} needs at least two objectives")
        weights = self.score_weights
        set_("score_weights", parse_score_weights(weights) if weights else default_score_weights(self.objectives))
        if not isinstance(self.trial, Mapping):
            raise ValueError(f"trial must be a mapping of trial keys, got {self.trial!r}")
        set_("trial", dict(self.trial))

    @property
    def modes(self) -> tuple[str, ...]:
        return modes_of(self.objectives)

    @property
    def experiment_name(self) -> str:
        return self.name or "search"

    @property
    def experiment_path(self) -> Path:
        return Path(self.storage_path).expanduser().resolve() / self.experiment_name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``SearchSettings.from_mapping(s.to_dict()) == s``."""
        data = dataclasses.asdict(self)
        data["space"], data["objectives"] = list(self.space), list(self.objectives)
        data["score_weights"], data["trial"] = dict(self.score_weights), dict(self.trial)
        return data

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any], *, source: str = "options") -> SearchSettings:
        """Build from a mapping (a YAML file's content); unknown keys are rejected by name."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown key {', '.join(map(repr, unknown))}; known keys: {', '.join(sorted(known))}"
            )
        return cls(**options)

    def replace(self, **changes: Any) -> SearchSettings:
        return SearchSettings.from_mapping({**self.to_dict(), **changes})


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or name in (".", "..") or os.sep in name or "/" in name:
        raise ValueError(f"name must be a plain directory name, got {name!r}")


def _as_names(value: Any, field: str) -> tuple[str, ...]:
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{field} must be a list of names, got {value!r}")
    names = tuple(n.strip() for n in names if n.strip())
    if not names:
        raise ValueError(f"{field} must name at least one part, got {value!r}")
    return names


def _choose(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {field} {value!r}; choose from {', '.join(allowed)}")


def _integer(field: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{field} must be an integer >= {minimum}, got {value!r}")
