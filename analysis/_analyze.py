"""``analyze()``: read searches, compute their fronts and write ``DIR/analysis/``.

Files per search: ``trials.csv``, ``pareto.csv``, ``hypervolume.csv``, ``summary.json``,
``scatter_matrix.png``, ``hypervolume.png``, ``learning_curves.png`` and ``report.html``. With
several searches, overlays go to ``compare/`` (``fronts.png``, ``hypervolume.png``,
``summary.json``, ``report.html``). Every file is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from robnas.analysis._files import atomic_write_bytes, atomic_write_json, atomic_write_text
from robnas.analysis._front import (
    FrontResult,
    Objective,
    analyze_trials,
    check_reference_point,
    default_reference_point,
    exclusion_reasons,
    numeric_columns,
    objective_values,
    parse_objectives,
)
from robnas.analysis._load import CONFIG_PREFIX, Experiment, load_experiment
from robnas.analysis._report import render_report, summary_facts
from robnas.spaces._genotype import EDGE_KEYS

ANALYSIS_DIR = "analysis"
COMPARE_DIR = "compare"
_FLAGS = ["trial_id", "status", "epoch", "complete", "stopped_early", "diverged", "eligible", "excluded",
          "pareto", "rank", "knee", "error", "arch"]
_HIDDEN_CONFIG = {CONFIG_PREFIX + k for k in (*EDGE_KEYS, "score_weights")}


@dataclass(frozen=True, eq=False)
class SearchAnalysis:
    """One analysed search: what was read, the front, and where the files went."""

    experiment: Experiment
    result: FrontResult
    out_dir: Path

    @property
    def summary(self) -> dict:
        return self.result.summary


def analyze(
    paths: Sequence[str | os.PathLike],
    *,
    objectives: str | Sequence[str] | None = None,
    reference_point: str | Sequence[float] | None = None,
    all_fidelities: bool = False,
    compare_dir: str | os.PathLike | None = None,
) -> list[SearchAnalysis]:
    """Analyse each search in ``paths`` and write its ``analysis/`` directory.

    Args:
        objectives: names (``"clean_acc,robust_acc"``; ``name:max``/``name:min`` for other metric
            columns); default: the first search's objectives.
        reference_point: one value per objective; default :func:`default_reference_point` over
            the eligible trials of all the searches, so their hypervolumes compare.
        all_fidelities: build fronts from every trial's last result, not only full-length trials.
        compare_dir: where overlays of several searches go (default: ``FIRST/analysis/compare``).

    Everything is read and checked before anything is written. Raises ValueError on bad input.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ValueError("give at least one search directory")
    experiments = [load_experiment(p) for p in paths]
    chosen = _objectives(experiments, objectives)
    if reference_point is None:
        reference = _common_reference(experiments, chosen, all_fidelities)
    else:
        reference = check_reference_point(reference_point, chosen)
    analyses = []
    for experiment in experiments:
        result = analyze_trials(experiment.trials, chosen, max_epochs=experiment.max_epochs,
                                reference_point=reference, all_fidelities=all_fidelities)
        summary = result.summary
        summary["experiment"] = str(experiment.path.resolve())
        summary["start_time"] = _finite_or_none(experiment.start_time)
        summary["wall_time_s"] = _finite_or_none(experiment.trials["wall_time_s"].max()) if len(experiment.trials) else 0.0
        analyses.append(SearchAnalysis(experiment, result, experiment.path / ANALYSIS_DIR))
    for analysis in analyses:
        write_search(analysis)
    if len(analyses) > 1:
        target = Path(compare_dir) if compare_dir is not None else analyses[0].out_dir / COMPARE_DIR
        write_comparison(analyses, target)
    return analyses


