"""Weight sparsity of a trial: target fraction of pruned weights, schedule and granularity.

Dynamic schedules (``set``, ``rigl``) keep the target sparsity from the first step and move the
kept weights every ``update_every`` optimiser steps; ``sup_tickets`` adds the cyclic phase of
Sup-tickets on top of them (``robnas.trainables`` implements all of them). Without a dynamic
schedule the three keys are no-ops, as ``ema_decay`` is without EMA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from robnas.spaces._checks import check_bool, check_choice, check_float, check_int, check_values

__all__ = [
    "DYNAMIC_SCHEDULES",
    "MAX_SPARSITY",
    "SPARSITY_GRANULARITIES",
    "SPARSITY_SCHEDULES",
    "SparsityConfig",
    "sparsity_space",
]

#: ``none``: dense training; ``oneshot``: prune to the target once, before training;
#: ``gradual``: raise sparsity towards the target over the epochs; ``set`` (Mocanu et al. 2018)
#: and ``rigl`` (Evci et al. 2020): train at the target from a random sparse start, periodically
#: dropping the smallest weights and regrowing as many (``set``: at random; ``rigl``: where the
#: dense gradient is largest).
SPARSITY_SCHEDULES: tuple[str, ...] = ("none", "oneshot", "gradual", "set", "rigl")
#: Schedules that drop and regrow weights during training (dynamic sparse training).
DYNAMIC_SCHEDULES: tuple[str, ...] = ("set", "rigl")
#: ``unstructured``: single weights; ``channel``: whole output channels of convolutions.
SPARSITY_GRANULARITIES: tuple[str, ...] = ("unstructured", "channel")
MAX_SPARSITY = 0.99
DEFAULT_SPARSITY_TARGETS: tuple[float, ...] = (0.0, 0.5, 0.8, 0.9)
#: RigL's initial drop fraction (``drop_fraction=0.3``), cosine-decayed over the updates.
DEFAULT_DROP_FRACTION = 0.3
#: Optimiser steps between mask updates for digits' short trials: a digits epoch is 20 steps
#: (1,257 images, batch 64), so 5 gives RigL's about four updates per epoch (RigL: every 100
#: of CIFAR-10's 391 steps at batch 128). ``DATASET_DEFAULTS`` gives other data sets RigL's 100.
DEFAULT_UPDATE_EVERY = 5


@dataclass(frozen=True)
class SparsityConfig:
    """Pruning of a trial; ``target`` is the fraction of prunable weights set to zero, in [0, 0.99].

    The network is dense when ``target == 0`` or ``schedule == "none"`` (see :attr:`active`).
    ``drop_fraction`` (in (0, 1)) and ``update_every`` (optimiser steps, >= 1) drive the dynamic
    schedules; ``sup_tickets`` averages the tickets of their cyclic phases. The three are
    checked always and ignored unless :attr:`dynamic`.
    """

    target: float = 0.0
    schedule: str = "none"
    granularity: str = "unstructured"
    drop_fraction: float = DEFAULT_DROP_FRACTION
    update_every: int = DEFAULT_UPDATE_EVERY
    sup_tickets: bool = False

    def __post_init__(self) -> None:
        owner = "SparsityConfig"
        target = check_float(owner, "target", self.target, low=0.0, high=MAX_SPARSITY)
        schedule = check_choice(owner, "schedule", self.schedule, SPARSITY_SCHEDULES)
        granularity = check_choice(owner, "granularity", self.granularity, SPARSITY_GRANULARITIES)
        drop_fraction = check_float(owner, "drop_fraction", self.drop_fraction,
                                    low=0.0, high=1.0, low_open=True, high_open=True)
        update_every = check_int(owner, "update_every", self.update_every, minimum=1)
        sup_tickets = check_bool(owner, "sup_tickets", self.sup_tickets)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "schedule", schedule)
        object.__setattr__(self, "granularity", granularity)
        object.__setattr__(self, "drop_fraction", drop_fraction)
        object.__setattr__(self, "update_every", update_every)
        object.__setattr__(self, "sup_tickets", sup_tickets)

    @property
    def active(self) -> bool:
        """Whether any weight gets pruned."""
        return self.target > 0.0 and self.schedule != "none"

    @property
    def dynamic(self) -> bool:
        """Whether weights are dropped and regrown during training (an active dynamic schedule)."""
        return self.active and self.schedule in DYNAMIC_SCHEDULES


def sparsity_space(
    *,
    targets: Sequence[float] | None = None,
    target_range: tuple[float, float] | None = None,
    schedules: Sequence[str] = ("oneshot", "gradual", *DYNAMIC_SCHEDULES),
    granularities: Sequence[str] = SPARSITY_GRANULARITIES,
    drop_fractions: Sequence[float] | None = None,
    update_every: Sequence[int] | None = None,
    sup_tickets: Sequence[bool] = (False, True),
) -> dict[str, Any]:
    """Ray Tune domains ``sparsity``, ``sparsity_schedule``, ``sparsity_granularity`` and
    ``sup_tickets``, and ``sparsity_drop_fraction``, ``sparsity_update_every`` when given choices.

    ``sparsity`` is a choice among ``targets`` (default 0, 0.5, 0.8, 0.9) or, with
    ``target_range=(low, high)``, uniform on that interval; both must lie in [0, 0.99].
    Target 0 is the dense network, so the default schedules leave out ``none``. Keys without
    choices take ``decode``'s defaults. ``sup_tickets`` and the dynamic keys only matter to a
    trial that draws a dynamic schedule (``DYNAMIC_SCHEDULES``) and a target above 0.
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
    space = {
        "sparsity": sparsity,
        "sparsity_schedule": tune.choice(schedule_values),
        "sparsity_granularity": tune.choice(granularity_values),
    }
    if drop_fractions is not None:
        space["sparsity_drop_fraction"] = tune.choice([
            check_float(owner, "drop_fraction", f, low=0.0, high=1.0, low_open=True, high_open=True)
            for f in check_values("drop_fractions", drop_fractions)
        ])
    if update_every is not None:
        space["sparsity_update_every"] = tune.choice([
            check_int(owner, "update_every", n, minimum=1) for n in check_values("update_every", update_every)
        ])
    space["sup_tickets"] = tune.choice([
        check_bool(owner, "sup_tickets", b) for b in check_values("sup_tickets", sup_tickets)
    ])
    return space
