"""The Pareto front of a search's trials: membership, hypervolume, knee, best per objective.

Works on the ``trials`` DataFrame of :func:`robnas.analysis._load.load_experiment` (one row per
trial, metric columns named like the objectives); the math is in ``_pareto``, ``_hypervolume``
and ``_knee``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from robnas.analysis._hypervolume import hypervolume
from robnas.analysis._knee import knee_point
from robnas.analysis._pareto import _to_minimization, nondominated_ranks
from robnas.spaces._objectives import TRIAL_OBJECTIVES, Objective, parse_objectives

#: Columns of ``trials`` that are bookkeeping, never objectives.
_NOT_OBJECTIVES = frozenset(("epoch", "done", "diverged", "started_at", "finished_at", "timestamp",
                             "training_iteration", "wall_time_s", "search_time_s", "complete",
                             "stopped_early"))


def numeric_columns(trials: pd.DataFrame) -> list[str]:
    """Metric columns of ``trials`` that could be objectives (numeric, not config, not bools)."""
    return [
        c for c in trials.columns
        if not c.startswith("config/") and c not in _NOT_OBJECTIVES
        and pd.api.types.is_numeric_dtype(trials[c]) and not pd.api.types.is_bool_dtype(trials[c])
    ]


def objectives_of(spec: str | Sequence[str | Objective], available: Collection[str]) -> tuple[Objective, ...]:
    """``parse_objectives`` over a trial's metrics and the metric columns in ``available``."""
    return parse_objectives(spec, [*TRIAL_OBJECTIVES, *sorted(set(available) - set(TRIAL_OBJECTIVES))])


def default_reference_point(values: object, modes: Sequence[str]) -> np.ndarray:
    """Reference point (m,) for ``values`` (n, m): per maximised objective 0 (or 1.01 x the
    minimum if a value is negative); per minimised objective 1.01 x the maximum observed (the
    maximum plus 1 % of its size, or 1.0 when every value is 0 or none is finite)."""
    arr = np.asarray(values, dtype=float).reshape(-1, len(modes))
    reference = []
    for column, mode in zip(arr.T, modes):
        finite = column[np.isfinite(column)]
        if mode == "max":
            low = float(finite.min()) if finite.size else 0.0
            reference.append(0.0 if low >= 0 else 1.01 * low)
        else:
            high = float(finite.max()) if finite.size else 0.0
            reference.append(high + 0.01 * abs(high) if high != 0 else 1.0)
    return np.asarray(reference)


def check_reference_point(
    reference_point: str | Sequence[float], objectives: Sequence[Objective]
) -> np.ndarray:
    """``reference_point`` (``"0,0,1.5"`` or numbers) as a finite float array, one per objective."""
    if isinstance(reference_point, str):
        try:
            reference_point = [float(v) for v in reference_point.split(",")]
        except ValueError:
            raise ValueError(f"reference point {reference_point!r} must be comma-separated numbers") from None
    reference = np.asarray(reference_point, dtype=float).reshape(-1)
    if len(reference) != len(objectives) or not np.all(np.isfinite(reference)):
        raise ValueError(
            f"reference point must have {len(objectives)} finite numbers (one per objective: "
            f"{', '.join(o.name for o in objectives)}), got {', '.join(map(str, reference.tolist()))}"
        )
    return reference


