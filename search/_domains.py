"""Ray Tune domains as Optuna distributions, and draws from them.

A robnas space is a dict of Tune domains (``tune.choice``, ``tune.uniform``,
``tune.loguniform``, ``tune.randint``, ``tune.lograndint``). The searcher asks Optuna with the
matching distributions and draws the screening pool from the domains themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from ray.tune.search.sample import Categorical, Domain, Float, Integer, LogUniform, Uniform


def searched_domains(config: Mapping[str, Any] | None) -> dict[str, Domain]:
    """The searched keys of a Tune ``param_space`` (the domains), sorted by name so that draws
    do not depend on the order Tune hands the space over."""
    return {key: value for key, value in sorted((config or {}).items()) if isinstance(value, Domain)}


def to_distribution(name: str, domain: Domain):
    """The Optuna distribution of one Tune domain; ValueError for a kind robnas does not search."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    sampler = domain.get_sampler()
    if isinstance(domain, Categorical):
        return CategoricalDistribution(list(domain.categories))
    if isinstance(domain, Float) and isinstance(sampler, (Uniform, LogUniform)):
        return FloatDistribution(domain.lower, domain.upper, log=isinstance(sampler, LogUniform))
    if isinstance(domain, Integer) and isinstance(sampler, (Uniform, LogUniform)):
        # Tune's integer upper bound is exclusive, Optuna's inclusive.
        return IntDistribution(domain.lower, domain.upper - 1, log=isinstance(sampler, LogUniform))
    raise ValueError(
        f"search space key {name!r}: {type(domain).__name__} with {type(sampler).__name__} sampling is not "
        "supported (use tune.choice, uniform, loguniform, randint or lograndint)"
    )


def to_domain(distribution) -> Domain:
    """The Tune domain of an Optuna distribution made by :func:`to_distribution` (its inverse:
    draws from the two are the same)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from ray import tune

    if isinstance(distribution, CategoricalDistribution):
        return tune.choice(list(distribution.choices))
    if isinstance(distribution, FloatDistribution) and distribution.step is None:
        return (tune.loguniform if distribution.log else tune.uniform)(distribution.low, distribution.high)
    if isinstance(distribution, IntDistribution) and distribution.step == 1:
        return (tune.lograndint if distribution.log else tune.randint)(distribution.low, distribution.high + 1)
    raise ValueError(f"no Tune domain for {distribution!r}")


def draw(domains: Mapping[str, Domain], rng: np.random.Generator) -> dict[str, Any]:
    """One configuration drawn from ``domains`` with ``rng``."""
    return {name: domain.sample(random_state=rng) for name, domain in domains.items()}


def neighbours(incumbent: Mapping[str, Any], domains: Mapping[str, Domain], rng: np.random.Generator) -> list[dict]:
    """One-change neighbours of ``incumbent``, in the order of ``domains``: every other value
    of a categorical dimension (a cell edge's op, ...), a fresh draw of a numeric one."""
    result = []
    for name, domain in domains.items():
        if name not in incumbent:
            continue
        if isinstance(domain, Categorical):
            values = [v for v in domain.categories if v != incumbent[name]]
        else:
            values = [domain.sample(random_state=rng)]
        result += [{**incumbent, name: value} for value in values]
    return result
