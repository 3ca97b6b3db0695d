"""Schedulers by name; the epoch is the time attribute of every one of them.

Ray Tune does not save a scheduler's state with the experiment: after ``Tuner.restore`` the
scheduler comes back from ``tuner.pkl`` as it was when the search started, with empty rungs.
``state_callback()`` returns a Tune callback that carries the rungs through the experiment
checkpoints (Tune saves and restores callback state) for ASHA and multi-objective ASHA.
"""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune import Callback

from robnas.search._callback_json import callback_state, from_callback_state
from robnas.search._ray_compat import asha_state, load_asha_state
from robnas.search._settings import SCHEDULERS, SearchSettings

TIME_ATTR = "epoch"
_LEGACY_KEYS = {"_brackets", "_trial_info", "_num_stopped", "_counter"}


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
            rung_metrics={"sparsity": "target_sparsity"},
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
    """Carries Ray's ``ASHAScheduler`` rungs (trial id -> reward per rung) across a restore.

    The state handed to Tune is ``{"robnas_json": <JSON text>}``, read back with validation.
    """

    def __init__(self, scheduler) -> None:
        self._scheduler = scheduler

    def get_state(self) -> dict:
        return callback_state({"asha": asha_state(self._scheduler)})

    def set_state(self, state: dict) -> None:
        source = "ASHA state in Tune's callback checkpoint"
        legacy_state = state.get("asha") if isinstance(state, dict) and set(state) == {"asha"} else None
        if isinstance(legacy_state, dict) and set(legacy_state) == _LEGACY_KEYS:
            # Saved by robnas 0.1.0 (copies of Ray's objects, unpickled by Tune): read as data.
            legacy = SimpleNamespace(**legacy_state)
            load_asha_state(self._scheduler, asha_state(legacy), source)
            return
        load_asha_state(self._scheduler, from_callback_state(state, source, "asha"), source)
