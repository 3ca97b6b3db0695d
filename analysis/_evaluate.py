"""``evaluate()``: the final numbers of a finished search, measured once on the test split.

A search selects on per-epoch numbers; this measures the chosen trials' last checkpoints on the
test split, at each trial's evaluation eps, under a stronger attack than the per-epoch PGD (see
:mod:`robnas.analysis._autoattack`), and records them in ``DIR/analysis/final.csv``
(:mod:`robnas.analysis._final`), rewritten after each trial so that an interrupted run keeps
what it finished. Trials whose row for the attack already holds the same checkpoint, eps and
number of images are not measured again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from robnas.analysis._paths import check_out_dir
from robnas.analysis._final import ATTACKS, final_path, find_row, is_current, read_final, write_final
from robnas.analysis._front import analyze_trials, exclusion_reasons, numeric_columns, objectives_of
from robnas.analysis._load import Experiment, load_experiment
from robnas.analysis._trial_model import TrialModel, load_trial_model, trial_config_of
from robnas.spaces._attack import budget_fraction

SPLIT = "test"
#: Output keys of one evaluated trial (``robnas evaluate --json`` prints exactly these).
RESULT_KEYS = ("trial_id", "clean_acc", "robust_acc", "attack", "eps", "images", "split")


def _test_split(dataset: str, data_dir: str | None):
    """``(x float32 (N, C, H, W) in [0, 1], y int64 (N,))``: the test split of ``dataset``, never
    used by the search that selected the trials."""
    from robnas.trainables._data import load_split

    return load_split(dataset, "test", data_dir=data_dir)


def evaluate(
    path: str | os.PathLike,
    *,
    trials: str = "front",
    attack: str = "apgd",
    max_images: int | None = None,
    threads: int | None = 1,
    load: Callable[[Path, str], TrialModel] = load_trial_model,
) -> Iterator[dict[str, Any]]:
    """Measure the trials of the search in ``path`` on the test split; yields one result per trial.

    Args:
        trials: ``front`` (the Pareto front of the search's objectives), ``all`` (every trial
            that reported and neither failed nor diverged) or comma-separated trial ids.
        attack: ``apgd``, ``autoattack`` or ``pgd`` (each trial's own per-epoch PGD).
        max_images: measure the first this many test images (default: all of them).
        threads: torch CPU threads while measuring (restored after each trial); None: leave
            torch's. With one thread, as each trial of a search trains, the numbers do not
            depend on the machine's number of cores, and small networks run fastest (two
            threads on a loaded 2-core machine were about 40 times slower).
        load: how a trial's network is loaded (``load_trial_model``; tests count calls).

    Each result holds ``RESULT_KEYS`` plus ``epoch``, ``checkpoint``, ``seed``, ``measured``
    (False: read from ``final.csv``) and ``notes`` (newer checkpoints skipped as unreadable). Everything is read and checked (the run, the trials,
    their checkpoints, the data) before the first trial is measured; ValueError on bad input,
    and then nothing is written.
    """
    path = Path(path).expanduser()
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; choose from {', '.join(ATTACKS)}")
    for name, value in (("max_images", max_images), ("threads", threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    experiment = load_experiment(path)
    settings = experiment.settings
    if settings.get("backend") == "table":
        raise ValueError(f"{path} replayed a table of results: its trials have no networks to evaluate")
    chosen = choose_trials(experiment, trials)
    check_out_dir(final_path(path).parent)
    final = read_final(path)
    x, y = _test_split(settings.get("dataset") or "digits", settings.get("data_dir"))
    n = len(x) if max_images is None else min(max_images, len(x))
    x, y = x[:n], y[:n]
    directories = experiment.trials.set_index(experiment.trials["trial_id"].astype(str))["trial_dir"]
    plans = []
    for trial_id in chosen:
        if not directories[trial_id]:
            raise ValueError(f"trial {trial_id} of {path} has no directory yet")
        directory = path / directories[trial_id]
        _, trial_config = trial_config_of(directory)
        eps = budget_fraction(trial_config.evaluation.eps, name="eval_eps")
        index = find_row(final, trial_id, attack)
        newest = _newest_checkpoint(experiment, trial_id)
        if index is not None and is_current(final.loc[index], eps=eps, images=n, checkpoint=newest):
            plans.append((trial_id, final.loc[index]))
        else:
            plans.append((trial_id, _checked(load(directory, trial_id), x, y)))
    for trial_id, plan in plans:
        if isinstance(plan, pd.Series):
            yield {**_row(plan), "measured": False, "notes": []}
            continue
        with _torch_threads(threads):
            row = measure(plan, x, y, attack=attack)
        index = find_row(final, trial_id, attack)
        final = final.drop(index=index) if index is not None else final
        final = pd.concat([final, pd.DataFrame([row])], ignore_index=True) if len(final) else pd.DataFrame([row])
        write_final(path, final)
        yield {**row, "measured": True, "notes": plan.notes}


def choose_trials(experiment: Experiment, spec: str) -> list[str]:
    """The trial ids ``spec`` names (``front``, ``all`` or ``ID,ID,...``), in order."""
    trials = experiment.trials
    ids = trials["trial_id"].astype(str).tolist()
    if spec in ("front", "all"):
        objectives = objectives_of(experiment.objectives, numeric_columns(trials))
        if spec == "front":
            result = analyze_trials(trials, objectives, max_epochs=experiment.max_epochs)
            chosen = result.summary["pareto"]
        else:
            reasons = exclusion_reasons(trials, objectives, max_epochs=experiment.max_epochs, all_fidelities=True)
            chosen = [t for t, r in zip(ids, reasons) if r == ""]
        if not chosen:
            length = f" trained for {experiment.max_epochs} epochs" if spec == "front" else ""
            raise ValueError(f"no finished trials in {experiment.path}: none{length} reported its objectives "
                             "without failing or diverging")
        return chosen
    chosen = list(dict.fromkeys(t.strip() for t in str(spec).split(",") if t.strip()))
    unknown = [t for t in chosen if t not in ids]
    if unknown or not chosen:
        shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
        raise ValueError(f"no trial {', '.join(map(repr, unknown)) or repr(spec)} in {experiment.path}; "
                         f"trials: {shown or 'none'}")
    return chosen


def measure(trial: TrialModel, x, y, *, attack: str) -> dict[str, Any]:
    """One ``final.csv`` row: ``trial`` measured on ``x`` (N, C, H, W) in [0, 1], labels ``y``."""
    from robnas.analysis._autoattack import autoattack_correct
    from robnas.trainables._adversarial import pgd_correct

    evaluation = trial.trial_config.evaluation
    eps = budget_fraction(evaluation.eps, name="eval_eps")
    if attack == "pgd":
        clean, robust = pgd_correct(trial.model, x, y, evaluation)
    else:  # eps 0: clean flags only, no PGD
        clean, _ = pgd_correct(trial.model, x, y, dataclasses.replace(evaluation, eps=0.0))
        robust = autoattack_correct(trial.model, x, y, eps=eps, attack=attack, seed=evaluation.seed,
                                    label=f"trial {trial.trial_id}: AutoAttack")
    robust = robust & clean  # robust: correct clean and after every attack
    n = len(x)
    return {"trial_id": trial.trial_id, "clean_acc": int(clean.sum()) / n, "robust_acc": int(robust.sum()) / n,
            "attack": attack, "eps": eps, "images": n, "split": SPLIT, "epoch": trial.epoch,
            "checkpoint": trial.checkpoint, "seed": int(evaluation.seed)}


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op CPU threads set to ``threads`` (None: unchanged), restored on exit."""
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _row(series: pd.Series) -> dict[str, Any]:
    row = series.to_dict()
    for key in ("clean_acc", "robust_acc", "eps"):
        row[key] = float(row[key])
    for key in ("images", "epoch", "seed"):
        row[key] = int(row[key])
    return row


def _newest_checkpoint(experiment: Experiment, trial_id: str) -> str:
    trials = experiment.trials
    return str(trials.loc[trials["trial_id"].astype(str) == trial_id, "checkpoint"].iloc[0])


def _checked(trial: TrialModel, x, y) -> TrialModel:
    """``trial``, if its network takes images like ``x`` and has a class for every label of ``y``."""
    if trial.in_channels != x.shape[1] or (len(y) and int(y.max()) >= trial.num_classes):
        raise ValueError(f"trial {trial.trial_id} was trained on {trial.in_channels}-channel images of "
                         f"{trial.num_classes} classes; the test split has {x.shape[1]} channels and "
                         f"labels up to {int(y.max())}")
    return trial
