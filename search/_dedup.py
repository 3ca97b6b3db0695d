"""A searcher wrapper that never launches a configuration twice, up to cell isomorphism."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune.search import Searcher

from robnas.spaces._genotype import EDGE_KEYS, Genotype


def config_key(config: Mapping[str, Any]) -> str:
    """A string equal for two configurations that train the same network.

    The cell (when the config holds its six edges or an ``arch``) enters by its canonical
    form, so isomorphic cells share a key; every other key enters by value, sorted by name.
    """
    rest = {k: v for k, v in config.items() if k not in EDGE_KEYS and k != "arch"}
    parts = [f"{k}={rest[k]!r}" for k in sorted(rest)]
    if all(k in config for k in EDGE_KEYS):
        parts.insert(0, Genotype.from_config(config).canonical().to_str())
    elif "arch" in config:
        parts.insert(0, Genotype.from_str(config["arch"]).canonical().to_str())
    return ";".join(parts)


class InnerSearcherState(Searcher):
    """A searcher around ``self._inner``: forwards the search properties, saves and restores both.

    The inner searcher is kept under ``_inner``, not ``searcher``: Tune treats an attribute
    named ``searcher`` as a wrapper chain and would save only the innermost searcher.
    """

    _inner: Searcher

    @property
    def inner(self) -> Searcher:
        return self._inner

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self._inner.set_search_properties(metric, mode, config, **spec)

    def get_state(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k != "_inner"}
        state["_inner_state"] = self._inner.__dict__.copy()
        return state

    def set_state(self, state: dict) -> None:
        state = dict(state)
        self._inner.__dict__.update(state.pop("_inner_state"))
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.get_state(), file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.set_state(pickle.load(file))


class DedupSearcher(InnerSearcherState):
    """Ask ``inner`` for configurations and launch only those not launched before.

    A rejected duplicate is told to ``inner`` at once: with the original's result when that
    trial has finished (the sampler learns the value it would have measured), as failed
    otherwise. ``objectives`` are the metrics whose NaN marks a diverged trial, which is told
    to ``inner`` as failed so that no sampler models a NaN.

    After ``max_retries`` duplicates in a row the space is taken as exhausted and the
    searcher returns ``Searcher.FINISHED``.
    """

    def __init__(
        self,
        inner: Searcher,
        *,
        objectives: Sequence[str] = (),
        max_retries: int = 200,
    ) -> None:
        super().__init__(metric=inner.metric, mode=inner.mode)
        self._inner = inner
        self._objectives = tuple(objectives)
        self._max_retries = max_retries
        self._launched: dict[str, str] = {}  # config key -> trial id
        self._results: dict[str, dict] = {}  # trial id -> final result
        self._key_of: dict[str, str] = {}  # trial id -> config key
        self._inner_id: dict[str, str] = {}  # trial id -> id the inner searcher knows
        self._retries = 0  # number of rejected suggestions, for attempt ids
        self.num_duplicates = 0

    def suggest(self, trial_id: str) -> dict | None:
        for _ in range(self._max_retries):
            attempt_id = f"{trial_id}_{self._retries}"
            config = self._inner.suggest(attempt_id)
            if config is None or config == Searcher.FINISHED:
                return config
            key = config_key(config)
            original = self._launched.get(key)
            if original is None:
                self._launched[key] = trial_id
                self._key_of[trial_id] = key
                self._inner_id[trial_id] = attempt_id
                return config
            self._retries += 1
            self.num_duplicates += 1
            result = self._results.get(original)
            self._inner.on_trial_complete(attempt_id, result=result, error=result is None)
        return Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._inner_id and not self._is_nan(result):
            self._inner.on_trial_result(self._inner_id[trial_id], result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        inner_id = self._inner_id.get(trial_id)
        if inner_id is None:
            return
        if result is not None and self._is_nan(result):
            result, error = None, True
        if result is not None and not error:
            self._results[trial_id] = copy.deepcopy(result)
        self._inner.on_trial_complete(inner_id, result=result, error=error)

    def _is_nan(self, result: Mapping[str, Any]) -> bool:
        values = [result.get(name) for name in self._objectives]
        return any(isinstance(v, float) and math.isnan(v) for v in values)
