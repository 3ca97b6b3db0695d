"""The Ray Tune function trainable: one report and one checkpoint per epoch."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from robnas.spaces._compose import decode
from robnas.trainables._trial import CHECKPOINT_FILE, DivergedError, TrialRunner

#: Keys of a Tune config that steer the trainable but are not part of the trial's design.
#: ``score_weights``: objective name -> weight; the trainable reports ``score``, their weighted
#: sum, for single-metric schedulers and searchers.
RUNTIME_KEYS = ("score_weights",)


def scalarize(metrics: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Weighted sum of reported metrics; a missing metric is an error."""
    missing = sorted(set(weights) - set(metrics))
    if missing:
        raise ValueError(f"cannot score: the trial does not report {', '.join(missing)}")
    return float(sum(float(w) * float(metrics[name]) for name, w in weights.items()))


def robust_trainable(config: dict[str, Any]) -> None:
    """Adversarially train the configuration in ``config``; report after every epoch.

    Resumes from ``ray.tune.get_checkpoint()`` when Tune restores the trial. Uses CUDA when
    Ray assigned the trial a GPU.
    """
    from ray import tune

    trial_config = decode(config, ignore=RUNTIME_KEYS)
    weights = config.get("score_weights") or {}
    device = "cuda" if torch.cuda.is_available() and _assigned_gpus() else "cpu"
    runner = TrialRunner(trial_config, device=device)
    node_id = _node_id()
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            runner.load(Path(directory) / CHECKPOINT_FILE)
    while not runner.done:
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
        with tempfile.TemporaryDirectory() as directory:
            runner.save(Path(directory) / CHECKPOINT_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


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
