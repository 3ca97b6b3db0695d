"""PNG pictures of a search: objectives' scatter matrix, hypervolume curves, learning curves.

Figures are built with ``matplotlib.figure.Figure`` and its Agg canvas, never ``pyplot``: no
display is needed, no global figure state is touched, and a figure is freed once rendered.
``*_figure`` functions return the ``Figure`` (a title, and every axis labelled with its unit);
the others its PNG bytes (write them with ``robnas.trainables._layout.atomic_write_bytes``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from robnas.analysis._activity import IDLE_GAP_S
from robnas.analysis._front import FrontResult, objective_values
from robnas.spaces._objectives import Objective

DPI = 100
_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown",
            "tab:pink", "tab:olive", "tab:cyan", "tab:gray")
_MAX_LEGEND = 12


def colours(n: int) -> list[str]:
    """The colours of ``n`` searches, in order."""
    return [_COLOURS[k % len(_COLOURS)] for k in range(n)]


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    figure.clear()
    return buffer.getvalue()


#: Units of the metrics a trial reports (a table's columns are in the table's own units).
_UNITS = {"clean_acc": "fraction", "robust_acc": "fraction", "sparsity": "fraction of weights",
          "params": "count", "macs": "count", "sparse_macs": "count", "epoch_time_s": "s"}
#: What the markers of :func:`scatter_matrix` mean (the report's caption says the same).
MARKERS = ("large dots: the Pareto front (joined when there are two objectives); star: the knee; "
           "small dots: other trials eligible for the front; hollow circles: trials kept out of it "
           "(fewer epochs, still running); diagonal: histogram of each objective over the eligible trials")


def unit(name: str) -> str:
    """The unit of metric ``name``: ``_UNITS``, ``s`` for names ending in ``_s``, else ``as reported``."""
    return _UNITS.get(name, "s" if name.endswith("_s") else "as reported")


def _label(objective: Objective) -> str:
    return f"{objective.name} ({unit(objective.name)}; {objective.direction})"


def hypervolume_unit(objectives: Sequence[Objective]) -> str:
    """The unit of a hypervolume over ``objectives``: the product of their units."""
    units = [unit(o.name).split(" of ")[0] for o in objectives]
    return " x ".join(units) if units else "as reported"


def scatter_matrix(results: Sequence[tuple[str, FrontResult]]) -> bytes:
    """PNG of :func:`scatter_matrix_figure`."""
    return _png(scatter_matrix_figure(results))


def scatter_matrix_figure(results: Sequence[tuple[str, FrontResult]]) -> Figure:
    """Lower-triangle scatter matrix of the objectives, one colour per search.

    Eligible trials are small dots, trials kept out of the front (lower fidelity, running)
    hollow circles, front members large dots (joined when there are two objectives), the knee
    a star (see ``MARKERS``). The diagonal shows each objective's histogram over the eligible
    trials. With several searches, the legend gives each search's colour and the markers.
    """
    objectives = results[0][1].objectives
    m = len(objectives)
    size = 2.8 * max(m, 1) + 1.2
    figure = Figure(figsize=(size, size))
    figure.subplots_adjust(left=1.0 / size, bottom=0.7 / size, right=1 - 0.15 / size, top=1 - 0.55 / size,
                           wspace=0.45, hspace=0.45)
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
        for j in range(i + 1):
            axes[i, j].set_xlabel(_label(objectives[j]), fontsize="small")
            axes[i, j].set_ylabel("trials (count)" if i == j else _label(objectives[i]), fontsize="small")
    handles, labels = _legend_items(axes[min(1, m - 1), 0] if m > 1 else axes[0, 0])
    if not single:
        grey = {"color": "0.4", "linestyle": "none"}
        handles += [Line2D([], [], marker="o", markersize=7, markeredgecolor="black", **grey),
                    Line2D([], [], marker="*", markersize=12, markeredgecolor="black", **grey),
                    Line2D([], [], marker="o", markersize=4, alpha=0.5, **grey),
                    Line2D([], [], marker="o", markersize=5, markerfacecolor="none", **grey)]
        labels += ["Pareto front (colour: search)", "knee", "other eligible trials", "kept out (fewer epochs, running)"]
    if handles:
        figure.legend(handles, labels, loc="upper right", fontsize="small")
    title = "Objectives of every trial, Pareto front and knee" if single else "Pareto fronts of the searches"
    figure.suptitle(title, x=0.02, ha="left")
    return figure


def _legend_items(ax):
    handles, labels = ax.get_legend_handles_labels()
    seen, items = set(), []
    for handle, label in zip(handles, labels):
        if label and label not in seen:
            seen.add(label)
            items.append((handle, label))
    return [h for h, _ in items], [lab for _, lab in items]


def hypervolume_curves(curves: Sequence[tuple[str, pd.DataFrame]], objectives: Sequence[Objective] = ()) -> bytes:
    """PNG of :func:`hypervolume_curves_figure`."""
    return _png(hypervolume_curves_figure(curves, objectives))


def hypervolume_curves_figure(curves: Sequence[tuple[str, pd.DataFrame]],
                              objectives: Sequence[Objective] = ()) -> Figure:
    """Hypervolume of the front after each finished trial, against the number of trials
    finished (left) and the search time (right: since the search started, its idle gaps left
    out, see ``robnas.analysis._activity``); one line per search. The hypervolume is in the
    product of the ``objectives``' units."""
    figure = Figure(figsize=(10, 4.3))
    figure.subplots_adjust(left=0.08, bottom=0.13, right=0.98, top=0.84, wspace=0.25)
    left, right = figure.subplots(1, 2)
    times = [_search_times(curve) for _, curve in curves]
    longest = max((t[np.isfinite(t)].max(initial=0.0) for t in times), default=0.0)
    scale, time_unit = _time_unit(longest)
    for k, (label, curve) in enumerate(curves):
        colour = _COLOURS[k % len(_COLOURS)]
        hv = np.concatenate([[0.0], curve["hypervolume"].to_numpy(float)])
        left.step(np.arange(len(hv)), hv, where="post", color=colour, label=label)
        x = np.concatenate([[0.0], times[k]]) / scale
        known = np.isfinite(x)
        right.step(x[known], hv[known], where="post", color=colour, label=label)
    left.set_xlabel("trials finished (count)")
    left.set_title("by trials finished", fontsize="medium")
    right.set_xlabel(f"search time ({time_unit}; idle gaps over {IDLE_GAP_S:.0f} s left out)")
    right.set_title("by search time", fontsize="medium")
    hv_unit = hypervolume_unit(objectives) if objectives else "product of the objectives' units"
    for ax in (left, right):
        ax.set_ylabel(f"hypervolume ({hv_unit})")
        ax.grid(alpha=0.3)
    left.legend(fontsize="small", loc="lower right")
    figure.suptitle("Hypervolume of the front as trials finish", x=0.02, ha="left")
    return figure


