"""PNG pictures of a search: objectives' scatter matrix, hypervolume curves, learning curves.

Figures are built with ``matplotlib.figure.Figure`` and its Agg canvas, never ``pyplot``: no
display is needed, no global figure state is touched, and a figure is freed once rendered.
Every function returns PNG bytes (write them with ``robnas.trainables._layout.atomic_write_bytes``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from robnas.analysis._activity import IDLE_GAP_S
from robnas.analysis._front import FrontResult, objective_values
from robnas.spaces._objectives import Objective

DPI = 100
_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown",
            "tab:pink", "tab:olive", "tab:cyan", "tab:gray")
_MAX_LEGEND = 12


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    figure.clear()
    return buffer.getvalue()


def _label(objective: Objective) -> str:
    return f"{objective.name} ({objective.direction})"


def scatter_matrix(results: Sequence[tuple[str, FrontResult]]) -> bytes:
    """Lower-triangle scatter matrix of the objectives, one colour per search.

    Eligible trials are small dots, trials kept out of the front (lower fidelity, running)
    hollow circles, front members large dots (joined when there are two objectives), the knee
    a star. The diagonal shows each objective's histogram over the eligible trials.
    """
    objectives = results[0][1].objectives
    m = len(objectives)
    size = 2.6 * max(m, 1) + 1.0
    figure = Figure(figsize=(size, size))
    figure.subplots_adjust(left=1.0 / size, bottom=0.6 / size, right=1 - 0.15 / size, top=1 - 0.15 / size,
                           wspace=0.35, hspace=0.3)
    axes = figure.subplots(m, m, squeeze=False)
    single = len(results) == 1
    for k, (label, result) in enumerate(results):
        colour = _COLOURS[k % len(_COLOURS)]
        trials = result.trials
        values = objective_values(trials, objectives)
        eligible = trials["eligible"].to_numpy(bool)
        pareto = trials["pareto"].to_numpy(bool)
        knee = trials["knee"].to_numpy(bool)
        other = ~eligible & np.all(np.isfinite(values), axis=1)
        for i in range(m):
            for j in range(m):
                ax = axes[i, j]
                if j > i:
                    ax.set_visible(False)
                    continue
                if i == j:
                    column = values[eligible, i]
                    if column.size:
                        ax.hist(column, bins=min(20, max(5, column.size)), color="0.5" if single else colour,
                                alpha=0.6, label=None if single else label)
                    continue
                x, y = values[:, j], values[:, i]
                ax.scatter(x[other], y[other], s=18, facecolors="none", edgecolors="0.6" if single else colour,
                           alpha=0.7, label="kept out (lower fidelity, running)" if single and k == 0 else None)
                rest = eligible & ~pareto
                ax.scatter(x[rest], y[rest], s=14, color="0.35" if single else colour,
                           alpha=0.6 if single else 0.3, label="eligible" if single else None)
                if m == 2:  # with more objectives a projected front is no curve
                    order = np.argsort(x[pareto], kind="stable")
                    ax.plot(x[pareto][order], y[pareto][order], color=colour, lw=0.8, alpha=0.6)
                ax.scatter(x[pareto], y[pareto], s=36, color=colour, edgecolors="black", linewidths=0.5,
                           zorder=3, label="Pareto front" if single else label)
                ax.scatter(x[knee], y[knee], s=160, marker="*", color="gold" if single else colour,
                           edgecolors="black", zorder=4, label="knee" if single else None)
    for i in range(m):
        axes[i, 0].set_ylabel(_label(objectives[i]) if i > 0 else "count")
        axes[m - 1, i].set_xlabel(_label(objectives[i]))
    if m == 1:
        axes[0, 0].set_ylabel("count")
    handles, labels = _legend_items(axes[min(1, m - 1), 0] if m > 1 else axes[0, 0])
    if handles:
        figure.legend(handles, labels, loc="upper right", fontsize="small")
    return _png(figure)


def _legend_items(ax):
    handles, labels = ax.get_legend_handles_labels()
    seen, items = set(), []
    for handle, label in zip(handles, labels):
        if label and label not in seen:
            seen.add(label)
            items.append((handle, label))
    return [h for h, _ in items], [lab for _, lab in items]


def hypervolume_curves(curves: Sequence[tuple[str, pd.DataFrame]]) -> bytes:
    """Hypervolume of the front after each finished trial, against the number of trials
    finished (left) and the search time (right: since the search started, its idle gaps left
    out, see ``robnas.analysis._activity``); one line per search."""
    figure = Figure(figsize=(10, 4))
    figure.subplots_adjust(left=0.08, bottom=0.13, right=0.98, top=0.96, wspace=0.25)
    left, right = figure.subplots(1, 2)
    times = [_search_times(curve) for _, curve in curves]
    longest = max((t[np.isfinite(t)].max(initial=0.0) for t in times), default=0.0)
    scale, unit = _time_unit(longest)
    for k, (label, curve) in enumerate(curves):
        colour = _COLOURS[k % len(_COLOURS)]
        hv = np.concatenate([[0.0], curve["hypervolume"].to_numpy(float)])
        left.step(np.arange(len(hv)), hv, where="post", color=colour, label=label)
        x = np.concatenate([[0.0], times[k]]) / scale
        known = np.isfinite(x)
        right.step(x[known], hv[known], where="post", color=colour, label=label)
    left.set_xlabel("trials finished")
    right.set_xlabel(f"search time ({unit}; idle gaps over {IDLE_GAP_S:.0f} s left out)")
    for ax in (left, right):
        ax.set_ylabel("hypervolume of the front")
        ax.grid(alpha=0.3)
    left.legend(fontsize="small", loc="lower right")
    return _png(figure)


def _search_times(curve: pd.DataFrame) -> np.ndarray:
    """The curve's ``search_time_s`` (``wall_time_s`` in a curve from before it existed)."""
    return curve["search_time_s" if "search_time_s" in curve else "wall_time_s"].to_numpy(float)


