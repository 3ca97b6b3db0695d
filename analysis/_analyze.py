"""``analyze()``: read searches, compute their fronts and write ``DIR/analysis/``.

Files per search: ``trials.csv``, ``pareto.csv``, ``hypervolume.csv``, ``summary.json``,
``scatter_matrix.png``, ``hypervolume.png``, ``learning_curves.png`` and ``report.html``; where
``robnas evaluate`` wrote ``final.csv``, also ``final_vs_selection.csv`` (selection and final
numbers side by side, their gap, and the front and knee on the final numbers). They go to
``DIR/analysis`` or, for one search, to the ``out`` directory the caller chose. With several
searches, each still gets its own ``DIR/analysis`` and the overlays go to ``out``, which must
be given (``fronts.png``, ``hypervolume.png``, ``summary.json``, ``report.html``). ``out`` is
never inside a search directory (other than the one search's own ``analysis``). Every file is
written atomically, after all of a directory's content has been computed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robnas.analysis._front import (
    FrontResult,
    analyze_trials,
    check_reference_point,
    default_reference_point,
    exclusion_reasons,
    numeric_columns,
    objective_values,
    objectives_of,
)
from robnas.analysis._activity import IDLE_GAP_S
from robnas.analysis._final import ANALYSIS_DIR, read_final
from robnas.analysis._final_front import FinalComparison, compare_final
from robnas.analysis._load import CONFIG_PREFIX, Experiment, load_experiment
from robnas.analysis._paths import check_out_dir, check_outside_searches
from robnas.analysis._report import render_report, summary_facts
from robnas.analysis._study_export import StudyExport, prepare_study, write_study
from robnas.analysis._table_front import table_quality
from robnas.spaces._genotype import EDGE_KEYS
from robnas.spaces._objectives import Objective
from robnas.spaces._runtime import RUNTIME_KEYS
from robnas.trainables._layout import atomic_write_bytes, atomic_write_json, atomic_write_text

_FLAGS = ["trial_id", "status", "epoch", "complete", "stopped_early", "diverged", "eligible", "excluded",
          "pareto", "rank", "knee", "error", "arch"]
HYPERVOLUME_CAPTION = (
    "Hypervolume of the front of the eligible trials finished so far, against the number of trials "
    "finished (left) and search time (right): seconds since the search first started, less every "
    f"stretch of more than {IDLE_GAP_S:.0f} s in which no trial trained, started or finished (the "
    "pause before a resume or an extension).")
#: Config columns the report's front table leaves out (``arch`` shows the cell).
_HIDDEN_CONFIG = {CONFIG_PREFIX + k for k in ("arch", *EDGE_KEYS, *RUNTIME_KEYS)}


@dataclass(frozen=True, eq=False)
class SearchAnalysis:
    """One analysed search: what was read, its front, the directory its files go to, its
    final numbers beside the selection numbers (None before ``robnas evaluate``) and what was
    written to an Optuna study (None unless asked)."""

    experiment: Experiment
    result: FrontResult
    out_dir: Path
    final: FinalComparison | None = None
    study: StudyExport | None = None

    @property
    def summary(self) -> dict[str, Any]:
        return self.result.summary


def analyze(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    objectives: str | Sequence[str] | None = None,
    reference_point: str | Sequence[float] | None = None,
    all_fidelities: bool = False,
    out: str | os.PathLike | None = None,
    compare_dir: str | os.PathLike | None = None,
    optuna_storage: Any = None,
    study_name: str | None = None,
) -> list[SearchAnalysis]:
    """Analyse each search in ``paths`` and write its ``analysis/`` directory (or ``out``).

    Args:
        objectives: names (``"clean_acc,robust_acc"``; ``name:max``/``name:min`` for other
            metric columns); default: the first search's objectives.
        reference_point: one value per objective; default: :func:`default_reference_point`
            over the eligible trials of all the searches, so that their hypervolumes compare.
        all_fidelities: build fronts from every trial's last result, not only full-length trials.
        out: one search: the directory its files go to (default: ``DIR/analysis``); several
            searches: the directory of their comparison (required). Never inside a search
            directory, except the one search's own ``DIR/analysis``; never an existing file.
        compare_dir: deprecated name of ``out``.
        optuna_storage: an RDB URL (``sqlite:///runs.db``) or Optuna storage to write the one
            search's finished trials to, as the study ``study_name`` (default: the search's
            name); see :mod:`robnas.analysis._study_export`.

    Everything is read and checked before anything is written. Raises ValueError on bad input.
    Damaged result rows are left out, each with a warning (see :func:`load_experiment`).
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ValueError("give at least one search directory")
    if compare_dir is not None:
        warnings.warn("analyze(compare_dir=...) is deprecated; use out=...", DeprecationWarning, stacklevel=2)
        if out is not None and Path(out) != Path(compare_dir):
            raise ValueError("give out or its deprecated name compare_dir, not both")
        out = compare_dir
    if len(paths) > 1 and out is None:
        raise ValueError(f"comparing {len(paths)} searches needs --out PATH (a directory outside the searches)")
    if optuna_storage is None and study_name is not None:
        raise ValueError("--study-name needs --optuna-storage")
    if optuna_storage is not None and len(paths) > 1:
        raise ValueError(f"--optuna-storage writes one search to a study, got {len(paths)}; give one DIR")
    experiments = _load(paths, objectives)
    chosen = _objectives(experiments, objectives)
    if reference_point is None:
        reference = _common_reference(experiments, chosen, all_fidelities)
    else:
        reference = check_reference_point(reference_point, chosen)
    analyses = []
    for experiment in experiments:
        result = analyze_trials(experiment.trials, chosen, max_epochs=experiment.max_epochs,
                                reference_point=reference, all_fidelities=all_fidelities)
        result.summary.update(
            experiment=str(experiment.path.resolve()),
            start_time=_finite_or_none(experiment.start_time),
            wall_time_s=_last_time(experiment.trials, "wall_time_s"),
            search_time_s=_last_time(experiment.trials, "search_time_s"),
            idle_gaps=[[b, e] for b, e in experiment.idle_gaps],
        )
        final = compare_final(result, read_final(experiment.path), max_epochs=experiment.max_epochs,
                              reference_point=result.reference_point, all_fidelities=all_fidelities)
        result.summary["final"] = final.summary if final is not None else None
        eligible = result.trials["eligible"].to_numpy(bool)
        result.summary["table_front"] = table_quality(
            experiment.settings, chosen, result.reference_point, objective_values(result.trials, chosen)[eligible])
        own = experiment.path / ANALYSIS_DIR
        target = Path(out).expanduser() if out is not None and len(paths) == 1 else own
        analyses.append(SearchAnalysis(experiment, result, target, final))
    for analysis in analyses:
        check_out_dir(analysis.out_dir)
    if len(analyses) > 1:
        check_out_dir(Path(out).expanduser())
        check_outside_searches(Path(out).expanduser())
    elif out is not None:
        check_outside_searches(analyses[0].out_dir, own=analyses[0].experiment.path / ANALYSIS_DIR)
    plan = None
    if optuna_storage is not None:
        plan = prepare_study(optuna_storage, analyses[0].experiment, analyses[0].result, study_name=study_name)
    for analysis in analyses:
        write_search(analysis)
    if len(analyses) > 1:
        write_comparison(analyses, Path(out).expanduser())
    if plan is not None:
        analyses[0] = replace(analyses[0], study=write_study(plan, analyses[0].experiment, chosen))
    return analyses


