"""The Ray Tune function trainables: one report and one checkpoint per epoch.

Both wrap a Ray-free driver of ``robnas.trainables``: ``robust_trainable`` trains
(``train_epochs``), ``table_trainable`` replays a results table (``config_reports``). Tune
restores a trial from ``tune.get_checkpoint()``; this module only moves reports and checkpoints
between the driver and Tune.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from robnas.trainables._epochs import TrialEpochs

# Ray, torch and the trainables are imported when a trial runs: importing robnas.search stays light.
__all__ = ["open_epochs", "report_epochs", "robust_trainable", "table_trainable", "with_trial_defaults"]


def robust_trainable(config: dict[str, Any]) -> None:
    """Adversarially train the configuration in ``config``; report after every epoch.

    Resumes from ``ray.tune.get_checkpoint()`` when Tune restores the trial; a corrupted
    checkpoint is skipped with a warning naming the file, for the previous good one (or a
    fresh start). Uses CUDA when Ray assigned the trial a GPU; with a fraction of one
    (``gpu_share`` < 1) the trial's CUDA memory is capped at that fraction.
    """
    epochs, _ = open_epochs(config)
    report_epochs(epochs, epochs.save)


def open_epochs(config: dict[str, Any]) -> tuple[TrialEpochs, bool]:
    """``(epochs, restored)``: the trial's driver, restored from Tune's checkpoint if it has one."""
    from ray import tune

    from robnas.trainables._device import apply_memory_fraction, choose_device
    from robnas.trainables._epochs import train_epochs

    gpus = _assigned_gpus()
    # A search started before robnas passed gpu_share: whole GPUs, as it then trained.
    share = config.get("gpu_share", len(gpus))
    device = choose_device(share, visible_gpus=gpus)
    apply_memory_fraction(share, device)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return train_epochs(config, device=device), False
    with checkpoint.as_directory() as directory:
        return train_epochs(config, restore_from=directory, earlier_than=checkpoint.path, device=device), True


def report_epochs(reports: Iterable[dict[str, Any]], save: Callable[[str], Any]) -> None:
    """``tune.report`` each report with a checkpoint written by ``save(directory)``; a diverged
    report goes without one and ends the trial."""
    from ray import tune

    node_id = _node_id()
    for metrics in reports:
        if metrics.get("diverged"):
            tune.report(metrics)
            return
        metrics["node_id"] = node_id
        with tempfile.TemporaryDirectory() as directory:
            save(directory)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def table_trainable(config: dict[str, Any]) -> None:
    """Ray Tune function trainable that reports a table's results instead of training.

    Reads the network (``family`` and its keys: ``arch``, any family's description, or NB201's
    edge keys), ``table`` (path), ``max_epochs`` (default: the table's epochs),
    ``score_weights``, and NB201's ``width`` and ``cells_per_stage`` (for ``params``);
    other trial keys are accepted and ignored, unknown keys rejected (before Tune is asked for
    anything). Reports once per epoch with a tiny checkpoint, and continues after the
    checkpointed epoch when Tune restores it.
    """
    from robnas.trainables._layout import read_replay_checkpoint, write_replay_checkpoint
    from robnas.trainables._table import config_reports

    reports = config_reports(config)
    from ray import tune

    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = read_replay_checkpoint(directory)
    for report in reports[start:]:
        with tempfile.TemporaryDirectory() as directory:
            write_replay_checkpoint(directory, report["epoch"])
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))


def with_trial_defaults(
    trainable: Callable[[dict[str, Any]], None], defaults: Mapping[str, Any]
) -> Callable[[dict[str, Any]], None]:
    """``trainable`` run on its config with the keys it lacks taken from ``defaults`` (a
    search's recorded ``resolved_trial``; see ``robnas.spaces.fill_defaults``).

    Keeps ``trainable``'s ``__name__``: Tune restores a search only with a trainable of the
    name it was started with.
    """
    from robnas.spaces._resolve import fill_defaults

    defaults = dict(defaults)

    def with_defaults(config: dict[str, Any]) -> None:
        return trainable(fill_defaults(config, defaults))

    with_defaults.__name__ = getattr(trainable, "__name__", with_defaults.__name__)
    with_defaults.__doc__ = trainable.__doc__
    return with_defaults


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
