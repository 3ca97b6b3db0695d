"""Schedulers by name; the epoch is the time attribute of every one of them.

Ray Tune does not save a scheduler's state with the experiment: after ``Tuner.restore`` the
scheduler comes back from ``tuner.pkl`` as it was when the search started, with empty rungs.
``state_callback()`` returns a Tune callback that carries the rungs through the experiment
checkpoints (Tune saves and restores callback state) for ASHA and multi-objective ASHA.
"""

from __future__ import annotations

import copy

from ray.tune import Callback

from robnas.search._settings import SCHEDULERS, SearchSettings

TIME_ATTR = "epoch"


def make_scheduler(settings: SearchSettings):
    """FIFO (no early stopping), Ray's ASHA and HyperBand on the scalarised ``score``, or
    robnas's multi-objective ASHA on the search's objectives."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler

    name = settings.scheduler
    if name == "fifo":
        return FIFOScheduler()
    if name == "asha":
        return ASHAScheduler(
            time_attr=TIME_ATTR,
            metric="score",
            mode="max",
            max_t=settings.max_epochs,
            grace_period=settings.grace_period,
            reduction_factor=settings.reduction_factor,
        )
    if name == "hyperband":
        return HyperBandScheduler(
            time_attr=TIME_ATTR,
            metric="score",
            mode="max",
            max_t=settings.max_epochs,
            reduction_factor=settings.reduction_factor,
        )
    if name == "moasha":
        from robnas.search._moasha import MultiObjectiveASHA

        return MultiObjectiveASHA(
            time_attr=TIME_ATTR,
            objectives=settings.objective_names,
            modes=settings.directions,
            max_t=settings.max_epochs,
            grace_period=settings.grace_period,
            reduction_factor=settings.reduction_factor,
        )
    raise ValueError(f"unknown scheduler {name!r}; choose from {', '.join(SCHEDULERS)}")


def state_callback(scheduler) -> Callback | None:
    """A callback that saves and restores ``scheduler``'s rungs, or None if it has none."""
    from ray.tune.schedulers import ASHAScheduler

    from robnas.search._moasha import MultiObjectiveASHA

    if isinstance(scheduler, MultiObjectiveASHA):
        return scheduler.state_callback()
    if isinstance(scheduler, ASHAScheduler):
        return _ASHAStateCallback(scheduler)
    return None


class _ASHAStateCallback(Callback):
    """Carries Ray's ``ASHAScheduler`` rungs (trial id -> metric per rung) across a restore."""

    _STATE = ("_brackets", "_trial_info", "_num_stopped", "_counter")

    def __init__(self, scheduler) -> None:
        self._scheduler = scheduler

    def get_state(self) -> dict:
        return {"asha": copy.deepcopy({k: getattr(self._scheduler, k) for k in self._STATE})}

    def set_state(self, state: dict) -> None:
        for key, value in state["asha"].items():
            setattr(self._scheduler, key, value)
