"""A trial epoch by epoch without Ray: restore from a checkpoint directory, train, checkpoint.

``train_epochs(config, restore_from=...)`` returns a ``TrialEpochs``; iterating it trains one
epoch per step and yields that epoch's report, and ``save(directory)`` writes the checkpoint of
the last epoch into a directory. ``robnas.search.robust_trainable`` wraps it for Ray Tune.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from robnas.spaces._compose import TrialConfig, decode
from robnas.spaces._runtime import RUNTIME_KEYS, scalarize
from robnas.trainables._layout import CHECKPOINT_FILE, checkpoint_files, first_good
from robnas.trainables._trial import DivergedError, TrialRunner

__all__ = ["TrialEpochs", "restore_runner", "train_epochs"]

_OBJECTIVES_ON_DIVERGENCE = ("clean_acc", "robust_acc", "sparsity", "score")


class TrialEpochs:
    """The epochs a trial has left; iterate to train them, one per step.

    Each report is ``TrialRunner.run_epoch()``'s metrics plus ``diverged`` (False),
    ``resumed_from_epoch`` (the epoch restored from; 0: started from scratch), ``score`` (with
    ``score_weights``, over the metrics scaled by ``score_scales``) and, on the first report after a skipped checkpoint, ``restore_warning``.
    A diverged epoch yields NaN objectives, ``diverged=True`` and ``error``, and ends the run.
    An epoch that reports ``catastrophic_overfit`` ends the run, with ``stopped_on_overfit=True``,
    when the trial's ``stop_on_overfit`` is set.
    """

    def __init__(self, runner: TrialRunner, *, score_weights: Mapping[str, float] | None = None,
                 score_scales: Mapping[str, Any] | None = None, notes: list[str] | None = None) -> None:
        self.runner = runner
        self.score_weights = dict(score_weights or {})
        self.score_scales = dict(score_scales or {})
        self.resumed_from_epoch = runner.epoch
        self._notes = list(notes or [])

    @property
    def next_epoch(self) -> int:
        """The 1-based epoch the next step trains."""
        return self.runner.epoch + 1

    @property
    def max_epochs(self) -> int:
        return self.runner.config.training.max_epochs

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while not self.runner.done:
            try:
                metrics = self.runner.run_epoch()
            except DivergedError as error:
                # NaN objectives never enter a Pareto front; the status says why.
                diverged = dict.fromkeys(_OBJECTIVES_ON_DIVERGENCE, float("nan"))
                yield {**diverged, "epoch": self.next_epoch, "diverged": True, "error": str(error)}
                return
            if self.score_weights:
                metrics["score"] = scalarize(metrics, self.score_weights, self.score_scales)
            metrics["diverged"] = False
            metrics["resumed_from_epoch"] = self.resumed_from_epoch
            if self._notes:  # restore problems go into the trial's results, not only a log
                metrics["restore_warning"] = "; ".join(self._notes)
                self._notes = []
            if metrics.get("catastrophic_overfit") and self.runner.config.robust.stop_on_overfit:
                yield {**metrics, "stopped_on_overfit": True}
                return
            yield metrics

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the checkpoint of the last trained epoch into ``directory``; returns the file."""
        return self.runner.save(Path(directory) / CHECKPOINT_FILE)


def train_epochs(
    config: Mapping[str, Any],
    *,
    restore_from: str | os.PathLike | None = None,
    earlier_than: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> TrialEpochs:
    """The epochs of the trial with flat config ``config`` (trial keys and ``RUNTIME_KEYS``).

    ``restore_from``: a checkpoint directory written by ``TrialEpochs.save``; see
    :func:`restore_runner` for ``earlier_than`` and the fallback on a corrupt checkpoint.
    """
    trial_config = decode(config, ignore=RUNTIME_KEYS)
    notes: list[str] = []
    runner = restore_runner(trial_config, restore_from, earlier_than=earlier_than, device=device, notes=notes)
    return TrialEpochs(runner, score_weights=config.get("score_weights"),
                       score_scales=config.get("score_scales"), notes=notes)


def restore_runner(
    trial_config: TrialConfig,
    restore_from: str | os.PathLike | None,
    *,
    earlier_than: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    notes: list[str] | None = None,
) -> TrialRunner:
    """A runner restored from ``restore_from/trial.pt``, else from the newest good earlier
    ``checkpoint_*`` beside ``earlier_than`` (default: ``restore_from``), else a new one.

    Each checkpoint skipped as corrupt is a ``UserWarning`` naming it, also appended to ``notes``.
    """
    notes = [] if notes is None else notes
    if restore_from is None:
        return TrialRunner(trial_config, device=device)
    anchor = Path(earlier_than if earlier_than is not None else restore_from)
    candidates = [Path(restore_from) / CHECKPOINT_FILE, *checkpoint_files(anchor.parent, before=anchor.name)]

    def load(path: Path) -> TrialRunner:
        runner = TrialRunner(trial_config, device=device)
        runner.load(path)
        return runner

    _, runner, skipped = first_good(candidates, load)
    for error in skipped:
        _warn(f"{error}; trying an earlier checkpoint", notes)
    if runner is None:
        _warn("no readable checkpoint left; the trial restarts from epoch 0", notes)
        runner = TrialRunner(trial_config, device=device)
    return runner


def _warn(message: str, notes: list[str]) -> None:
    warnings.warn(message, stacklevel=3)
    notes.append(message)