def _search_times(curve: pd.DataFrame) -> np.ndarray:
    """The curve's ``search_time_s`` (``wall_time_s`` in a curve from before it existed)."""
    return curve["search_time_s" if "search_time_s" in curve else "wall_time_s"].to_numpy(float)


def _time_unit(seconds: float) -> tuple[float, str]:
    """(divisor, unit) that shows ``seconds`` as s, min or h."""
    if seconds >= 3 * 3600:
        return 3600.0, "h"
    return (60.0, "min") if seconds >= 300 else (1.0, "s")


def learning_curves(results: pd.DataFrame, front_ids: Sequence[str], objectives: Sequence[Objective]) -> bytes:
    """PNG of :func:`learning_curves_figure`."""
    return _png(learning_curves_figure(results, front_ids, objectives))


def learning_curves_figure(results: pd.DataFrame, front_ids: Sequence[str], objectives: Sequence[Objective]) -> Figure:
    """Each objective per epoch: the front's members in colour, every other trial in grey.

    ``results``: one row per reported epoch (``trial_id``, ``epoch``, metric columns).
    """
    m = len(objectives)
    width = 4.2 * max(m, 1)
    figure = Figure(figsize=(width, 4.0))
    figure.subplots_adjust(left=0.8 / width, bottom=0.14, right=1 - 0.15 / width, top=0.82, wspace=0.3)
    axes = np.atleast_1d(figure.subplots(1, m))
    front_ids = [str(t) for t in front_ids]
    for ax, objective in zip(axes, objectives):
        ax.set_xlabel("epoch (count)")
        ax.set_ylabel(_label(objective))
        if objective.name not in results:
            ax.set_title(f"{objective.name}: not reported per epoch", fontsize="small")
            continue
        ax.set_title(objective.name, fontsize="medium")
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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if front_ids:
        axes[0].legend(title="front members", fontsize="small")
    figure.suptitle("Objectives per epoch: front members in colour, other trials in grey", x=0.02, ha="left")
    return figure
