"""Searchers by name: random, Optuna TPE, NSGA-II and multi-objective TPE.

Each is a seeded Optuna sampler behind robnas's ``StudySearcher`` (``robnas.search._study``),
which owns the study through ask/tell.
"""

from __future__ import annotations

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
