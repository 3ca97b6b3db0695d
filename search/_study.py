"""``StudySearcher``: a Ray Tune searcher that owns an Optuna study through ask/tell.

The study holds the trials the search launched (``RUNNING`` until Tune reports them, then
``COMPLETE`` with their objective values or ``FAIL``), plus isomorphic duplicates of finished
trials, told the original's values (user attribute ``duplicate_of``). Candidates are proposed
by the sampler in a private *proposal study* that mirrors the finished trials of the real one,
rebuilt for every launch, so that candidates which are never launched (duplicates, screened
out) leave no trial in the study. Each proposal gets a fresh sampler seeded from ``(seed,
round)``: a search is reproducible, and a restored search proposes exactly what the
uninterrupted one would have.

A network is launched at most once: configurations that train the same network (isomorphic
cells, a schedule of a dense network, ...: ``robnas.spaces._effective.effective_key``) count as one;
with a :class:`~robnas.search._screening.Screen` the launch is the best predicted of a pool.
``budget`` caps the trials launched: the search ends when it is reached or when the space is
exhausted (``max_retries`` duplicates or candidates above the size limits in a row).

``points_to_evaluate`` are launched first, in order, unscreened: each is enqueued in the
proposal study (Optuna's ``enqueue_trial``), so the sampler proposes the keys a point leaves
out; a point whose network was launched already is skipped. With ``limits`` (``SizeLimits``),
a candidate whose network is above a size limit is never launched: a sampler proposal is told
to the study as a ``FAIL`` trial with user attribute ``infeasible`` (the reason) and another is
asked; drawn candidates and neighbours above a limit are dropped from the screening pool.

State is JSON (:mod:`robnas.search._json_state`), written to
``robnas-searcher-state-<session>.json`` beside Tune's experiment state and validated on load.

This module is one class (Tune's searcher API, the bookkeeping of launches and its state, which
share every attribute); the parts that stand alone are ``_proposals`` (the sampler's
candidates), ``_screening`` and ``_acquisition`` (the choice) and ``_study_state`` (the files).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from ray.tune.search import ConcurrencyLimiter, Searcher, SearchGenerator
from robnas.search._domains import draw, searched_domains, to_distribution, to_domain
from robnas.search._json_state import (
    StateError,
    number_map_in,
    number_map_out,
    read_state,
    require,
    write_state,
)
from robnas.search._proposals import Proposals
from robnas.search._ray_compat import release_slots, reopen_search_generator
from robnas.search._screening import Candidate, Screen, finite_values
from robnas.search._searchers import make_sampler
from robnas.search._study_state import (
    STATE_KIND,
    STATE_PATTERN,
    STATE_VERSION,
    trial_state,
    trials_from_json,
    trials_to_json,
)
from robnas.spaces._effective import effective_key
from robnas.spaces._objectives import Objective
from robnas.spaces._runtime import RUNTIME_KEYS

if TYPE_CHECKING:
    from robnas.search._size_limits import SizeLimits

__all__ = ["StudySearchGenerator", "StudySearcher"]



@dataclass
class _Launch:
    """A launched trial: its study trial number, config key and searched config."""

    number: int
    key: str
    config: dict[str, Any]
    done: bool = False


class StudySearcher(Searcher):
    """Propose with an Optuna sampler, deduplicate, screen, and tell the study what was measured.

    Args:
        sampler: ``random``, ``tpe``, ``motpe`` or ``nsga2`` (see ``make_sampler``).
        objectives: what the study optimises (default: ``score``, maximised).
        seed: seed of the samplers and of the searcher's own draws.
        budget: trials to launch at most (None: no limit).
        screen: the screening of candidates (None: launch the first new proposal).
        points_to_evaluate: configurations (searched keys; keys left out are proposed by the
            sampler) launched first.
        limits: the size limits of a launched network (``robnas.search._size_limits.SizeLimits``).
        max_retries: duplicates or candidates above the limits tolerated in a row before the
            space counts as exhausted.
    """

    CKPT_FILE_TMPL = STATE_PATTERN

    def __init__(
        self,
        sampler: str = "tpe",
        *,
        objectives: Sequence[Objective | str] | None = None,
        seed: int = 0,
        budget: int | None = None,
        screen: Screen | None = None,
        points_to_evaluate: Sequence[Mapping[str, Any]] = (),
        limits: SizeLimits | None = None,
        max_retries: int = 200,
    ) -> None:
        self.objectives = tuple(Objective.parse(o) for o in (objectives or ("score:max",)))
        names = [o.name for o in self.objectives]
        directions = [o.direction for o in self.objectives]
        super().__init__(metric=names[0] if len(names) == 1 else names,
                         mode=directions[0] if len(names) == 1 else directions)
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ValueError(f"budget must be an integer >= 1, got {budget!r}")
        make_sampler(sampler, seed=seed)  # a bad name fails now, not at the first proposal
        self.sampler_name, self.seed, self.budget, self.screen = sampler, int(seed), budget, screen
        self.max_retries, self.limits = max_retries, limits
        self._points = [dict(p) for p in points_to_evaluate]
        self._exhausted = False
        self._domains: dict[str, Any] = {}
        self._distributions: dict[str, Any] = {}
        self._constants: dict[str, Any] = {}  # the fixed keys of Tune's param_space
        self._rng = np.random.default_rng(seed)
        self._rounds = 0
        self._launched: dict[str, _Launch] = {}  # trial id -> launch
        self._by_key: dict[str, str] = {}  # config key -> trial id
        self._results: dict[str, dict[str, float]] = {}  # trial id -> final values, completion order
        self.num_duplicates = self.num_screened_out = self.num_explored = self.num_infeasible = 0
        self.study = self._new_study()
        self._proposals: Proposals | None = None  # the proposals of the pool being built

    # ------------------------------------------------------------------ Tune's searcher API

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        """Adopt the searched domains of Tune's ``param_space`` (fixed keys come from Tune)."""
        self._domains = searched_domains(config)
        self._distributions = {name: to_distribution(name, d) for name, d in self._domains.items()}
        self._constants = {k: v for k, v in config.items() if k not in self._domains and k not in RUNTIME_KEYS}
        self._by_key = {self.key_of(launch.config): t for t, launch in self._launched.items()}
        return True

    def key_of(self, config: Mapping[str, Any]) -> str:
        """The key of the network ``config`` (searched keys) trains, with this search's fixed keys."""
        return effective_key(config, self._constants)

    def suggest(self, trial_id: str) -> dict | None:
        if self.budget is not None and len(self._launched) >= self.budget:
            return Searcher.FINISHED
        point = self._next_point()
        if point is not None:
            return self._launch(trial_id, point)
        screen = self.screen
        explore = screen is not None and screen.size > 1 and self._rng.random() < screen.explore
        size = 1 if screen is None or explore else screen.size
        pool = self._pool(size, screen.asked if screen is not None else 1)
        if not pool:
            self._exhausted = True
            return Searcher.FINISHED
        chosen = 0
        if screen is not None and not explore and screen.size > 1:
            chosen = screen.choose(
                pool, [(self._launched[t].config, values) for t, values in self._results.items()],
                domains=self._domains, launched=self._by_key.__contains__, rng=self._rng, key_of=self.key_of,
                fits=self._config_fits,
            )
        self.num_explored += int(explore)
        self.num_screened_out += len(pool) - 1
        return self._launch(trial_id, pool[chosen])

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        launch = self._launched.get(trial_id)
        if launch is not None and self.screen is not None and not self._is_nan(result):
            self.screen.observe(launch.key, launch.config, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        launch = self._launched.get(trial_id)
        if launch is None or launch.done:
            return
        launch.done = True
        if result is not None and self._is_nan(result):
            result, error = None, True  # diverged: no sampler models a NaN
        if result is not None and self.screen is not None:
            self.screen.observe(launch.key, launch.config, result)
        values = None if result is None or error else finite_values(result, self._needed)
        if values is None or any(o.name not in values for o in self.objectives):
            self.study.tell(launch.number, state=trial_state("FAIL"))
            return
        self._results[trial_id] = values
        self.study.tell(launch.number, [values[o.name] for o in self.objectives])

    def has_finished(self, trial_id: str) -> bool:
        """Whether ``trial_id`` was launched by this searcher and has completed or failed."""
        launch = self._launched.get(trial_id)
        return launch is not None and launch.done

    @property
    def is_done(self) -> bool:
        """True when the budget is used up or the space exhausted: nothing more to launch."""
        return self._exhausted or (self.budget is not None and len(self._launched) >= self.budget)

    # ------------------------------------------------------------------ proposals

    def _next_point(self) -> Candidate | None:
        """The next of ``points_to_evaluate`` that trains a new network within the limits, the
        keys it leaves out proposed by the sampler (None: no point left). A point is removed
        once launched, or dropped after ``max_retries`` completions that are duplicates or above the limits."""
        while self._points:
            point = self._points[0]
            tries = self.max_retries if set(self._distributions) - set(point) else 1
            for _ in range(tries):
                self._proposals = None
                candidate = self._propose(point)
                if candidate.key in self._by_key:
                    self.num_duplicates += 1
                    self._add_duplicate(candidate)
                elif self._fits(candidate):
                    self._points.pop(0)
                    return candidate
            self._points.pop(0)
        return None

    def _pool(self, size: int, asked: int) -> list[Candidate]:
        """Up to ``size`` new candidates within the limits: ``asked`` from the sampler, then space draws."""
        pool: list[Candidate] = []
        keys: set[str] = set()
        rejected = 0
        self._proposals = None
        while len(pool) < min(size, asked) and rejected < self.max_retries:
            candidate = self._propose()
            if candidate is None:
                break
            if candidate.key in self._by_key or candidate.key in keys:
                rejected += 1
                self.num_duplicates += 1
                self._add_duplicate(candidate)
                continue
            if not self._fits(candidate):
                rejected += 1
                continue
            keys.add(candidate.key)
            pool.append(candidate)
        rejected = 0
        while len(pool) < size and self._domains and rejected < self.max_retries:
            config = draw(self._domains, self._rng)
            key = self.key_of(config)
            if key in self._by_key or key in keys or not self._config_fits(config):
                rejected += 1
                continue
            keys.add(key)
            pool.append(Candidate(config, key, "drawn"))
        return pool

    def _propose(self, point: Mapping[str, Any] | None = None) -> Candidate | None:
        """The sampler's next proposal, completing ``point`` if given (None: no space to propose from)."""
        if not self._distributions:
            return None if point is None else Candidate(dict(point), self.key_of(point), "point")
        if self._proposals is None:
            self._proposals = Proposals(self.study, sampler=self.sampler_name, seed=self.seed, rounds=self._rounds,
                                        distributions=self._distributions, key_of=self.key_of)
        candidate = self._proposals.next(point)
        self._rounds = self._proposals.rounds
        return candidate

    def _fits(self, candidate: Candidate) -> bool:
        """Whether ``candidate``'s network is within the limits; a proposal that is not is told
        to the study as a failed trial with user attribute ``infeasible``."""
        reason = None if self.limits is None else self.limits.excess(candidate.config)
        if reason is None:
            return True
        self.num_infeasible += 1
        self._add_trial("FAIL", candidate, user_attrs={"infeasible": reason, "origin": candidate.origin})
        return False

    def _config_fits(self, config: Mapping[str, Any]) -> bool:
        return self.limits is None or self.limits.fits(config)

    def _add_duplicate(self, candidate: Candidate) -> None:
        """A proposal isomorphic to a finished trial is a finished trial too: the study learns
        the original's values for it."""
        original = self._by_key.get(candidate.key)
        values = self._results.get(original) if original is not None else None
        if values is None or candidate.origin == "drawn":
            return
        self._add_trial("COMPLETE", candidate, values=[values[o.name] for o in self.objectives],
                        user_attrs={"duplicate_of": original})

    def _launch(self, trial_id: str, candidate: Candidate) -> dict:
        number = self._add_trial("RUNNING", candidate, user_attrs={"trial_id": trial_id, "origin": candidate.origin})
        self._launched[trial_id] = _Launch(number, candidate.key, candidate.config)
        self._by_key[candidate.key] = trial_id
        return dict(candidate.config)

    def _add_trial(self, state: str, candidate: Candidate, *, values=None, user_attrs=None) -> int:
        import optuna

        params = {k: v for k, v in candidate.config.items() if k in self._distributions}
        self.study.add_trial(optuna.trial.create_trial(
            state=trial_state(state), params=params, values=values,
            distributions={k: self._distributions[k] for k in params},
            system_attrs=candidate.system_attrs, user_attrs=user_attrs or {},
        ))
        return len(self.study.get_trials(deepcopy=False)) - 1

    def _new_study(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        directions = ["maximize" if o.maximize else "minimize" for o in self.objectives]
        return optuna.create_study(directions=directions, sampler=make_sampler(self.sampler_name, seed=self.seed))

    @property
    def _needed(self) -> tuple[str, ...]:
        screened = self.screen.names if self.screen is not None else ()
        return tuple(dict.fromkeys([*(o.name for o in self.objectives), *screened]))

    def _is_nan(self, result: Mapping[str, Any]) -> bool:
        return any(isinstance(v, float) and math.isnan(v) for v in (result.get(n) for n in self._needed))

    # ------------------------------------------------------------------ JSON state

    def save(self, checkpoint_path: str) -> None:
        write_state(checkpoint_path, STATE_KIND, STATE_VERSION, self.get_state())

    def restore(self, checkpoint_path: str) -> None:
        self.set_state(read_state(checkpoint_path, STATE_KIND, STATE_VERSION), where=str(checkpoint_path))

    def get_state(self) -> dict[str, Any]:
        from optuna.distributions import distribution_to_json

        return {
            "sampler": self.sampler_name, "seed": self.seed, "budget": self.budget,
            "objectives": [str(o) for o in self.objectives], "rounds": self._rounds,
            "space": {k: distribution_to_json(d) for k, d in self._distributions.items()},
            "constants": self._constants,
            "rng": self._rng.bit_generator.state, "points": self._points,
            "trials": trials_to_json(self.study),
            "launched": {t: {"number": l.number, "key": l.key, "config": l.config, "done": l.done}
                         for t, l in self._launched.items()},
            "results": {t: number_map_out(v) for t, v in self._results.items()},
            "counters": [self.num_duplicates, self.num_screened_out, self.num_explored],
            "infeasible": self.num_infeasible,
            "exhausted": self._exhausted,
            "screen": self.screen.state() if self.screen is not None else None,
        }

    def set_state(self, state: Mapping[str, Any], *, where: str = "searcher state") -> None:
        """Load :meth:`get_state`; the sampler, seed and objectives must be this searcher's."""
        try:
            self._load(state, where)
        except StateError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            raise StateError(f"{where}: damaged searcher state ({type(error).__name__}: {error})") from None

    def _load(self, state: Mapping[str, Any], where: str) -> None:
        from optuna.distributions import json_to_distribution

        mine = {"sampler": self.sampler_name, "seed": self.seed, "objectives": [str(o) for o in self.objectives]}
        for key, value in mine.items():
            if state.get(key) != value:
                raise StateError(f"{where}: saved {key} {state.get(key)!r} differs from this search's {value!r}")
        budget = state.get("budget")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise StateError(f"{where}: budget must be null or an integer >= 1")
        study = self._new_study()
        study.add_trials(trials_from_json(require(state, "trials", list, where)))
        launched = {
            str(t): _Launch(int(v["number"]), str(v["key"]), dict(v["config"]), bool(v["done"]))
            for t, v in require(state, "launched", dict, where).items()
        }
        numbers = len(study.get_trials(deepcopy=False))
        if any(not 0 <= launch.number < numbers for launch in launched.values()):
            raise StateError(f"{where}: a launched trial's number is not in the study")
        distributions = {str(k): json_to_distribution(d) for k, d in require(state, "space", dict, where).items()}
        if distributions:  # Tune hands the space over only at the start of a search
            self._distributions = distributions
            self._domains = {k: to_domain(d) for k, d in sorted(distributions.items())}
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = require(state, "rng", dict, where)
        if self.screen is not None:
            self.screen.load_state(require(state, "screen", dict, where), where)
        self.budget, self.study = budget, study
        self._rounds = int(require(state, "rounds", int, where))
        self._points = [dict(p) for p in require(state, "points", list, where)]
        self._exhausted = bool(require(state, "exhausted", bool, where))
        self._launched = launched
        constants = state.get("constants")  # absent in states written before robnas 0.1's effective keys
        if constants is not None:
            self._constants = dict(require(state, "constants", dict, where))
        # Keys are recomputed: an older state's keys may come from an older rule.
        self._by_key = {self.key_of(launch.config): t for t, launch in launched.items()}
        self._results = {str(t): number_map_in(v, where) for t, v in require(state, "results", dict, where).items()}
        self.num_duplicates, self.num_screened_out, self.num_explored = (
            int(c) for c in require(state, "counters", list, where))
        self.num_infeasible = int(state.get("infeasible", 0))  # absent in states written before size limits


class StudySearchGenerator(SearchGenerator):
    """Tune's ``SearchGenerator`` around a (wrapped) ``StudySearcher``: a restored search whose
    searcher has trials left (its budget was raised) generates trials again, and a restored
    ``ConcurrencyLimiter`` frees the slots of the trials the searcher knows finished."""

    def set_state(self, state: dict) -> None:
        # Tune calls this last in a restore, after every wrapper and the searcher are restored.
        super().set_state(state)
        searcher, limiters = self.searcher, []
        while not isinstance(searcher, StudySearcher) and hasattr(searcher, "searcher"):
            if isinstance(searcher, ConcurrencyLimiter):
                limiters.append(searcher)
            searcher = searcher.searcher
        if not isinstance(searcher, StudySearcher):
            return
        for limiter in limiters:
            release_slots(limiter, searcher.has_finished)
        if not searcher.is_done:
            reopen_search_generator(self)

