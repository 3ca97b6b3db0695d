"""A searcher wrapper that screens a pool of candidates with zero-cost proxies before launching.

For every trial, ``ScreeningSearcher`` builds a pool of ``screen`` candidates: ``asked`` of them
proposed by the inner searcher (random, TPE, NSGA-II, ...), the rest drawn uniformly from the
search space; with ``neighbours`` on, the pool also holds the one-change neighbours of the
incumbent (the best finished trial; with several objectives, see below): every other value of
one categorical dimension (a cell edge's op, ...), a fresh draw of one numeric dimension. It
drops those already launched or repeated in the pool (up to cell isomorphism, ``config_key``),
scores the rest with proxies of their real networks (``CandidateScorer``), predicts the search
objectives with a ``SurrogateRanker`` and launches the best one. With probability ``explore`` it
launches the inner searcher's next new candidate unscreened.

Several objectives (``m``): with probability ``1 / m`` a launch pushes the first objective
alone, as above; otherwise it is the candidate with the largest predicted hypervolume
improvement over the finished trials' front. The reference point is the pool's median predicted
first objective (the pool is mostly random draws: a typical configuration) and just below the
worst predicted value of each other objective, so launches spread over the part of the front
that beats a typical configuration rather than over networks too weak to matter; a random
member of that front lends its neighbours to the pool. List the objective to push first (e.g.
``robust_acc`` before ``params``).

Asking an Optuna sampler costs time in proportion to its study's size, and every asked
candidate stays in the study; drawing most of a large pool from the space keeps a search of
``n`` trials at about ``n * asked`` study entries instead of ``n * screen``.

The inner searcher is told about every candidate it suggested, and learns every launched one:

* the launched one gets its trial's results (a NaN objective, a diverged trial, is told as
  failed so that no sampler models a NaN); a launched draw from the space is added to the
  inner searcher's model as an evaluated point when it completes (Optuna searchers);
* a duplicate of a finished trial gets that trial's final result, of an unfinished or failed
  one is told as failed;
* a screened-out candidate is told as failed (``error=True``). Every Optuna sampler ignores
  failed trials, so its model is built only from measured results and TPE's random start-up
  phase is not shortened by candidates that never ran.

Results at any fidelity (every reported epoch) and final results train the ranker. The
state (inner searcher, launched keys, proxy cache, the ranker's data and the RNG) is saved
and restored with the search; the ranker's regressors are refitted after a restore.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from ray.tune.search import Searcher
from ray.tune.search.sample import Categorical, Domain

from robnas.analysis._pareto import pareto_mask
from robnas.search._candidate_proxies import DEFAULT_PROXIES, CandidateScorer
from robnas.search._dedup import InnerSearcherState, config_key
from robnas.search._encoding import FEATURE_NAMES, decode_trial, encode_config
from robnas.search._ranker import (
    DEFAULT_VOTE,
    SurrogateRanker,
    front_reference,
    gains,
    hypervolume_improvements,
)
from robnas.spaces import Objective

__all__ = ["DEFAULT_ASKED", "ScreeningSearcher", "add_evaluated"]

#: Candidates of a pool proposed by the inner searcher unless told otherwise.
DEFAULT_ASKED = 8


class ScreeningSearcher(InnerSearcherState):
    """Launch the best of ``screen`` candidates of ``inner``, as predicted by a surrogate ranker.

    Args:
        inner: the searcher proposing candidates (not wrapped in a ``DedupSearcher``: this
            searcher deduplicates itself).
        screen: candidates scored per launched trial (1 = no screening, dedup only).
        asked: candidates of the pool proposed by the inner searcher (default: ``screen``, at
            most ``DEFAULT_ASKED``); the others are drawn uniformly from the search space.
        neighbours: add the incumbent's one-change neighbours to every screened pool.
        objectives, modes: what the ranker predicts and the launch choice optimises (default:
            the inner searcher's ``metric`` and ``mode``).
        seed: seed of the exploration draws, the space draws and the regressors (the proxies'
            batch is fixed, so proxies are a function of the config alone).
        explore: probability of launching an unscreened candidate, in [0, 1].
        proxy_names: proxies scored per candidate; vote: those of the zero-shot vote.
        batch_size: images in the fixed proxy batch of the config's data set.
        min_fit: results needed before the ranker's regressors replace the zero-shot vote.
        n_estimators: trees of each of the ranker's regressors.
        max_retries: duplicates tolerated in a row before the space counts as exhausted.
        scorer: ``config -> {proxy: score}`` replacing the ``CandidateScorer`` (for tests).
    """

    def __init__(
        self,
        inner: Searcher,
        *,
        screen: int,
        asked: int | None = None,
        neighbours: bool = True,
        objectives: Sequence[str] | None = None,
        modes: Sequence[str] | None = None,
        seed: int = 0,
        explore: float = 0.1,
        proxy_names: Sequence[str] = DEFAULT_PROXIES,
        vote: Sequence[str] = DEFAULT_VOTE,
        batch_size: int = 32,
        min_fit: int = 8,
        n_estimators: int = 100,
        max_retries: int = 200,
        scorer: Callable[[Mapping[str, Any]], Mapping[str, float]] | None = None,
    ) -> None:
        super().__init__(metric=inner.metric, mode=inner.mode)
        if isinstance(screen, bool) or not isinstance(screen, int) or screen < 1:
            raise ValueError(f"screen must be an integer >= 1, got {screen!r}")
        if isinstance(explore, bool) or not isinstance(explore, (int, float)) or not 0 <= explore <= 1:
            raise ValueError(f"explore must be a number in [0, 1], got {explore!r}")
        asked = min(screen, DEFAULT_ASKED) if asked is None else asked
        if isinstance(asked, bool) or not isinstance(asked, int) or not 1 <= asked <= screen:
            raise ValueError(f"asked must be an integer in [1, screen={screen}], got {asked!r}")
        objectives, modes = _objectives_of(inner, objectives, modes)
        self._inner = inner
        self._screen = screen
        self._asked = asked
        self._neighbours = bool(neighbours)
        self._domains: dict[str, Domain] = {}
        self._explore = float(explore)
        self._max_retries = max_retries
        self._scorer = scorer or CandidateScorer(names=proxy_names, batch_size=batch_size)
        self._ranker = SurrogateRanker(
            [Objective(n, m) for n, m in zip(objectives, modes)],
            proxy_names=proxy_names, vote=vote, min_fit=min_fit, seed=seed, n_estimators=n_estimators,
        )
        self._rng = np.random.default_rng(seed)
        self._launched: dict[str, str] = {}  # config key -> trial id
        self._key_of: dict[str, str] = {}  # trial id -> config key
        self._inner_id: dict[str, str | None] = {}  # trial id -> id the inner knows (None: drawn)
        self._configs: dict[str, dict] = {}  # trial id -> launched config
        self._max_epochs: dict[str, int] = {}  # trial id -> the trial's epochs (fidelity unit)
        self._results: dict[str, dict] = {}  # trial id -> final result
        self._candidates: dict[str, tuple[dict[str, float], np.ndarray]] = {}  # key -> features
        self.num_duplicates = 0
        self.num_screened_out = 0
        self.num_explored = 0

    @property
    def ranker(self) -> SurrogateRanker:
        return self._ranker

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        # Sorted: draws must not depend on the order in which Tune hands the space over.
        self._domains = {k: v for k, v in sorted((config or {}).items()) if isinstance(v, Domain)}
        return super().set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict | None:
        explore = self._screen > 1 and self._rng.random() < self._explore
        pool, end = self._pool(trial_id, 1 if explore else self._screen)
        if not pool:
            return end
        chosen = 0 if explore or self._screen == 1 else self._screen_pool(pool)
        self.num_explored += int(explore)
        for i, (attempt_id, _, _) in enumerate(pool):
            if i != chosen:
                self.num_screened_out += 1
                if attempt_id is not None:
                    self._inner.on_trial_complete(attempt_id, result=None, error=True)
        attempt_id, config, key = pool[chosen]
        self._launched[key] = trial_id
        self._key_of[trial_id] = key
        self._inner_id[trial_id] = attempt_id
        self._configs[trial_id] = config
        self._max_epochs[trial_id] = _max_epochs(config)
        self._features(key, config)
        return config

    def _pool(self, trial_id: str, size: int) -> tuple[list[tuple[str | None, dict, str]], Any]:
        """Up to ``size`` new candidates ``(attempt id or None if drawn, config, key)``, and what
        ended the asking early: ``None`` (inner has nothing now), ``FINISHED`` (inner or
        retries done)."""
        pool: list[tuple[str | None, dict, str]] = []
        keys: set[str] = set()
        duplicates = 0
        attempt = 0
        while len(pool) < min(size, self._asked):
            if duplicates >= self._max_retries:
                return pool, Searcher.FINISHED
            attempt_id = f"{trial_id}_c{attempt}"
            attempt += 1
            config = self._inner.suggest(attempt_id)
            if config is None or config == Searcher.FINISHED:
                return pool, config
            key = config_key(config)
            if key in self._launched or key in keys:
                duplicates += 1
                self.num_duplicates += 1
                result = self._results.get(self._launched.get(key, ""))
                self._inner.on_trial_complete(attempt_id, result=result, error=result is None)
                continue
            keys.add(key)
            pool.append((attempt_id, config, key))
        duplicates = 0
        while len(pool) < size and self._domains and duplicates < self._max_retries:
            config = {name: domain.sample(random_state=self._rng) for name, domain in self._domains.items()}
            key = config_key(config)
            if key in self._launched or key in keys:
                duplicates += 1
                continue
            keys.add(key)
            pool.append((None, config, key))
        return pool, None

    def _finished(self) -> tuple[list[dict], np.ndarray]:
        """Configs of the finished trials and their observed objectives as gains ``(n, m)``."""
        finished = [t for t in self._results if t in self._configs]
        observed = gains(
            np.array([[float(self._results[t].get(n, math.nan)) for n in self._ranker.names] for t in finished])
            .reshape(len(finished), len(self._ranker.objectives)),
            self._ranker.directions,
        )
        return [self._configs[t] for t in finished], observed

    def _neighbours_of(self, incumbent: Mapping[str, Any] | None) -> list[dict]:
        """One-change neighbours of ``incumbent``, in the order of the space's dimensions."""
        if incumbent is None or not self._neighbours:
            return []
        neighbours = []
        for name, domain in self._domains.items():
            if name not in incumbent:
                continue
            if isinstance(domain, Categorical):
                values = [v for v in domain.categories if v != incumbent[name]]
            else:
                values = [domain.sample(random_state=self._rng)]
            neighbours += [{**incumbent, name: value} for value in values]
        return neighbours

    def _features(self, key: str, config: Mapping[str, Any]) -> tuple[dict[str, float], np.ndarray]:
        if key not in self._candidates:
            proxies = dict(self._scorer(config))
            try:
                encoded = encode_config(config)
            except ValueError:
                encoded = np.full(len(FEATURE_NAMES), np.nan)
            self._candidates[key] = (proxies, encoded)
        return self._candidates[key]

    def _predict(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Predicted objectives ``(n, m)`` of ``configs``."""
        rows = [self._features(config_key(c), c) for c in configs]
        return self._ranker.predict([p for p, _ in rows], np.stack([f for _, f in rows]))

    def _gains(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Predicted objectives of ``configs`` as gains ``(n, m)`` (higher = better)."""
        return gains(self._predict(configs), self._ranker.directions)

    def _join(self, pool: list[tuple[str | None, dict, str]], incumbent: Mapping[str, Any] | None) -> None:
        """Add the one-change neighbours of ``incumbent`` not launched yet to ``pool`` (in place)."""
        keys = {key for _, _, key in pool}
        for config in self._neighbours_of(incumbent):
            key = config_key(config)
            if key not in self._launched and key not in keys:
                keys.add(key)
                pool.append((None, config, key))

    def _screen_pool(self, pool: list[tuple[str | None, dict, str]]) -> int:
        """Add an incumbent's neighbours to ``pool`` (in place); index of the one to launch.

        One objective, and with probability ``1 / m`` of several: the best predicted first
        objective, the incumbent being the finished trial with the best first objective.
        Otherwise: the largest predicted hypervolume improvement (``_improve_front``).
        """
        objectives = len(self._ranker.objectives)
        if objectives > 1 and self._rng.random() >= 1.0 / objectives:
            return self._improve_front(pool)
        launched, observed = self._finished()
        self._join(pool, launched[_best_first(observed)] if launched else None)
        if len(pool) == 1:
            return 0
        return _best_first(self._gains([c for _, c, _ in pool]))

    def _improve_front(self, pool: list[tuple[str | None, dict, str]]) -> int:
        """Index of the candidate of ``pool`` predicted to add the most hypervolume to the front.

        The front is that of the finished trials (their predictions while the ranker is
        zero-shot, so that votes, ranks within one scored set, compare). The reference point
        (``front_reference``) is the pool's median predicted first objective, and just below
        the worst predicted value of each other objective: the front worth improving is the
        part that beats a typical configuration. A random member of it lends its neighbours to
        the pool. When no candidate improves the front, the best predicted first objective.
        """
        launched, observed = self._finished()
        fitted = self._ranker.is_fitted()
        size = len(pool)

        def view() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            predicted = self._gains([c for _, c, _ in pool] + launched)
            reference = front_reference(predicted, typical=predicted[:size, 0])
            return predicted[: len(pool)], observed if fitted else predicted[len(pool):], reference

        _, front, reference = view()
        members = np.flatnonzero(pareto_mask(front, [True] * front.shape[1]) & np.all(front > reference, axis=1))
        if members.size:
            self._join(pool, launched[int(self._rng.choice(members))])
        candidates, front, reference = view()
        improvement = hypervolume_improvements(front, candidates, reference)
        if not np.any(improvement > 0):
            return _best_first(candidates)
        return int(np.argmax(improvement))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self._inner_id:
            return
        self._observe(trial_id, result)
        inner_id = self._inner_id[trial_id]
        if inner_id is not None and not self._is_nan(result):
            self._inner.on_trial_result(inner_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._inner_id:
            return
        inner_id = self._inner_id[trial_id]
        if result is not None and self._is_nan(result):
            result, error = None, True
        if result is not None:
            self._observe(trial_id, result)
            if not error:
                self._results[trial_id] = copy.deepcopy(result)
        if inner_id is not None:
            self._inner.on_trial_complete(inner_id, result=result, error=error)
        elif result is not None and not error:
            add_evaluated(self._inner, self._configs[trial_id], result)

    def _observe(self, trial_id: str, result: Mapping[str, Any]) -> None:
        key = self._key_of[trial_id]
        if key not in self._candidates:
            return
        proxies, encoded = self._candidates[key]
        epoch = result.get("epoch")
        epochs = self._max_epochs.get(trial_id, 0)
        fidelity = min(1.0, epoch / epochs) if isinstance(epoch, (int, float)) and epochs > 0 else 1.0
        self._ranker.observe(key, proxies, encoded, result, fidelity=fidelity)

    def _is_nan(self, result: Mapping[str, Any]) -> bool:
        names = set(self._ranker.names) | set(_names(self.metric))
        return any(isinstance(v, float) and math.isnan(v) for v in (result.get(n) for n in names))


def add_evaluated(searcher: Searcher, config: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
    """Add a configuration ``searcher`` did not suggest, and its result, to the searcher's model.

    Ray's ``OptunaSearch.add_evaluated_point`` takes one value; a multi-objective study gets a
    trial with all its values through the study itself. Returns False (nothing added) for
    other searchers, or when the result lacks one of the searcher's metrics.
    """
    study = getattr(searcher, "_ot_study", None)
    space = getattr(searcher, "_space", None)
    metrics = _names(searcher.metric)
    values = [result.get(name) for name in metrics]
    if study is None or not isinstance(space, dict) or not metrics or any(
        not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) for v in values
    ):
        return False
    import optuna

    params = {name: config[name] for name in space if name in config}
    if len(params) != len(space):
        return False
    trial = optuna.trial.create_trial(params=params, distributions=space, values=[float(v) for v in values])
    study.add_trial(trial)
    return True


def _best_first(gain: np.ndarray) -> int:
    """Row of ``gain`` ``(n, m)`` with the best first objective (``nan`` counts as worst)."""
    return int(np.argmax(np.nan_to_num(gain[:, 0], nan=-np.inf)))


def _names(metric: str | Sequence[str] | None) -> tuple[str, ...]:
    if metric is None:
        return ()
    return (metric,) if isinstance(metric, str) else tuple(metric)


def _objectives_of(
    inner: Searcher, objectives: Sequence[str] | None, modes: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    objectives = _names(objectives if objectives is not None else inner.metric)
    modes = _names(modes if modes is not None else inner.mode)
    if not objectives or len(modes) != len(objectives):
        raise ValueError(
            f"give the objectives to screen for and one mode each, got {objectives!r} and {modes!r}"
        )
    return objectives, modes


def _max_epochs(config: Mapping[str, Any]) -> int:
    try:
        return decode_trial(config).training.max_epochs
    except ValueError:
        return 0
