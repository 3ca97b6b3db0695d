"""Screening: score a pool of candidates with zero-cost proxies, launch the best predicted one.

For every launch, the searcher (``robnas.search._study``) builds a pool of ``size`` candidates:
``asked`` proposed by its Optuna sampler, the rest drawn uniformly from the search space.
:meth:`Screen.choose` adds the one-change neighbours of an incumbent, scores every candidate
with proxies of its real network (``CandidateScorer``), predicts the objectives with a
``SurrogateRanker`` and returns the one to launch. With probability ``explore`` the searcher
launches its sampler's next candidate unscreened instead.

Several objectives (``m``): with probability ``1 / m`` a launch pushes the first objective
alone (the incumbent is the finished trial best on it); otherwise it is the candidate with the
largest predicted hypervolume improvement over the finished trials' front. The reference point
is the pool's median prediction of every learnt objective (an accuracy or a score; the pool is
mostly random draws: a typical configuration) and just below the worst predicted value of each
size objective (parameters, MACs, time, sparsity: known functions of the network), so launches
spread over the part of the front that beats a typical configuration on every learnt objective
and covers every size; a random member of that front lends its neighbours to the pool. List
the objective to push first.

Results at any fidelity (every reported epoch) and final results train the ranker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robnas.search import _acquisition as acq
from robnas.search._candidate_proxies import DEFAULT_PROXIES, CandidateScorer
from robnas.search._domains import neighbours
from robnas.search._encoding import FEATURE_NAMES, decode_trial, encode_config
from robnas.search._json_state import StateError, floats_in, floats_out, number_map_in, number_map_out, require
from robnas.search._ranker import DEFAULT_VOTE, SurrogateRanker
from robnas.search._ranker_models import SIZE_PROXIES, SPARSITY
from robnas.spaces._keys import config_key
from robnas.spaces._objectives import Objective, names_of

__all__ = ["DEFAULT_ASKED", "Candidate", "Screen"]

#: Candidates of a pool proposed by the sampler unless told otherwise.
DEFAULT_ASKED = 8


@dataclass
class Candidate:
    """One configuration of a pool: ``origin`` is ``"asked"`` (the sampler), ``"drawn"`` (the
    space), ``"point"`` (``points_to_evaluate``) or ``"neighbour"``; ``system_attrs`` are the
    sampler's attributes of its proposal (e.g. NSGA-II's generation)."""

    config: dict[str, Any]
    key: str
    origin: str
    system_attrs: dict[str, Any] = field(default_factory=dict)


class Screen:
    """The screening of a search: proxies, the surrogate ranker and the launch rule.

    Args:
        objectives: what the ranker predicts and the launch rule optimises.
        size: candidates scored per launch (>= 1; 1 = no screening).
        asked: candidates of the pool proposed by the sampler (default: ``min(size, 8)``).
        neighbours: add an incumbent's one-change neighbours to every screened pool.
        explore: probability of launching an unscreened candidate, in [0, 1].
        proxy_names: proxies scored per candidate; vote: those of the zero-shot vote.
        batch_size: images in the fixed proxy batch of the config's data set.
        min_fit: results needed before the ranker's regressors replace the zero-shot vote.
        n_estimators: trees of each of the ranker's regressors; seed: their random state.
        scorer: ``config -> {proxy: score}`` replacing the ``CandidateScorer`` (tests, caches).
    """

    def __init__(
        self,
        objectives: Sequence[Objective],
        *,
        size: int,
        asked: int | None = None,
        neighbours: bool = True,
        explore: float = 0.1,
        proxy_names: Sequence[str] = DEFAULT_PROXIES,
        vote: Sequence[str] = DEFAULT_VOTE,
        batch_size: int = 32,
        min_fit: int = 8,
        n_estimators: int = 100,
        seed: int = 0,
        scorer: Callable[[Mapping[str, Any]], Mapping[str, float]] | None = None,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"screen must be an integer >= 1, got {size!r}")
        if isinstance(explore, bool) or not isinstance(explore, (int, float)) or not 0 <= explore <= 1:
            raise ValueError(f"explore must be a number in [0, 1], got {explore!r}")
        asked = min(size, DEFAULT_ASKED) if asked is None else asked
        if isinstance(asked, bool) or not isinstance(asked, int) or not 1 <= asked <= size:
            raise ValueError(f"asked must be an integer in [1, screen={size}], got {asked!r}")
        if not objectives:
            raise ValueError("screening needs at least one objective")
        self.objectives = tuple(Objective.parse(o) for o in objectives)
        self.size, self.asked, self.explore = size, asked, float(explore)
        self.use_neighbours = bool(neighbours)
        self.scorer = scorer or CandidateScorer(names=proxy_names, batch_size=batch_size)
        self.ranker = SurrogateRanker(
            self.objectives, proxy_names=proxy_names, vote=vote, min_fit=min_fit, seed=seed, n_estimators=n_estimators,
        )
        self._features: dict[str, tuple[dict[str, float], np.ndarray]] = {}  # key -> (proxies, encoded)
        self._labels: dict[str, tuple[dict[str, float], float]] = {}  # key -> (latest values, fidelity)

    @property
    def names(self) -> tuple[str, ...]:
        return names_of(self.objectives)

    # ------------------------------------------------------------------ the launch rule

    def choose(
        self,
        pool: list[Candidate],
        finished: Sequence[tuple[Mapping[str, Any], Mapping[str, float]]],
        *,
        domains: Mapping[str, Any],
        launched: Callable[[str], bool],
        rng: np.random.Generator,
        key_of: Callable[[Mapping[str, Any]], str] = config_key,
        fits: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> int:
        """Index into ``pool`` of the candidate to launch; neighbours of an incumbent are
        appended to ``pool`` first (in place).

        ``finished``: ``(config, {objective: value})`` of the finished trials in completion
        order; ``launched(key)``: whether a config key was launched already; ``key_of``: the
        key of a config (the network it trains); ``fits(config)``: whether a neighbour may be
        launched (e.g. is within the search's size limits; default: all may).
        """
        configs = [config for config, _ in finished]
        observed = acq.gains(
            np.array([[float(values.get(n, math.nan)) for n in self.names] for _, values in finished]),
            self.objectives,
        )
        join = lambda incumbent: self._join(pool, incumbent, domains, launched, rng, key_of, fits)  # noqa: E731
        if len(self.objectives) > 1 and rng.random() >= 1.0 / len(self.objectives):
            return self._improve_front(pool, configs, observed, join, rng)
        join(configs[acq.best_first(observed)] if configs else None)
        if len(pool) == 1:
            return 0
        return acq.best_first(self._gains([c.config for c in pool]))

    def _improve_front(self, pool, configs, observed, join, rng) -> int:
        """The candidate predicted to add the most hypervolume to the finished trials' front
        (their predictions while the ranker is zero-shot, so that votes compare)."""
        fitted = self.ranker.is_fitted()

        def view() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            size = len(pool)
            predicted = self._gains([c.config for c in pool] + list(configs))
            reference = acq.front_reference(predicted, typical=predicted[:size], learnt=self._learnt())
            return predicted[:size], observed if fitted else predicted[size:], reference

        _, front, reference = view()
        members = acq.front_members(front, reference)
        if members.size:
            join(configs[int(rng.choice(members))])
        candidates, front, reference = view()
        improvement = acq.hypervolume_improvements(front, candidates, reference)
        if not np.any(improvement > 0):
            return acq.best_first(candidates)
        return int(np.argmax(improvement))

    def _learnt(self) -> np.ndarray:
        """``(m,)``: which objectives are learnt (accuracies, scores) rather than known functions of
        the network (sizes, the sparsity target), whose predictions are exact or nearly so."""
        return np.array([o.name not in SIZE_PROXIES and o.name != SPARSITY for o in self.objectives])

    def _join(self, pool, incumbent, domains, launched, rng, key_of, fits) -> None:
        if incumbent is None or not self.use_neighbours:
            return
        keys = {c.key for c in pool}
        for config in neighbours(incumbent, domains, rng):
            key = key_of(config)
            if not launched(key) and key not in keys and (fits is None or fits(config)):
                keys.add(key)
                pool.append(Candidate(config, key, "neighbour"))

    def _gains(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        rows = [self.features(config_key(c), c) for c in configs]
        predicted = self.ranker.predict([p for p, _ in rows], np.stack([f for _, f in rows]))
        return acq.gains(predicted, self.objectives)

    def features(self, key: str, config: Mapping[str, Any]) -> tuple[dict[str, float], np.ndarray]:
        """Proxy scores and encoded config of a candidate (cached by key)."""
        if key not in self._features:
            proxies = dict(self.scorer(config))
            try:
                encoded = encode_config(config)
            except ValueError:
                encoded = np.full(len(FEATURE_NAMES), np.nan)
            self._features[key] = (proxies, encoded)
        return self._features[key]

    # ------------------------------------------------------------------ learning

    def observe(self, key: str, config: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        """Train the ranker on ``result`` of the launched ``config``, at its fidelity (the
        fraction of the trial's epochs behind it)."""
        epoch, epochs = result.get("epoch"), _max_epochs(config)
        fidelity = min(1.0, epoch / epochs) if isinstance(epoch, (int, float)) and epochs > 0 else 1.0
        values = finite_values(result, self.names)
        if not values:
            return
        self._labels[key] = (values, float(fidelity))
        self._teach(key, config)

    def _teach(self, key: str, config: Mapping[str, Any]) -> None:
        proxies, encoded = self.features(key, config)
        values, fidelity = self._labels[key]
        self.ranker.observe(key, proxies, encoded, values, fidelity=fidelity)

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """The labelled configurations (latest values, fidelity, features), JSON-ready."""
        labels = []
        for key, (values, fidelity) in self._labels.items():
            proxies, encoded = self._features[key]
            labels.append({"key": key, "values": number_map_out(values), "fidelity": fidelity,
                            "proxies": number_map_out(proxies), "encoded": floats_out(encoded)})
        return {"objectives": [str(o) for o in self.objectives], "labels": labels}

    def load_state(self, state: Mapping[str, Any], where: str) -> None:
        """Restore :meth:`state`; the ranker is refitted from the labels on its next prediction."""
        saved = require(state, "objectives", list, where)
        if saved != [str(o) for o in self.objectives]:
            raise StateError(f"{where}: screening objectives {saved} differ from {[str(o) for o in self.objectives]}")
        self._labels.clear()
        for label in require(state, "labels", list, where):
            if not isinstance(label, dict):
                raise StateError(f"{where}: a screening label is not a mapping")
            key = require(label, "key", str, where)
            encoded = np.asarray(floats_in(label.get("encoded"), where))
            if encoded.shape != (len(FEATURE_NAMES),):
                raise StateError(f"{where}: encoded config of {key!r} has {encoded.size} features")
            self._features[key] = (number_map_in(label.get("proxies"), where), encoded)
            values = number_map_in(label.get("values"), where)
            self._labels[key] = (values, float(require(label, "fidelity", (int, float), where)))
            self.ranker.observe(key, self._features[key][0], encoded, values, fidelity=self._labels[key][1])


def finite_values(result: Mapping[str, Any], names: Sequence[str]) -> dict[str, float]:
    """The finite numbers of ``result`` among ``names``."""
    values = {}
    for name in names:
        value = result.get(name)
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value):
            values[name] = float(value)
    return values


def _max_epochs(config: Mapping[str, Any]) -> int:
    try:
        return decode_trial(config).training.max_epochs
    except ValueError:
        return 0