def objective_values(trials: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """Float array (n_trials, n_objectives); missing or non-numeric values are NaN."""
    values = np.full((len(trials), len(objectives)), np.nan)
    for j, objective in enumerate(objectives):
        if objective.name in trials:
            column = pd.to_numeric(trials[objective.name], errors="coerce")
            values[:, j] = column.to_numpy(dtype=float, na_value=np.nan)
    return values


def exclusion_reasons(
    trials: pd.DataFrame, objectives: Sequence[Objective], *, max_epochs: int, all_fidelities: bool = False
) -> pd.Series:
    """Why each trial is kept out of the front (``""``: it is eligible).

    ``failed`` (status ERROR), ``no result``, ``diverged``, ``catastrophic overfit`` (an FGSM-RS
    trial whose robustness collapsed: see ``robnas.trainables._overfit``), ``duplicate of ID`` (the same
    network as trial ID, which stands for it), ``nan objective``, and unless
    ``all_fidelities``: ``stopped early`` / ``not finished`` (fewer than ``max_epochs`` epochs).
    """
    finite = np.all(np.isfinite(objective_values(trials, objectives)), axis=1)
    reasons = []
    for i, row in enumerate(trials.to_dict("records")):
        epoch = int(row["epoch"]) if pd.notna(row.get("epoch")) else 0
        if row.get("status") == "ERROR":
            reasons.append("failed")
        elif epoch <= 0:
            reasons.append("no result")
        elif row.get("diverged") is True:
            reasons.append("diverged")
        elif row.get("catastrophic_overfit") is True:
            reasons.append("catastrophic overfit")
        elif row.get("duplicate_of"):
            reasons.append(f"duplicate of {row['duplicate_of']}")
        elif not finite[i]:
            reasons.append("nan objective")
        elif not all_fidelities and epoch < max_epochs:
            reasons.append("stopped early" if row.get("stopped_early") is True else "not finished")
        else:
            reasons.append("")
    return pd.Series(reasons, index=trials.index, dtype=object)


@dataclass(frozen=True, eq=False)
class FrontResult:
    """The front of one search.

    ``trials``: the input plus ``excluded`` (see :func:`exclusion_reasons`), ``eligible``,
    ``rank`` (non-dominated rank among the eligible trials, 0 = front, -1 = not eligible),
    ``pareto`` and ``knee``; ``front``: the Pareto rows, best first on the first objective;
    ``curve``: see :func:`hypervolume_curve`; ``summary``: JSON-ready figures.
    """

    trials: pd.DataFrame
    front: pd.DataFrame
    curve: pd.DataFrame
    summary: dict[str, Any]
    objectives: tuple[Objective, ...]
    reference_point: np.ndarray


def analyze_trials(
    trials: pd.DataFrame,
    objectives: Sequence[Objective],
    *,
    max_epochs: int,
    reference_point: str | Sequence[float] | None = None,
    all_fidelities: bool = False,
) -> FrontResult:
    """Front, hypervolume (explicit or :func:`default_reference_point`), knee and best trials.

    The front is over the eligible trials: full length (``max_epochs`` epochs) unless
    ``all_fidelities``, not failed, diverged or catastrophically overfitted, every objective finite.
    """
    objectives = tuple(objectives)
    modes = [o.direction for o in objectives]
    trials = trials.copy()
    trials["excluded"] = exclusion_reasons(
        trials, objectives, max_epochs=max_epochs, all_fidelities=all_fidelities
    )
    trials["eligible"] = trials["excluded"] == ""
    eligible = trials["eligible"].to_numpy(bool)
    values = objective_values(trials, objectives)
    if reference_point is None:
        reference = default_reference_point(values[eligible], modes)
    else:
        reference = check_reference_point(reference_point, objectives)
    ranks = np.full(len(trials), -1)
    knee = np.zeros(len(trials), dtype=bool)
    if eligible.any():
        ranks[eligible] = nondominated_ranks(values[eligible], modes)
        knee[np.flatnonzero(eligible)[knee_point(values[eligible], modes)]] = True
    trials["rank"], trials["pareto"], trials["knee"] = ranks, ranks == 0, knee
    on_front = np.flatnonzero(ranks == 0)
    loss = _to_minimization(values[on_front], modes)
    front = trials.iloc[on_front[np.lexsort(loss.T[::-1])]] if len(on_front) else trials.iloc[:0]
    curve = hypervolume_curve(trials, objectives, reference, max_epochs=max_epochs)
    summary = _summary(
        trials, objectives, front, reference, max_epochs=max_epochs, all_fidelities=all_fidelities
    )
    summary["hypervolume"] = hypervolume(values[eligible], modes, reference) if eligible.any() else 0.0
    return FrontResult(trials, front, curve, summary, objectives, reference)


def _summary(trials, objectives, front, reference, *, max_epochs, all_fidelities) -> dict[str, Any]:
    status = trials["status"]
    knee = trials[trials["knee"]]
    failed = trials[status == "ERROR"]
    return {
        "n_trials": len(trials),
        "n_complete": int(trials["complete"].sum()),
        "n_eligible": int(trials["eligible"].sum()),
        "n_stopped_early": int(trials["stopped_early"].sum()),
        "n_running": int((status == "RUNNING").sum()),
        "n_pending": int(status.isin(("PENDING", "PAUSED")).sum()),
        "n_failed": len(failed),
        "n_diverged": int((trials["excluded"] == "diverged").sum()),
        "n_catastrophic_overfit": int((trials["excluded"] == "catastrophic overfit").sum()),
        "max_epochs": int(max_epochs),
        "fidelity": "all" if all_fidelities else "max",
        "objectives": [o.name for o in objectives],
        "directions": [o.direction for o in objectives],
        "n_pareto": len(front),
        "pareto": front["trial_id"].astype(str).tolist(),
        "reference_point": [float(v) for v in reference],
        "knee": _describe(knee.iloc[0], objectives) if len(knee) else None,
        "best": _best(trials[trials["eligible"]], objectives),
        "failed": [{"trial_id": str(t), "error": str(e)} for t, e in zip(failed["trial_id"], failed["error"])],
    }


def _describe(row: pd.Series, objectives: Sequence[Objective]) -> dict[str, Any]:
    values = {o.name: _plain(row[o.name]) for o in objectives}
    return {"trial_id": str(row["trial_id"]), "arch": str(row.get("arch", "")), "values": values}


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _best(eligible: pd.DataFrame, objectives: Sequence[Objective]) -> dict[str, Any]:
    """Objective -> the eligible trial best on it (ties: the earlier row) and its value."""
    best: dict[str, Any] = {}
    for o in objectives:
        if eligible.empty:
            best[o.name] = None
            continue
        column = eligible[o.name].astype(float)
        index = column.idxmax() if o.direction == "max" else column.idxmin()
        best[o.name] = {"trial_id": str(eligible.loc[index, "trial_id"]), "value": _plain(column[index])}
    return best


def finished_order(trials: pd.DataFrame, *, max_epochs: int) -> pd.DataFrame:
    """Trials that finished (terminated, failed, or reached ``max_epochs``) in completion order
    (``finished_at``; unknown times last; ties by trial id)."""
    finished = trials[trials["status"].isin(("TERMINATED", "ERROR")) | (trials["epoch"] >= max_epochs)]
    times = finished["finished_at"].astype(float).fillna(np.inf).to_numpy()
    return finished.iloc[np.lexsort((finished["trial_id"].astype(str).to_numpy(), times))]


def hypervolume_curve(
    trials: pd.DataFrame, objectives: Sequence[Objective], reference_point: Sequence[float], *, max_epochs: int
) -> pd.DataFrame:
    """Hypervolume of the front of the eligible trials among the first k finished, for every k.

    ``trials`` needs the ``eligible`` column. Columns: ``n_finished``, ``trial_id``,
    ``wall_time_s`` (s since the search started, pauses included), ``search_time_s`` (the same
    without idle gaps, see :mod:`robnas.analysis._activity`; ``wall_time_s`` where the trials
    have no such column), ``hypervolume``, ``n_pareto``.
    """
    modes = [o.direction for o in objectives]
    finished = finished_order(trials, max_epochs=max_epochs)
    values = objective_values(finished, objectives)
    eligible = finished["eligible"].to_numpy(bool)
    rows, hv, n_pareto = [], 0.0, 0
    for k, row in enumerate(finished.to_dict("records"), start=1):
        if eligible[k - 1]:
            points = values[:k][eligible[:k]]
            hv = hypervolume(points, modes, reference_point)
            n_pareto = int((nondominated_ranks(points, modes) == 0).sum())
        rows.append({"n_finished": k, "trial_id": str(row["trial_id"]), "wall_time_s": float(row["wall_time_s"]),
                     "search_time_s": float(row.get("search_time_s", row["wall_time_s"])),
                     "hypervolume": hv, "n_pareto": n_pareto})
    columns = ["n_finished", "trial_id", "wall_time_s", "search_time_s", "hypervolume", "n_pareto"]
    return pd.DataFrame(rows, columns=columns)
