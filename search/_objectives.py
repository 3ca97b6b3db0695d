"""Objective names, their directions, and scalarisation weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: Metrics a trial reports that can be objectives, with their direction.
TRIAL_OBJECTIVES: dict[str, str] = {
    "clean_acc": "max",
    "robust_acc": "max",
    "sparsity": "max",
    "params": "min",
    "macs": "min",
    "sparse_macs": "min",
    "epoch_time_s": "min",
}

DEFAULT_OBJECTIVES = ("clean_acc", "robust_acc", "sparsity")


def parse_objectives(
    objectives: str | Sequence[str], known: Mapping[str, str] = TRIAL_OBJECTIVES
) -> tuple[str, ...]:
    """Validate objective names (a comma-separated string or a sequence); keep their order."""
    names = [n.strip() for n in objectives.split(",")] if isinstance(objectives, str) else list(objectives)
    if not names or any(not n for n in names):
        raise ValueError(f"objectives must be a non-empty list of names, got {objectives!r}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown objective {', '.join(map(repr, unknown))}; choose from {', '.join(known)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"objectives must not repeat, got {', '.join(names)}")
    return tuple(names)


def modes_of(objectives: Sequence[str], known: Mapping[str, str] = TRIAL_OBJECTIVES) -> tuple[str, ...]:
    """``"max"`` or ``"min"`` for each objective."""
    return tuple(known[name] for name in objectives)


def default_score_weights(
    objectives: Sequence[str], known: Mapping[str, str] = TRIAL_OBJECTIVES
) -> dict[str, float]:
    """Equal weights, negative for objectives to minimise: ``score`` is then maximised."""
    share = 1.0 / len(objectives)
    return {name: (share if known[name] == "max" else -share) for name in objectives}


def parse_score_weights(
    weights: str | Mapping[str, float], known: Mapping[str, str] = TRIAL_OBJECTIVES
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
    parse_objectives(list(weights), known)
    result = {}
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"score weight of {name!r} must be a number, got {value!r}")
        result[name] = float(value)
    return result
