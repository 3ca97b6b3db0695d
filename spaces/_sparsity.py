"""Weight sparsity of a trial: target fraction of pruned weights, schedule and granularity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from robnas.spaces._checks import check_choice, check_float, check_values

__all__ = [
    "MAX_SPARSITY",
    "SPARSITY_GRANULARITIES",
    "SPARSITY_SCHEDULES",
    "SparsityConfig",
    "sparsity_space",
]

#: ``none``: dense training; ``oneshot``: prune to the target once, before training;
#: ``gradual``: raise sparsity towards the target over the epochs.
SPARSITY_SCHEDULES: tuple[str, ...] = ("none", "oneshot", "gradual")
#: ``unstructured``: single weights; ``channel``: whole output channels of convolutions.
SPARSITY_GRANULARITIES: tuple[str, ...] = ("unstructured", "channel")
MAX_SPARSITY = 0.99
DEFAULT_SPARSITY_TARGETS: tuple[float, ...] = (0.0, 0.5, 0.8, 0.9)


@dataclass(frozen=True)
class SparsityConfig:
    """Pruning of a trial; ``target`` is the fraction of prunable weights set to zero, in [0, 0.99].

    The network is dense when ``target == 0`` or ``schedule == "none"`` (see :attr:`active`).
    """

    target: float = 0.0
    schedule: str = "none"
    granularity: str = "unstructured"

    def __post_init__(self) -> None:
        owner = "SparsityConfig"
        target = check_float(owner, "target", self.target, low=0.0, high=MAX_SPARSITY)
        schedule = check_choice(owner, "schedule", self.schedule, SPARSITY_SCHEDULES)
        granularity = check_choice(owner, "granularity", self.granularity, SPARSITY_GRANULARITIES)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "schedule", schedule)
        object.__setattr__(self, "granularity", granularity)

    @property
    def active(self) -> bool:
        """Whether any weight gets pruned."""
        return self.target > 0.0 and self.schedule != "none"


def sparsity_space(
    *,
    targets: Sequence[float] | None = None,
    target_range: tuple[float, float] | None = None,
    schedules: Sequence[str] = ("oneshot", "gradual"),
    granularities: Sequence[str] = SPARSITY_GRANULARITIES,
) -> dict[str, Any]:
    """Ray Tune domains ``sparsity``, ``sparsity_schedule`` and ``sparsity_granularity``.

    ``sparsity`` is a choice among ``targets`` (default 0, 0.5, 0.8, 0.9) or, with
    ``target_range=(low, high)``, uniform on that interval; both must lie in [0, 0.99].
    Target 0 is the dense network, so the default schedules leave out ``none``.
    """
    from ray import tune

    owner = "SparsityConfig"
    if targets is not None and target_range is not None:
        raise ValueError("give either targets (a choice) or target_range (uniform), not both")
    if target_range is not None:
        bounds = check_values("target_range", target_range)
        if len(bounds) != 2:
            raise ValueError(f"target_range must be (low, high), got {target_range!r}")
        low, high = (check_float(owner, "target", b, low=0.0, high=MAX_SPARSITY) for b in bounds)
        if not low < high:
            raise ValueError(f"target_range must have low < high, got {target_range!r}")
        sparsity = tune.uniform(low, high)
    else:
        values = check_values("targets", DEFAULT_SPARSITY_TARGETS if targets is None else targets)
        sparsity = tune.choice([check_float(owner, "target", t, low=0.0, high=MAX_SPARSITY) for t in values])
    schedule_values = [
        check_choice(owner, "schedule", s, SPARSITY_SCHEDULES) for s in check_values("schedules", schedules)
    ]
    granularity_values = [
        check_choice(owner, "granularity", g, SPARSITY_GRANULARITIES)
        for g in check_values("granularities", granularities)
    ]
    return {
        "sparsity": sparsity,
        "sparsity_schedule": tune.choice(schedule_values),
        "sparsity_granularity": tune.choice(granularity_values),
    }
