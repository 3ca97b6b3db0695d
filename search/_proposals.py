"""Sampler proposals for one pool, asked from a study that mirrors the finished trials.

The proposal study holds copies of the search study's ``COMPLETE`` trials (what every sampler
models) and, once asked, the proposals of this pool; it is thrown away after the pool, so
that proposals which are never launched leave no trial in the search study. Each proposal gets
a fresh sampler seeded from ``(seed, round)``: the same rounds on the same finished trials give
the same proposals, before and after a restore.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from robnas.search._screening import Candidate
from robnas.search._searchers import make_sampler
from robnas.search._study_state import trial_state


class Proposals:
    """Ask sampler ``sampler`` for candidates over ``distributions`` (Optuna's), given ``study``;
    ``key_of`` gives a candidate's key (the network it trains)."""

    def __init__(self, study, *, sampler: str, seed: int, rounds: int, distributions: Mapping[str, Any],
                 key_of: Callable[[Mapping[str, Any]], str]) -> None:
        import optuna

        self.sampler, self.seed, self.rounds, self.key_of = sampler, seed, rounds, key_of
        self.distributions = dict(distributions)
        self._study = optuna.create_study(directions=study.directions, sampler=make_sampler(sampler, seed=seed))
        self._study.add_trials(study.get_trials(deepcopy=False, states=(trial_state("COMPLETE"),)))

    def next(self, point: Mapping[str, Any] | None = None) -> Candidate:
        """The sampler's next proposal, with its system attributes (e.g. NSGA-II's generation).

        ``point``: values to propose (enqueued with Optuna's ``enqueue_trial``); the sampler
        proposes the keys it leaves out, and the candidate's origin is ``"point"``.
        """
        round_seed = int(np.random.SeedSequence([self.seed, self.rounds]).generate_state(1)[0])
        self._study.sampler = make_sampler(self.sampler, seed=round_seed)
        self.rounds += 1
        if point is not None:
            self._study.enqueue_trial({k: v for k, v in point.items() if k in self.distributions})
        trial = self._study.ask(fixed_distributions=self.distributions)
        frozen = self._study.get_trials(deepcopy=False)[trial.number]
        config = {**(point or {}), **trial.params}
        origin = "asked" if point is None else "point"
        return Candidate(config, self.key_of(config), origin, dict(frozen.system_attrs))
