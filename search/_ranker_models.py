"""The surrogate ranker's per-objective models, as scikit-learn pipelines, and its design matrix.

Every model takes the same design matrix ``(n, p + f + 1)``: the ``p`` proxy scores (non-finite
entries as ``nan``), the ``f`` encoded-config features and the fidelity. Which of those columns
a model uses, and how their missing values are filled, is the pipeline's first step:

* ``tree_pipeline``: proxies imputed by their median over the training rows (0 for a column
  with none), the config features (``nan`` -> 0; for ``model="trees"`` without the one-hot op
  of each edge and the path encoding when the full encoding is given), the fidelity; then an
  ``ExtraTreesRegressor`` (``model="trees"``) or the mean of that and a
  ``GradientBoostingRegressor`` (``model="ensemble"``, a ``VotingRegressor``: its
  ``transform`` gives each member's prediction, whose spread is a disagreement measure).
* ``size_pipeline``: the size proxy (imputed by its median) and the cell's op counts; then a
  ``LinearRegression``.

The objectives with their own zero-shot rule (and, for sizes, the linear model) are named
here, once: ``SPARSITY`` and the keys of ``SIZE_PROXIES``, all trial objectives of
``robnas.spaces.TRIAL_OBJECTIVES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, VotingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from robnas.search._encoding import FEATURE_NAMES

__all__ = [
    "COUNTS",
    "EFFECTIVE_SPARSITY",
    "ENSEMBLE_MIN_ROWS",
    "MODELS",
    "SIZE_PROXIES",
    "SPARSITY",
    "design",
    "impute_median",
    "median_imputer",
    "size_pipeline",
    "tree_pipeline",
]

#: Objective predicted zero-shot by the config's effective sparsity target.
SPARSITY = "sparsity"
#: Size objectives -> the proxies that measure them, first available preferred. They are
#: predicted zero-shot by that proxy, then by a linear model on it and the op counts.
SIZE_PROXIES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "params": ("params",),
    "macs": ("macs", "params"),
    "sparse_macs": ("macs", "params"),
    "epoch_time_s": ("macs", "params"),
})

#: Regressors of the accuracy-like objectives (``tree_pipeline``'s ``model``).
MODELS: tuple[str, ...] = ("ensemble", "trees")
#: Labelled rows from which ``"ensemble"`` adds boosting to the extra trees. With fewer, boosting
#: overfits: on NAS-RobBench-201 the ensemble ranks worse than the trees alone at 10-15 labelled
#: cells, alike at 25 and better from 50 on (benchmarks/ranking.py).
ENSEMBLE_MIN_ROWS = 30

#: Columns of the encoded config (``FEATURE_NAMES``) used by the models.
COUNTS = [i for i, name in enumerate(FEATURE_NAMES) if name.startswith("count[")]
EFFECTIVE_SPARSITY = FEATURE_NAMES.index("sparsity_effective")
# Features of the single extra-trees model: all but the one-hot op of each edge and the path
# encoding. Op counts and path statistics describe the cell without depending on how its nodes
# are numbered, and sparse columns dilute one forest's feature sampling at tens of results;
# averaged with boosting, which picks its splits greedily, the sparse columns pay off
# (benchmarks/ranking.py).
_TREE_FEATURES = [i for i, name in enumerate(FEATURE_NAMES) if not name.startswith(("op[", "path["))]
#: Boosting stages, depth and learning rate of the ensemble's ``GradientBoostingRegressor``.
_BOOSTING = {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8}


def median_imputer() -> SimpleImputer:
    """Fills ``nan`` by the column's median over the fitted rows; a column of ``nan`` becomes 0."""
    return SimpleImputer(strategy="median", keep_empty_features=True)


def impute_median(values: np.ndarray) -> np.ndarray:
    """``values`` ``(n, k)`` with non-finite entries replaced by their column's finite median."""
    values = np.asarray(values, dtype=float)
    if values.shape[0] == 0 or values.shape[1] == 0:
        return values.copy()
    return median_imputer().fit_transform(np.where(np.isfinite(values), values, np.nan))


def design(proxies: np.ndarray, features: np.ndarray, fidelity: np.ndarray) -> np.ndarray:
    """The models' input ``(n, p + f + 1)``: proxies (non-finite as ``nan``), features, fidelity."""
    proxies = np.asarray(proxies, dtype=float)
    proxies = np.where(np.isfinite(proxies), proxies, np.nan)
    return np.column_stack([proxies, np.asarray(features, dtype=float), np.asarray(fidelity, dtype=float)])


def tree_pipeline(
    num_proxies: int, num_features: int, *, n_estimators: int, max_features: float, seed: int,
    model: str = "ensemble",
) -> Pipeline:
    """Extra trees (``model="trees"``), or their mean with gradient boosting (``"ensemble"``),
    on the imputed proxies, the config features and the fidelity."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    single = model == "trees" and num_features == len(FEATURE_NAMES)
    kept = _TREE_FEATURES if single else range(num_features)
    select = ColumnTransformer([
        ("proxies", median_imputer(), list(range(num_proxies))),
        ("config", FunctionTransformer(np.nan_to_num), [num_proxies + i for i in kept]),
        ("fidelity", "passthrough", [num_proxies + num_features]),
    ])
    trees = ExtraTreesRegressor(
        n_estimators=n_estimators, max_features=max_features, random_state=seed, n_jobs=1
    )
    if model == "trees":
        return Pipeline([("select", select), ("trees", trees)])
    boosting = GradientBoostingRegressor(**_BOOSTING, random_state=seed)
    return Pipeline([("select", select), ("ensemble", VotingRegressor([("trees", trees), ("boosting", boosting)]))])


def size_pipeline(num_proxies: int, size_proxy: int) -> Pipeline:
    """Linear regression on the size proxy (column ``size_proxy``, imputed) and the op counts
    (``nan`` as 0: a config that did not encode).

    Needs the full encoded config (``FEATURE_NAMES``) behind the proxies.
    """
    select = ColumnTransformer([
        ("size", median_imputer(), [size_proxy]),
        ("counts", FunctionTransformer(np.nan_to_num), [num_proxies + i for i in COUNTS]),
    ])
    return Pipeline([("select", select), ("linear", LinearRegression())])
