"""Searchers by name: random, Optuna TPE, NSGA-II and multi-objective TPE.

Every searcher is Ray Tune's ``OptunaSearch`` around a seeded Optuna sampler, so a seed
reproduces the sequence of suggested configurations and the state is saved with the search.
"""

from __future__ import annotations

from collections.abc import Sequence

SEARCHERS = ("random", "tpe", "nsga2", "motpe")
MULTI_OBJECTIVE_SEARCHERS = ("nsga2", "motpe")


def make_sampler(name: str, *, seed: int, population_size: int | None = None):
    """The seeded Optuna sampler behind searcher ``name``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name in ("tpe", "motpe"):
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population_size or 16)
    raise ValueError(f"unknown searcher {name!r}; choose from {', '.join(SEARCHERS)}")


def make_searcher(
    name: str,
    *,
    objectives: Sequence[str],
    modes: Sequence[str],
    seed: int,
    population_size: int | None = None,
):
    """An ``OptunaSearch`` for ``name``.

    Single-objective searchers (random, tpe) optimise the trial's ``score`` (the scalarised
    objectives, maximised); multi-objective ones (nsga2, motpe) get the objectives themselves.
    The search space arrives from the Tuner's ``param_space``.
    """
    from ray.tune.search.optuna import OptunaSearch

    sampler = make_sampler(name, seed=seed, population_size=population_size)
    if name in MULTI_OBJECTIVE_SEARCHERS:
        return OptunaSearch(metric=list(objectives), mode=list(modes), sampler=sampler)
    return OptunaSearch(metric="score", mode="max", sampler=sampler)