def _load(
    paths: Sequence[str | os.PathLike], objectives: str | Sequence[str | Objective] | None
) -> list[Experiment]:
    """The searches in ``paths``, their result rows checked on ``objectives`` (default: the
    first search's, the objectives every search is then analysed on)."""
    first = load_experiment(paths[0], objectives=objectives)
    chosen = objectives if objectives is not None else first.objectives
    return [first, *(load_experiment(p, objectives=chosen) for p in paths[1:])]


def _last_time(trials: pd.DataFrame, column: str) -> float | None:
    """The largest of ``trials[column]`` (s; 0.0 without trials, None if unknown)."""
    times = trials[column].astype(float) if column in trials else pd.Series(dtype=float)
    return _finite_or_none(times.max()) if times.notna().any() else 0.0


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _objectives(experiments: Sequence[Experiment], spec) -> tuple[Objective, ...]:
    available = set().union(*(numeric_columns(e.trials) for e in experiments))
    chosen = objectives_of(spec if spec is not None else experiments[0].objectives, available)
    for experiment in experiments:
        missing = [o.name for o in chosen if o.name not in experiment.trials]
        if missing and not experiment.results.empty:
            raise ValueError(f"the trials of {experiment.path} do not report {', '.join(missing)}")
    return chosen


def _common_reference(experiments, objectives, all_fidelities) -> np.ndarray:
    """The default reference point over the eligible trials of all ``experiments``."""
    values = [np.zeros((0, len(objectives)))]
    for e in experiments:
        reasons = exclusion_reasons(e.trials, objectives, max_epochs=e.max_epochs,
                                    all_fidelities=all_fidelities)
        values.append(objective_values(e.trials, objectives)[(reasons == "").to_numpy(bool)])
    return default_reference_point(np.concatenate(values), [o.direction for o in objectives])


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def trials_table(result: FrontResult) -> pd.DataFrame:
    """``trials.csv``: flags first, then objectives, other metrics, and the config."""
    trials = result.trials
    first = [c for c in _FLAGS + [o.name for o in result.objectives] if c in trials]
    config = [c for c in trials.columns if c.startswith(CONFIG_PREFIX)]
    return trials[first + [c for c in trials.columns if c not in first and c not in config] + config]