def _finite_or_none(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _objectives(experiments: Sequence[Experiment], spec) -> tuple[Objective, ...]:
    available = set().union(*(numeric_columns(e.trials) for e in experiments))
    chosen = parse_objectives(spec if spec is not None else experiments[0].objectives, available)
    for experiment in experiments:
        if experiment.results.empty:
            continue
        missing = [o.name for o in chosen if o.name not in experiment.trials]
        if missing:
            raise ValueError(f"the trials of {experiment.path} do not report {', '.join(missing)}")
    return chosen


def _common_reference(experiments, objectives, all_fidelities) -> np.ndarray:
    values = []
    for e in experiments:
        if e.trials.empty:
            continue
        keep = exclusion_reasons(e.trials, objectives, max_epochs=e.max_epochs, all_fidelities=all_fidelities) == ""
        values.append(objective_values(e.trials, objectives)[keep.to_numpy(bool)])
    stacked = np.concatenate(values) if values else np.zeros((0, len(objectives)))
    return default_reference_point(stacked, [o.mode for o in objectives])


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def trials_table(result: FrontResult) -> pd.DataFrame:
    """``trials.csv``: flags first, then objectives, other metrics, and the config."""
    trials = result.trials
    names = [o.name for o in result.objectives]
    first = [c for c in _FLAGS + names if c in trials]
    config = [c for c in trials.columns if c.startswith(CONFIG_PREFIX)]
    rest = [c for c in trials.columns if c not in first and c not in config]
    return trials[first + rest + config]


def pareto_table(result: FrontResult) -> pd.DataFrame:
    """``pareto.csv``: each front member's id, genotype string, objectives and config."""
    front = result.front
    names = [o.name for o in result.objectives]
    columns = ["trial_id", "arch", *names, "epoch", "status", "knee"]
    config = [c for c in front.columns if c.startswith(CONFIG_PREFIX)]
    return front[[c for c in columns if c in front] + config]


def _label(path: Path, paths: Sequence[Path]) -> str:
    names = [p.resolve().name for p in paths]
    return path.resolve().name if names.count(path.resolve().name) == 1 else str(path)


def write_search(analysis: SearchAnalysis) -> dict[str, Path]:
    """Write one search's files into ``analysis.out_dir``; returns name -> path."""
    from robnas.analysis import _plots

    result, experiment, out = analysis.result, analysis.experiment, analysis.out_dir
    pareto = pareto_table(result)
    images = [
        ("Objectives (front highlighted)", "scatter_matrix.png", _plots.scatter_matrix([("", result)])),
        ("Hypervolume of the front", "hypervolume.png", _plots.hypervolume_curves([(experiment.path.name, result.curve)])),
        ("Learning curves of the front", "learning_curves.png",
         _plots.learning_curves(experiment.results, result.front["trial_id"].astype(str).tolist(), result.objectives)),
    ]
    written = {
        "trials.csv": atomic_write_text(out / "trials.csv", _csv(trials_table(result))),
        "pareto.csv": atomic_write_text(out / "pareto.csv", _csv(pareto)),
        "hypervolume.csv": atomic_write_text(out / "hypervolume.csv", _csv(result.curve)),
        "summary.json": atomic_write_json(out / "summary.json", result.summary),
    }
    for _, name, png in images:
        written[name] = atomic_write_bytes(out / name, png)
    shown = result.trials[[c for c in ["trial_id", "status", "epoch", "excluded", "pareto", "knee",
                                       *[o.name for o in result.objectives], "arch", "error"] if c in result.trials]]
    page = render_report(
        f"robnas analysis: {experiment.path.resolve().name}",
        summary_facts(result.summary),
        "Pareto front (the knee is highlighted)",
        pareto[[c for c in pareto.columns if c not in _HIDDEN_CONFIG]],
        [(title, png) for title, _, png in images],
        trials=shown,
    )
    written["report.html"] = atomic_write_text(out / "report.html", page)
    return written


def write_comparison(analyses: Sequence[SearchAnalysis], out: Path) -> dict[str, Path]:
    """Overlay the fronts and hypervolume curves of several searches in ``out``."""
    from robnas.analysis import _plots

    paths = [a.experiment.path for a in analyses]
    labels = [_label(p, paths) for p in paths]
    fronts = _plots.scatter_matrix([(label, a.result) for label, a in zip(labels, analyses)])
    curves = _plots.hypervolume_curves([(label, a.result.curve) for label, a in zip(labels, analyses)])
    keys = ("experiment", "n_trials", "n_complete", "n_pareto", "hypervolume", "wall_time_s", "knee")
    searches = [{"label": label, **{k: a.summary.get(k) for k in keys}} for label, a in zip(labels, analyses)]
    summary = {"objectives": analyses[0].summary["objectives"], "directions": analyses[0].summary["directions"],
               "reference_point": analyses[0].summary["reference_point"], "searches": searches}
    table = pd.DataFrame([{"search": s["label"], "trials": s["n_trials"], "complete": s["n_complete"],
                           "front": s["n_pareto"], "hypervolume": s["hypervolume"],
                           "wall time (s)": s["wall_time_s"], "knee": (s["knee"] or {}).get("trial_id")}
                          for s in searches])
    page = _comparison_page(labels, summary, table, fronts, curves)
    return {
        "fronts.png": atomic_write_bytes(out / "fronts.png", fronts),
        "hypervolume.png": atomic_write_bytes(out / "hypervolume.png", curves),
        "summary.json": atomic_write_json(out / "summary.json", summary),
        "report.html": atomic_write_text(out / "report.html", page),
    }


def _comparison_page(labels, summary, table, fronts, curves) -> str:
    reference = ", ".join(f"{v:.4g}" for v in summary["reference_point"])
    objectives = ", ".join(f"{n} ({d})" for n, d in zip(summary["objectives"], summary["directions"]))
    facts = [("searches", ", ".join(labels)), ("objectives", objectives), ("reference point", reference)]
    return render_report(f"robnas comparison: {', '.join(labels)}", facts, "Searches", table,
                         [("Fronts", fronts), ("Hypervolume of the fronts", curves)])
