"""The surrogate ranker: predicts each search objective of candidate configurations.

Features of a candidate are its zero-cost proxy scores (``nan`` imputed by the column median of
the labelled rows) followed by its encoded configuration (``robnas.search._encoding``; for the
trees, without the one-hot op of each edge: the op counts and path statistics, which isomorphic
cells share, describe the cell) and the fidelity (fraction of the trial's epochs behind a
result; candidates are predicted at 1).

* Before ``min_fit`` labelled results of an objective exist, that objective is predicted
  zero-shot: accuracy-like objectives (``clean_acc``, ``robust_acc``, ``score``, anything not
  listed below) by the vote, the mean over ``vote`` proxies of the candidate's rank within the
  scored set (every proxy is higher = better, so a higher vote = a better candidate);
  ``sparsity`` by the effective sparsity target of the config; ``params`` by the ``params``
  proxy; ``macs``, ``sparse_macs`` and ``epoch_time_s`` by ``macs`` or, without it, ``params``.
* From then on, one scikit-learn ``ExtraTreesRegressor`` per objective (fixed
  ``random_state``) fitted on the latest result of every labelled configuration; it is refitted
  lazily, on the next prediction after new results arrived. Size objectives (``params``,
  ``macs``, ...) are known functions of the network, not learnt from scratch: a linear
  regression on their size proxy and the cell's op counts (it maps the proxy's network, e.g.
  the digits-sized one, onto the trial's).

Predictions are in the objective's own units and direction (see ``modes``). A ranker is
deterministic given its seed and the order of the results it was told.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from robnas.analysis import hypervolume
from robnas.search._encoding import FEATURE_NAMES

__all__ = [
    "DEFAULT_VOTE",
    "SurrogateRanker",
    "front_reference",
    "gains",
    "hypervolume_improvements",
    "zero_shot_vote",
]

#: Proxies whose mean rank is the zero-shot vote (all higher = better).
DEFAULT_VOTE: tuple[str, ...] = ("params", "synflow", "jacob_cov")

_SIZE_OBJECTIVES = ("macs", "sparse_macs", "epoch_time_s")
_COUNTS = [i for i, name in enumerate(FEATURE_NAMES) if name.startswith("count[")]
_EFFECTIVE_SPARSITY = FEATURE_NAMES.index("sparsity_effective")
# Features of the trees: all but the one-hot op of each edge. Op counts and path statistics
# describe the cell without depending on how its nodes are numbered (isomorphic cells, which
# train alike, get the same values), and thirty sparse columns would dilute the trees' feature
# sampling at tens of results.
_TREE_FEATURES = [i for i, name in enumerate(FEATURE_NAMES) if not name.startswith("op[")]


def _median(column: np.ndarray) -> float:
    """Median of the finite entries of ``column`` (0 if there are none)."""
    finite = column[np.isfinite(column)]
    return float(np.median(finite)) if finite.size else 0.0


def _impute(column: np.ndarray, fill: float | None = None) -> np.ndarray:
    """``column`` with ``nan`` replaced by ``fill`` (default: its median; 0 if all are nan)."""
    column = np.asarray(column, dtype=float)
    return np.where(np.isfinite(column), column, _median(column) if fill is None else fill)


def zero_shot_vote(proxies: np.ndarray) -> np.ndarray:
    """Mean rank, scaled to (0, 1], of each row over the columns of ``proxies`` ``(n, p)``.

    Ties share their average rank; ``nan`` scores are imputed by the column median first.
    Returns ``(n,)``, higher = better; all ones when ``p == 0``.
    """
    proxies = np.asarray(proxies, dtype=float)
    n = proxies.shape[0]
    if proxies.ndim != 2:
        raise ValueError(f"proxies must be a 2-d array (n, p), got shape {proxies.shape}")
    if n == 0 or proxies.shape[1] == 0:
        return np.ones(n)
    ranks = [rankdata(_impute(proxies[:, j])) / n for j in range(proxies.shape[1])]
    return np.mean(ranks, axis=0)


def gains(values: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """``values`` ``(n, m)`` turned into gains (higher = better): minimised objectives negated."""
    values = np.asarray(values, dtype=float)
    return values * np.array([1.0 if mode == "max" else -1.0 for mode in modes])


def front_reference(gain: np.ndarray, *, typical: np.ndarray) -> np.ndarray:
    """Reference point ``(m,)`` in gains for the hypervolume of a predicted front.

    First objective: the median of ``typical`` (e.g. its predictions for a random pool), so that
    only configurations better than a typical one count. Others: 1 % of their range below the
    worst row of ``gain`` ``(n, m)``.
    """
    gain = np.asarray(gain, dtype=float)
    low, high = np.nanmin(gain[:, 1:], axis=0), np.nanmax(gain[:, 1:], axis=0)
    return np.concatenate([[float(np.nanmedian(typical))], low - 0.01 * (high - low)])


def hypervolume_improvements(front: np.ndarray, candidates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Hypervolume ``(n,)`` each row of ``candidates`` ``(n, m)`` would add to ``front`` ``(k, m)``.

    All in gains (higher = better), bounded by ``reference`` ``(m,)``; rows with a ``nan`` add 0.
    """
    front = np.asarray(front, dtype=float)
    front = front[np.all(np.isfinite(front), axis=1)]
    maximize = [True] * len(reference)
    base = hypervolume(front, maximize, reference) if len(front) else 0.0
    return np.array([
        hypervolume(np.vstack([front, row]), maximize, reference) - base if np.all(np.isfinite(row)) else 0.0
        for row in np.asarray(candidates, dtype=float)
    ])