def pareto_table(result: FrontResult) -> pd.DataFrame:
    """``pareto.csv``: each front member's id, genotype string, objectives and config."""
    front = result.front
    columns = ["trial_id", "arch", *[o.name for o in result.objectives], "epoch", "status", "knee"]
    config = [c for c in front.columns if c.startswith(CONFIG_PREFIX)]
    return front[[c for c in columns if c in front] + config]


def write_search(analysis: SearchAnalysis) -> dict[str, Path]:
    """Write one search's files into ``analysis.out_dir``; returns file name -> path."""
    from robnas.analysis import _plots

    result, experiment = analysis.result, analysis.experiment
    front_ids = result.front["trial_id"].astype(str).tolist()
    images = {
        "scatter_matrix.png": ("Objectives (front highlighted)", _plots.scatter_matrix([("", result)]),
                               _plots.MARKERS[0].upper() + _plots.MARKERS[1:] + "."),
        "hypervolume.png": ("Hypervolume of the front",
                            _plots.hypervolume_curves([(experiment.path.resolve().name, result.curve)],
                                                      result.objectives),
                            HYPERVOLUME_CAPTION),
        "learning_curves.png": ("Learning curves of the front members",
                                _plots.learning_curves(experiment.results, front_ids, result.objectives),
                                "Each objective at every epoch a trial reported; one colour per front member "
                                "(legend), every other trial in grey."),
    }
    pareto = pareto_table(result)
    shown = ["trial_id", "status", "epoch", "excluded", "pareto", "knee",
             *[o.name for o in result.objectives], "arch", "error"]
    page = render_report(
        f"robnas analysis: {experiment.path.resolve().name}",
        summary_facts(result.summary),
        "Pareto front (the knee is highlighted)",
        pareto[[c for c in pareto.columns if c not in _HIDDEN_CONFIG]],
        list(images.values()),
        trials=result.trials[[c for c in shown if c in result.trials]],
        final=final_section(analysis.final),
    )
    texts = {
        "trials.csv": _csv(trials_table(result)),
        "pareto.csv": _csv(pareto),
        "hypervolume.csv": _csv(result.curve),
        "report.html": page,
    }
    if analysis.final is not None:
        texts["final_vs_selection.csv"] = _csv(analysis.final.table)
    out = analysis.out_dir
    written = {name: atomic_write_text(out / name, text) for name, text in texts.items()}
    written.update((name, atomic_write_bytes(out / name, png)) for name, (_, png, _) in images.items())
    written["summary.json"] = atomic_write_json(out / "summary.json", result.summary)
    return written