def _time_unit(seconds: float) -> tuple[float, str]:
    """(divisor, unit) that shows ``seconds`` as s, min or h."""
    if seconds >= 3 * 3600:
        return 3600.0, "h"
    return (60.0, "min") if seconds >= 300 else (1.0, "s")


def learning_curves(results: pd.DataFrame, front_ids: Sequence[str], objectives: Sequence[Objective]) -> bytes:
    """Each objective per epoch: the front's members in colour, every other trial in grey.

    ``results``: one row per reported epoch (``trial_id``, ``epoch``, metric columns).
    """
    m = len(objectives)
    width = 4.2 * max(m, 1)
    figure = Figure(figsize=(width, 3.6))
    figure.subplots_adjust(left=0.8 / width, bottom=0.15, right=1 - 0.15 / width, top=0.92, wspace=0.3)
    axes = np.atleast_1d(figure.subplots(1, m))
    front_ids = [str(t) for t in front_ids]
    for ax, objective in zip(axes, objectives):
        if objective.name not in results:
            ax.set_title(f"{objective.name}: not reported per epoch", fontsize="small")
            continue
        for trial_id, history in results.groupby("trial_id", sort=True):
            if str(trial_id) in front_ids:
                continue
            ax.plot(history["epoch"], pd.to_numeric(history[objective.name], errors="coerce"),
                    color="0.75", lw=0.8, marker=".", ms=3)
        for k, trial_id in enumerate(front_ids):
            history = results[results["trial_id"].astype(str) == trial_id]
            ax.plot(history["epoch"], pd.to_numeric(history[objective.name], errors="coerce"),
                    color=_COLOURS[k % len(_COLOURS)], lw=1.6, marker="o", ms=4,
                    label=trial_id if k < _MAX_LEGEND else None)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(_label(objective))
        ax.grid(alpha=0.3)
    if front_ids:
        axes[0].legend(title="front members", fontsize="small")
    return _png(figure)