class SurrogateRanker:
    """Predicts ``objectives`` of candidates from their proxies and encoded configs.

    Args:
        objectives: metric names the trials report; ``modes``: ``"max"``/``"min"`` for each.
        proxy_names: the proxies of a candidate, in the order of the feature columns.
        vote: proxies of the zero-shot vote (those among ``proxy_names`` are used).
        min_fit: labelled results of an objective needed before its regressor replaces the
            zero-shot prediction.
        seed: ``random_state`` of the regressors.
        n_estimators, max_features: of the ``ExtraTreesRegressor``.
    """

    def __init__(
        self,
        objectives: Sequence[str],
        modes: Sequence[str],
        *,
        proxy_names: Sequence[str],
        vote: Sequence[str] = DEFAULT_VOTE,
        min_fit: int = 8,
        seed: int = 0,
        n_estimators: int = 100,
        max_features: float = 0.5,
    ) -> None:
        self.objectives = tuple(objectives)
        self.modes = tuple(modes)
        if not self.objectives or len(self.modes) != len(self.objectives):
            raise ValueError(f"give one mode per objective, got {self.objectives} and {self.modes}")
        bad = [m for m in self.modes if m not in ("max", "min")]
        if bad:
            raise ValueError(f"modes must be 'max' or 'min', got {bad}")
        if isinstance(min_fit, bool) or not isinstance(min_fit, int) or min_fit < 2:
            raise ValueError(f"min_fit must be an integer >= 2, got {min_fit!r}")
        self.proxy_names = tuple(proxy_names)
        self.vote = tuple(v for v in vote if v in self.proxy_names) or self.proxy_names
        self.min_fit = min_fit
        self.seed = seed
        self.n_estimators = n_estimators
        self.max_features = max_features
        # config key -> (proxy row, config features, {objective: value}, fidelity)
        self._rows: dict[str, tuple[np.ndarray, np.ndarray, dict[str, float], float]] = {}
        self._models: dict[str, Any] | None = None

    @property
    def num_labelled(self) -> int:
        return len(self._rows)

    def is_fitted(self) -> bool:
        """True when every objective is predicted by a regressor (in its own units)."""
        if self._models is None:
            self._models = self._fit()
        return all(name in self._models for name in self.objectives)

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
        for name in self.objectives:
            value = result.get(name)
            if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value):
                values[name] = float(value)
        if not values:
            return
        row = proxies if isinstance(proxies, np.ndarray) else self.proxy_row(proxies)
        self._rows[key] = (np.asarray(row, dtype=float), np.asarray(features, dtype=float), values, float(fidelity))
        self._models = None

    def _table(self, objective: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rows = [r for r in self._rows.values() if objective in r[2]]
        if not rows:
            return np.empty((0, len(self.proxy_names))), np.empty((0, 0)), np.empty(0), np.empty(0)
        proxies = np.stack([r[0] for r in rows])
        features = np.stack([r[1] for r in rows])
        fidelity = np.array([r[3] for r in rows])
        return proxies, features, fidelity, np.array([r[2][objective] for r in rows])

    def _size_proxy(self, name: str) -> int | None:
        """Column of the proxy that measures size objective ``name`` (``macs``, else ``params``)."""
        if name != "params" and name not in _SIZE_OBJECTIVES:
            return None
        for proxy in (("macs", "params") if name in _SIZE_OBJECTIVES else ("params",)):
            if proxy in self.proxy_names:
                return self.proxy_names.index(proxy)
        return None

    def _fit(self) -> dict[str, Any]:
        models: dict[str, Any] = {}
        for name in self.objectives:
            proxies, features, fidelity, target = self._table(name)
            if len(target) < self.min_fit:
                continue
            column = self._size_proxy(name)
            if column is not None and features.shape[1] == len(FEATURE_NAMES):
                from sklearn.linear_model import LinearRegression

                size = _impute(proxies[:, column])
                model = LinearRegression().fit(np.column_stack([size, features[:, _COUNTS]]), target)
                models[name] = (model, column, _median(proxies[:, column]))
                continue
            from sklearn.ensemble import ExtraTreesRegressor

            medians = np.array([_median(proxies[:, j]) for j in range(proxies.shape[1])])
            model = ExtraTreesRegressor(
                n_estimators=self.n_estimators,
                max_features=self.max_features,
                random_state=self.seed,
                n_jobs=1,
            )
            model.fit(self._design(proxies, features, fidelity, medians), target)
            models[name] = (model, medians)
        return models

    @staticmethod
    def _design(proxies: np.ndarray, features: np.ndarray, fidelity: np.ndarray, medians: np.ndarray) -> np.ndarray:
        filled = [_impute(proxies[:, j], medians[j]) for j in range(proxies.shape[1])]
        if features.shape[1] == len(FEATURE_NAMES):
            features = features[:, _TREE_FEATURES]
        return np.column_stack([*filled, np.nan_to_num(features, nan=0.0), fidelity])

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
        if self._models is None:
            self._models = self._fit()
        columns = []
        for name, mode in zip(self.objectives, self.modes):
            if name in self._models and len(self._models[name]) == 3:  # linear in the size proxy
                model, column, median = self._models[name]
                size = _impute(table[:, column], median)
                columns.append(model.predict(np.column_stack([size, features[:, _COUNTS]])))
            elif name in self._models:
                model, medians = self._models[name]
                design = self._design(table, features, np.ones(len(features)), medians)
                columns.append(model.predict(design))
            else:
                columns.append(self._zero_shot(name, mode, table, features))
        return np.column_stack(columns) if columns else np.empty((len(features), 0))

    def _zero_shot(self, name: str, mode: str, table: np.ndarray, features: np.ndarray) -> np.ndarray:
        def proxy(proxy_name: str) -> np.ndarray | None:
            if proxy_name not in self.proxy_names:
                return None
            column = table[:, self.proxy_names.index(proxy_name)]
            return _impute(column) if np.isfinite(column).any() else None

        if name == "sparsity" and features.shape[1] == len(FEATURE_NAMES):
            return features[:, _EFFECTIVE_SPARSITY].copy()
        size = proxy("macs") if name in _SIZE_OBJECTIVES else None
        size = proxy("params") if size is None and (name == "params" or name in _SIZE_OBJECTIVES) else size
        if size is not None:
            return size
        vote = zero_shot_vote(table[:, [self.proxy_names.index(v) for v in self.vote]])
        return vote if mode == "max" else -vote

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_models"] = None  # refitted from the rows on the next prediction
        return state