def final_section(final: FinalComparison | None) -> tuple[str, pd.DataFrame] | None:
    """The report's title and table of selection vs final numbers (None without final.csv)."""
    if final is None:
        return None
    title = (f"Selection vs final numbers (test split, {final.attack}); gap = selection - final; "
             "the knee of the front on the final numbers is highlighted")
    return title, final.table


def _labels(analyses: Sequence[SearchAnalysis]) -> list[str]:
    """Directory names, or whole paths where two searches share a name."""
    names = [a.experiment.path.resolve().name for a in analyses]
    return [n if names.count(n) == 1 else str(a.experiment.path) for n, a in zip(names, analyses)]


def write_comparison(analyses: Sequence[SearchAnalysis], out: str | os.PathLike) -> dict[str, Path]:
    """Overlay the fronts and hypervolume curves of several searches in ``out``."""
    from robnas.analysis import _plots

    labels = _labels(analyses)
    fronts = _plots.scatter_matrix(list(zip(labels, (a.result for a in analyses))))
    curves = _plots.hypervolume_curves(list(zip(labels, (a.result.curve for a in analyses))),
                                       analyses[0].result.objectives)
    keys = ("experiment", "n_trials", "n_complete", "n_pareto", "hypervolume", "search_time_s", "wall_time_s",
            "knee")
    searches = [{"label": label, **{k: a.summary.get(k) for k in keys}} for label, a in zip(labels, analyses)]
    first = analyses[0].summary
    summary = {"objectives": first["objectives"], "directions": first["directions"],
               "reference_point": first["reference_point"], "searches": searches}
    table = pd.DataFrame([
        {"search": s["label"], "trials": s["n_trials"], "complete": s["n_complete"], "front": s["n_pareto"],
         "hypervolume": s["hypervolume"], "search time (s)": s["search_time_s"],
         "wall time (s)": s["wall_time_s"],
         "knee trial": (s["knee"] or {}).get("trial_id", "")}
        for s in searches
    ])
    objectives = ", ".join(f"{n} ({d})" for n, d in zip(summary["objectives"], summary["directions"]))
    facts = [("searches", ", ".join(labels)), ("objectives", objectives),
             ("reference point", ", ".join(f"{v:.4g}" for v in summary["reference_point"]))]
    colours = "; ".join(f"{label}: {colour.removeprefix('tab:')}" for label, colour in zip(labels, _plots.colours(len(labels))))
    page = render_report(f"robnas comparison: {', '.join(labels)}", facts, "Searches", table, [
        ("Fronts", fronts, f"One colour per search ({colours}). {_plots.MARKERS[0].upper()}{_plots.MARKERS[1:]}; "
                           "every search on the same objectives and reference point."),
        ("Hypervolume of the fronts", curves, f"One line per search, in its colour. {HYPERVOLUME_CAPTION}"),
    ])
    out = Path(out)
    return {
        "fronts.png": atomic_write_bytes(out / "fronts.png", fronts),
        "hypervolume.png": atomic_write_bytes(out / "hypervolume.png", curves),
        "summary.json": atomic_write_json(out / "summary.json", summary),
        "report.html": atomic_write_text(out / "report.html", page),
    }
