"""Schedulers by name; the epoch is the time attribute of every one of them."""

from __future__ import annotations

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
            objectives=settings.objectives,
            modes=settings.modes,
            max_t=settings.max_epochs,
            grace_period=settings.grace_period,
            reduction_factor=settings.reduction_factor,
        )
    raise ValueError(f"unknown scheduler {name!r}; choose from {', '.join(SCHEDULERS)}")
