"""The Ray Tune function trainable: one report and one checkpoint per epoch."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from robnas.spaces._compose import decode
from robnas.trainables._faults import failing_epoch, maybe_fail
from robnas.trainables._trial import CHECKPOINT_FILE, CorruptCheckpointError, DivergedError, TrialRunner

#: Keys of a Tune config that steer the trainable but are not part of the trial's design.
#: ``score_weights``: objective name -> weight; the trainable reports ``score``, their weighted
#: sum, for single-metric schedulers and searchers. ``fault_rate`` and ``fault_seed``: fault
#: injection for tests (see ``robnas.trainables._faults``).
RUNTIME_KEYS = ("score_weights", "fault_rate", "fault_seed")


def scalarize(metrics: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Weighted sum of reported metrics; a missing metric is an error."""
    missing = sorted(set(weights) - set(metrics))
    if missing:
        raise ValueError(f"cannot score: the trial does not report {', '.join(missing)}")
    return float(sum(float(w) * float(metrics[name]) for name, w in weights.items()))


def robust_trainable(config: dict[str, Any]) -> None:
    """Adversarially train the configuration in ``config``; report after every epoch.

    Resumes from ``ray.tune.get_checkpoint()`` when Tune restores the trial; a corrupted
    checkpoint is skipped with a warning naming the file, for the previous good one (or a
    fresh start). Uses CUDA when Ray assigned the trial a GPU.
    """
    from ray import tune

    trial_config = decode(config, ignore=RUNTIME_KEYS)
    weights = config.get("score_weights") or {}
    device = "cuda" if torch.cuda.is_available() and _assigned_gpus() else "cpu"
    notes: list[str] = []
    checkpoint = tune.get_checkpoint()
    runner = _restored_runner(trial_config, device, checkpoint, notes)
    resumed_from_epoch = runner.epoch
    node_id = _node_id()
    context = tune.get_context()
    failing = failing_epoch(
        context.get_trial_id() or "",
        rate=float(config.get("fault_rate", 0.0)),
        seed=int(config.get("fault_seed", 0)),
        max_epochs=trial_config.training.max_epochs,
    )
    while not runner.done:
        maybe_fail(runner.epoch + 1, failing, restored=checkpoint is not None)
        try:
            metrics = runner.run_epoch()
        except DivergedError as error:
            # NaN objectives never enter a Pareto front; the status says why.
            nan = float("nan")
            diverged = dict.fromkeys(("clean_acc", "robust_acc", "sparsity", "score"), nan)
            tune.report({**diverged, "epoch": runner.epoch + 1, "diverged": True, "error": str(error)})
            return
        if weights:
            metrics["score"] = scalarize(metrics, weights)
        metrics["diverged"] = False
        metrics["node_id"] = node_id
        metrics["resumed_from_epoch"] = resumed_from_epoch  # 0: this attempt started from scratch
        if notes:  # restore problems go into the trial's results, not only a worker log
            metrics["restore_warning"] = "; ".join(notes)
            notes = []
        with tempfile.TemporaryDirectory() as directory:
            runner.save(Path(directory) / CHECKPOINT_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def _restored_runner(trial_config, device: str, checkpoint, notes: list[str]) -> TrialRunner:
    """A runner restored from ``checkpoint``, else from an earlier good one beside it, else new."""
    if checkpoint is None:
        return TrialRunner(trial_config, device=device)
    with checkpoint.as_directory() as directory:
        candidates = [Path(directory) / CHECKPOINT_FILE]
        runner = _first_loadable(trial_config, device, candidates, notes)
    if runner is not None:
        return runner
    parent = Path(checkpoint.path).parent
    earlier = sorted(
        (p / CHECKPOINT_FILE for p in parent.glob("checkpoint_*") if p.name < Path(checkpoint.path).name),
        reverse=True,
    ) if parent.is_dir() else []
    runner = _first_loadable(trial_config, device, earlier, notes)
    if runner is None:
        _warn("no readable checkpoint left; the trial restarts from epoch 0", notes)
        runner = TrialRunner(trial_config, device=device)
    return runner


def _first_loadable(trial_config, device: str, paths, notes: list[str]) -> TrialRunner | None:
    for path in paths:
        runner = TrialRunner(trial_config, device=device)
        try:
            runner.load(path)
            return runner
        except CorruptCheckpointError as error:
            _warn(f"{error}; trying an earlier checkpoint", notes)
    return None


def _warn(message: str, notes: list[str]) -> None:
    warnings.warn(message, stacklevel=3)
    notes.append(message)


def _node_id() -> str:
    """The Ray node running this trial (distinguishes nodes that share one host)."""
    import ray

    try:
        return ray.get_runtime_context().get_node_id() or ""
    except Exception:  # not inside a Ray worker
        return ""


def _assigned_gpus() -> list[int]:
    import ray

    try:
        return list(ray.get_gpu_ids())
    except Exception:  # not inside a Ray worker
        return []
