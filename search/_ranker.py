"""The surrogate ranker: predicts each search objective of candidate configurations.

Features of a candidate are its zero-cost proxy scores (``nan`` or infinite ones imputed by
the column median of the labelled rows) followed by its encoded configuration
(``robnas.search._encoding``; for the trees, without the one-hot op of each edge: the op counts
and path statistics, which isomorphic cells share, describe the cell) and the fidelity
(fraction of the trial's epochs behind a result; candidates are predicted at 1).

* Before ``min_fit`` labelled results of an objective exist, that objective is predicted
  zero-shot: accuracy-like objectives (``clean_acc``, ``robust_acc``, ``score``, anything not
  listed below) by the vote, the mean over ``vote`` proxies of the candidate's rank within the
  scored set (every proxy is higher = better, so a higher vote = a better candidate);
  ``sparsity`` by the effective sparsity target of the config; ``params`` by the ``params``
  proxy; ``macs``, ``sparse_macs`` and ``epoch_time_s`` by ``macs`` or, without it, ``params``.
* From then on, one scikit-learn model per objective (fixed ``random_state``): by default the
  mean of an ``ExtraTreesRegressor`` and a ``GradientBoostingRegressor`` (``model="ensemble"``;
  below ``ENSEMBLE_MIN_ROWS`` labelled results the extra trees alone), or the extra trees
  alone (``model="trees"``), fitted on the latest result of every labelled configuration; it is refitted
  lazily, on the next prediction after new results arrived. Size objectives (``params``,
  ``macs``, ...) are known functions of the network, not learnt from scratch: a linear
  regression on their size proxy and the cell's op counts (it maps the proxy's network, e.g.
  the digits-sized one, onto the trial's). Each model is a scikit-learn ``Pipeline`` that
  selects and imputes its own columns (``robnas.search._ranker_models``).

Predictions are in the objective's own units and direction (see ``objectives``). A ranker is
deterministic given its seed and the order of the results it was told.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.pipeline import Pipeline

from robnas.search._encoding import FEATURE_NAMES
from robnas.search._ranker_models import (
    EFFECTIVE_SPARSITY,
    ENSEMBLE_MIN_ROWS,
    MODELS,
    SIZE_PROXIES,
    SPARSITY,
    design,
    impute_median,
    size_pipeline,
    tree_pipeline,
)
from robnas.spaces._objectives import Objective, directions_of, names_of, parse_objectives

__all__ = [
    "DEFAULT_VOTE",
    "SurrogateRanker",
    "zero_shot_vote",
]

#: Proxies whose mean rank is the zero-shot vote (all higher = better). ``meco`` alone ranks
#: NAS-RobBench-201's accuracies (every attack, and clean) better than its mean rank with
#: ``params`` and ``jacob_cov`` on the benchmark's network (benchmarks/RESULTS.md).
DEFAULT_VOTE: tuple[str, ...] = ("meco",)


def zero_shot_vote(proxies: np.ndarray) -> np.ndarray:
    """Mean rank, scaled to (0, 1], of each row over the columns of ``proxies`` ``(n, p)``.

    Ties share their average rank; non-finite scores are imputed by the column median first.
    Returns ``(n,)``, higher = better; all ones when ``p == 0``.
    """
    proxies = np.asarray(proxies, dtype=float)
    if proxies.ndim != 2:
        raise ValueError(f"proxies must be a 2-d array (n, p), got shape {proxies.shape}")
    n = proxies.shape[0]
    if n == 0 or proxies.shape[1] == 0:
        return np.ones(n)
    return np.mean(rankdata(impute_median(proxies), axis=0) / n, axis=1)


class SurrogateRanker:
    """Predicts ``objectives`` of candidates from their proxies and encoded configs.

    Args:
        objectives: what the trials report, each an ``Objective`` (name and direction; a
            ``"name"`` or ``"name:min"`` string is parsed as by ``parse_objectives``).
        proxy_names: the proxies of a candidate, in the order of the feature columns.
        vote: proxies of the zero-shot vote (those among ``proxy_names`` are used).
        min_fit: labelled results of an objective needed before its regressor replaces the
            zero-shot prediction.
        seed: ``random_state`` of the regressors.
        n_estimators, max_features: of the ``ExtraTreesRegressor``.
        model: ``"ensemble"`` (extra trees averaged with gradient boosting, from
            ``ENSEMBLE_MIN_ROWS`` labelled results of an objective) or ``"trees"``.
    """

    def __init__(
        self,
        objectives: Sequence[Objective],
        *,
        proxy_names: Sequence[str],
        vote: Sequence[str] = DEFAULT_VOTE,
        min_fit: int = 8,
        seed: int = 0,
        n_estimators: int = 100,
        max_features: float = 0.5,
        model: str = "ensemble",
    ) -> None:
        self.objectives: tuple[Objective, ...] = parse_objectives(objectives, available=None)
        if isinstance(min_fit, bool) or not isinstance(min_fit, int) or min_fit < 2:
            raise ValueError(f"min_fit must be an integer >= 2, got {min_fit!r}")
        self.proxy_names = tuple(proxy_names)
        self.vote = tuple(v for v in vote if v in self.proxy_names) or self.proxy_names
        self.min_fit = min_fit
        self.seed = seed
        self.n_estimators = n_estimators
        self.max_features = max_features
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}")
        self.model = model
        # config key -> (proxy row, config features, {objective: value}, fidelity)
        self._rows: dict[str, tuple[np.ndarray, np.ndarray, dict[str, float], float]] = {}
        self._models: dict[str, Pipeline] | None = None  # objective name -> fitted pipeline

    @property
    def names(self) -> tuple[str, ...]:
        """The objectives' metric names."""
        return names_of(self.objectives)

    @property
    def directions(self) -> tuple[str, ...]:
        """The objectives' directions, ``"max"`` or ``"min"``."""
        return directions_of(self.objectives)

    @property
    def num_labelled(self) -> int:
        return len(self._rows)

    def is_fitted(self) -> bool:
        """True when every objective is predicted by a regressor (in its own units)."""
        return all(name in self._fitted() for name in self.names)

    def proxy_row(self, proxies: Mapping[str, float]) -> np.ndarray:
        """``(len(proxy_names),)`` float array of a ``{name: score}`` mapping (missing = nan)."""
        return np.array([float(proxies.get(name, math.nan)) for name in self.proxy_names])

    def observe(
        self,
        key: str,
        proxies: Mapping[str, float] | np.ndarray,
        features: np.ndarray,
        result: Mapping[str, Any],
        *,
        fidelity: float = 1.0,
    ) -> None:
        """Record (or replace) the latest ``result`` of the configuration ``key``.

        Only finite numbers of ``result`` for the ranker's objectives are kept; a result with
        none of them is ignored.
        """
        values = {}
        for name in self.names:
            value = result.get(name)
            if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value):
                values[name] = float(value)
        if not values:
            return
        row = proxies if isinstance(proxies, np.ndarray) else self.proxy_row(proxies)
        self._rows[key] = (np.asarray(row, dtype=float), np.asarray(features, dtype=float), values, float(fidelity))
        self._models = None

    def _size_proxy(self, name: str) -> int | None:
        """Column of the proxy that measures size objective ``name`` (see ``SIZE_PROXIES``)."""
        return next((self.proxy_names.index(p) for p in SIZE_PROXIES.get(name, ()) if p in self.proxy_names), None)

    def _fitted(self) -> dict[str, Pipeline]:
        """The objectives' pipelines, fitted on the rows if new ones arrived since the last fit."""
        if self._models is None:
            self._models = {}
            for name in self.names:
                rows = [r for r in self._rows.values() if name in r[2]]
                if len(rows) < self.min_fit:
                    continue
                proxies, features = np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])
                column = self._size_proxy(name)
                if column is not None and features.shape[1] == len(FEATURE_NAMES):
                    model = size_pipeline(len(self.proxy_names), column)
                else:
                    model = tree_pipeline(
                        len(self.proxy_names), features.shape[1], n_estimators=self.n_estimators,
                        max_features=self.max_features, seed=self.seed,
                        model=self.model if len(rows) >= ENSEMBLE_MIN_ROWS else "trees",
                    )
                inputs = design(proxies, features, [r[3] for r in rows])
                self._models[name] = model.fit(inputs, np.array([r[2][name] for r in rows]))
        return self._models

    def predict(self, proxies: Sequence[Mapping[str, float]] | np.ndarray, features: np.ndarray) -> np.ndarray:
        """Predicted objectives ``(n, len(objectives))`` of ``n`` candidates.

        ``proxies``: ``n`` mappings or an ``(n, len(proxy_names))`` array; ``features``:
        ``(n, len(FEATURE_NAMES))`` encoded configs. Zero-shot columns hold the vote (or the
        design quantity named in the module docstring), not the objective's units.
        """
        table = np.asarray(
            proxies if isinstance(proxies, np.ndarray) else [self.proxy_row(p) for p in proxies], dtype=float
        ).reshape(len(features), len(self.proxy_names))
        features = np.asarray(features, dtype=float)
        if len(features) == 0:
            return np.empty((0, len(self.objectives)))
        models = self._fitted()
        inputs = design(table, features, np.ones(len(features)))  # candidates: at full fidelity
        columns = [
            models[o.name].predict(inputs) if o.name in models else self._zero_shot(o, table, features)
            for o in self.objectives
        ]
        return np.column_stack(columns)

    def _zero_shot(self, objective: Objective, table: np.ndarray, features: np.ndarray) -> np.ndarray:
        if objective.name == SPARSITY and features.shape[1] == len(FEATURE_NAMES):
            return features[:, EFFECTIVE_SPARSITY].copy()
        for name in SIZE_PROXIES.get(objective.name, ()):
            column = table[:, self.proxy_names.index(name)] if name in self.proxy_names else np.empty(0)
            if np.isfinite(column).any():
                return impute_median(column[:, np.newaxis])[:, 0]
        vote = zero_shot_vote(table[:, [self.proxy_names.index(v) for v in self.vote]])
        return objective.sign * vote

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_models"] = None  # refitted from the rows on the next prediction
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state.setdefault("model", "trees")  # pickled before the ensemble existed
        if "modes" in state:  # pickled when objectives were names and their directions "modes"
            modes = state.pop("modes")
            state["objectives"] = tuple(Objective(n, m) for n, m in zip(state["objectives"], modes))
        self.__dict__.update(state)
