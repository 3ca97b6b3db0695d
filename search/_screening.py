"""A searcher wrapper that screens a pool of candidates with zero-cost proxies before launching.

For every trial, ``ScreeningSearcher`` asks the inner searcher (random, TPE, NSGA-II, ...) for
``screen`` candidates, drops those already launched or repeated in the pool (up to cell
isomorphism, ``config_key``), scores the rest with proxies of their real networks
(``CandidateScorer``), predicts the search objectives with a ``SurrogateRanker`` and launches
the best one (several objectives: a member of the predicted non-dominated set). With
probability ``explore`` it launches the inner searcher's next new candidate unscreened.

The inner searcher is told about every candidate it suggested:

* the launched one gets its trial's results (a NaN objective, a diverged trial, is told as
  failed so that no sampler models a NaN);
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

from robnas.search._candidate_proxies import DEFAULT_PROXIES, CandidateScorer
from robnas.search._dedup import InnerSearcherState, config_key
from robnas.search._encoding import FEATURE_NAMES, decode_trial, encode_config
from robnas.search._ranker import DEFAULT_VOTE, SurrogateRanker, best_candidate

__all__ = ["ScreeningSearcher"]


class ScreeningSearcher(InnerSearcherState):
    """Launch the best of ``screen`` candidates of ``inner``, as predicted by a surrogate ranker.

    Args:
        inner: the searcher proposing candidates (not wrapped in a ``DedupSearcher``: this
            searcher deduplicates itself).
        screen: candidates scored per launched trial (1 = no screening, dedup only).
        objectives, modes: what the ranker predicts and the launch choice optimises (default:
            the inner searcher's ``metric`` and ``mode``).
        seed: seed of the exploration draws, the proxies' batch and the regressors.
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
        objectives, modes = _objectives_of(inner, objectives, modes)
        self._inner = inner
        self._screen = screen
        self._explore = float(explore)
        self._max_retries = max_retries
        self._scorer = scorer or CandidateScorer(names=proxy_names, batch_size=batch_size, seed=seed)
        self._ranker = SurrogateRanker(
            objectives, modes, proxy_names=proxy_names, vote=vote, min_fit=min_fit, seed=seed,
            n_estimators=n_estimators,
        )
        self._rng = np.random.default_rng(seed)
        self._launched: dict[str, str] = {}  # config key -> trial id
        self._key_of: dict[str, str] = {}  # trial id -> config key
        self._inner_id: dict[str, str] = {}  # trial id -> id the inner searcher knows
        self._max_epochs: dict[str, int] = {}  # trial id -> the trial's epochs (fidelity unit)
        self._results: dict[str, dict] = {}  # trial id -> final result
        self._candidates: dict[str, tuple[dict[str, float], np.ndarray]] = {}  # key -> features
        self.num_duplicates = 0
        self.num_screened_out = 0
        self.num_explored = 0

    @property
    def ranker(self) -> SurrogateRanker:
        return self._ranker

    def suggest(self, trial_id: str) -> dict | None:
        explore = self._screen > 1 and self._rng.random() < self._explore
        pool, end = self._pool(trial_id, 1 if explore else self._screen)
        if not pool:
            return end
        chosen = 0 if len(pool) == 1 else self._choose([config for _, config, _ in pool])
        self.num_explored += int(explore)
        for i, (attempt_id, _, _) in enumerate(pool):
            if i != chosen:
                self.num_screened_out += 1
                self._inner.on_trial_complete(attempt_id, result=None, error=True)
        attempt_id, config, key = pool[chosen]
        self._launched[key] = trial_id
        self._key_of[trial_id] = key
        self._inner_id[trial_id] = attempt_id
        self._max_epochs[trial_id] = _max_epochs(config)
        self._features(key, config)
        return config

    def _pool(self, trial_id: str, size: int) -> tuple[list[tuple[str, dict, str]], Any]:
        """Up to ``size`` new candidates ``(attempt id, config, key)``, and what ended the
        asking early: ``None`` (inner has nothing now), ``FINISHED`` (inner or retries done)."""
        pool: list[tuple[str, dict, str]] = []
        keys: set[str] = set()
        duplicates = 0
        attempt = 0
        while len(pool) < size:
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
        return pool, None

    def _features(self, key: str, config: Mapping[str, Any]) -> tuple[dict[str, float], np.ndarray]:
        if key not in self._candidates:
            proxies = dict(self._scorer(config))
            try:
                encoded = encode_config(config)
            except ValueError:
                encoded = np.full(len(FEATURE_NAMES), np.nan)
            self._candidates[key] = (proxies, encoded)
        return self._candidates[key]

    def _choose(self, configs: Sequence[Mapping[str, Any]]) -> int:
        rows = [self._features(config_key(c), c) for c in configs]
        predicted = self._ranker.predict([p for p, _ in rows], np.stack([f for _, f in rows]))
        return best_candidate(predicted, self._ranker.modes)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self._inner_id:
            return
        self._observe(trial_id, result)
        if not self._is_nan(result):
            self._inner.on_trial_result(self._inner_id[trial_id], result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        inner_id = self._inner_id.get(trial_id)
        if inner_id is None:
            return
        if result is not None and self._is_nan(result):
            result, error = None, True
        if result is not None:
            self._observe(trial_id, result)
            if not error:
                self._results[trial_id] = copy.deepcopy(result)
        self._inner.on_trial_complete(inner_id, result=result, error=error)

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
        names = set(self._ranker.objectives) | set(_names(self.metric))
        return any(isinstance(v, float) and math.isnan(v) for v in (result.get(n) for n in names))



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
