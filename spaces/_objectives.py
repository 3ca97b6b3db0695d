"""Objectives: a metric name and its direction, parsed in one place.

A direction is ``"max"`` (larger is better) or ``"min"``; it becomes a sign only through
:attr:`Objective.sign` (+1 for ``max``, -1 for ``min``: ``sign * value`` is a gain, larger is
better). A name without a direction takes :func:`default_direction`: the trial's own metrics
as listed in ``TRIAL_OBJECTIVES``, and for any other metric (a results table's column) the
name's suffix: ``min`` for times, losses, sizes and costs, ``max`` otherwise (accuracies).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from robnas.spaces._suggest import did_you_mean

DIRECTIONS: tuple[str, ...] = ("max", "min")

#: Metrics a trial reports that can be objectives, with their direction.
TRIAL_OBJECTIVES: Mapping[str, str] = MappingProxyType({
    "clean_acc": "max",
    "robust_acc": "max",
    "sparsity": "max",
    "params": "min",
    "macs": "min",
    "sparse_macs": "min",
    "epoch_time_s": "min",
})

DEFAULT_OBJECTIVES: tuple[str, ...] = ("clean_acc", "robust_acc", "sparsity")

#: Name endings of metrics that are minimised when no direction is given.
_MIN_SUFFIXES = ("_s", "loss", "params", "macs", "flops", "cost")


def default_direction(name: str) -> str:
    """``TRIAL_OBJECTIVES[name]``, else ``"min"`` for times, losses, sizes, costs, else ``"max"``."""
    if name in TRIAL_OBJECTIVES:
        return TRIAL_OBJECTIVES[name]
    return "min" if name.endswith(_MIN_SUFFIXES) else "max"


@dataclass(frozen=True)
class Objective:
    """A metric and its direction, ``"max"`` or ``"min"``."""

    name: str
    direction: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"an objective needs a non-empty name, got {self.name!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"direction {self.direction!r} of objective {self.name!r} is not one of max, min"
            )

    @property
    def maximize(self) -> bool:
        return self.direction == "max"

    @property
    def sign(self) -> float:
        """+1.0 for ``max``, -1.0 for ``min``: ``sign * value`` is larger when better."""
        return 1.0 if self.maximize else -1.0

    def __str__(self) -> str:
        return f"{self.name}:{self.direction}"

    @classmethod
    def parse(cls, spec: str | Objective) -> Objective:
        """``"name"`` (default direction) or ``"name:max"`` / ``"name:min"``."""
        if isinstance(spec, Objective):
            return spec
        if not isinstance(spec, str):
            raise ValueError(f"an objective is a name or name:max / name:min, got {spec!r}")
        name, _, direction = (part.strip() for part in spec.partition(":"))
        if not name:
            raise ValueError(f"an objective needs a name, got {spec!r}")
        return cls(name, direction or default_direction(name))


def parse_objectives(
    spec: str | Sequence[str | Objective], available: Collection[str] | None = TRIAL_OBJECTIVES
) -> tuple[Objective, ...]:
    """Objectives from ``"clean_acc,params,pgd_eps8_acc:max"`` or a sequence of such items.

    ``available``: the metric names allowed (default: a trial's ``TRIAL_OBJECTIVES``; ``None``:
    any name). Order is kept; a repeated name or an unknown one is a ``ValueError`` naming it.
    """
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    if not items or any(isinstance(s, str) and not s for s in items):
        raise ValueError(f"objectives must be a non-empty comma-separated list of names, got {spec!r}")
    objectives = tuple(Objective.parse(item) for item in items)
    if available is not None:
        unknown = [o.name for o in objectives if o.name not in available]
        if unknown:
            raise ValueError(
                f"unknown objective {', '.join(map(repr, unknown))}{did_you_mean(unknown[0], available)}; "
                f"choose from {', '.join(available)} "
                "(direction as name:max or name:min)"
            )
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise ValueError(f"objectives must not repeat, got {', '.join(names)}")
    return objectives


def names_of(objectives: Sequence[Objective]) -> tuple[str, ...]:
    return tuple(o.name for o in objectives)


def directions_of(objectives: Sequence[Objective]) -> tuple[str, ...]:
    return tuple(o.direction for o in objectives)


def default_score_weights(objectives: Sequence[Objective]) -> dict[str, float]:
    """Equal weights, negative for objectives to minimise: ``score`` is then maximised."""
    share = 1.0 / len(objectives)
    return {o.name: share * o.sign for o in objectives}


def parse_score_weights(
    weights: str | Mapping[str, float], available: Collection[str] | None = TRIAL_OBJECTIVES
) -> dict[str, float]:
    """Parse ``"robust_acc=0.7,clean_acc=0.3"`` or a mapping into validated weights."""
    if isinstance(weights, str):
        pairs = {}
        for item in filter(None, (part.strip() for part in weights.split(","))):
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"score weight {item!r} must look like name=weight")
            try:
                pairs[name.strip()] = float(value)
            except ValueError:
                raise ValueError(f"score weight {item!r}: {value!r} is not a number") from None
        weights = pairs
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError(f"score weights must be a non-empty mapping, got {weights!r}")
    parse_objectives(list(weights), available)
    result = {}
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"score weight of {name!r} must be a number, got {value!r}")
        result[name] = float(value)
    return result
