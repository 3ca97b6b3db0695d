"""Train the networks of a space and write a results table of per-epoch metrics.

The networks are every NB201 cell class, a listed subset, or a seeded draw from the space
(``robnas.search._tabulate_archs``); the ``resnet`` space has no finite list, so it is
tabulated from a list or a draw. Each network is one trial of ``robust_trainable`` in a Ray
Tune experiment (grid search over ``arch``, the network's description, FIFO) kept beside the
output as ``<out>.tune/``; ``resume=True`` continues it with ``Tuner.restore``. The table has
one row per (network, epoch) and the columns ``arch``, ``epoch`` and ``TABLE_METRICS``;
``epoch_time_s`` is the cost column of ``robnas.trainables._table``, so a replayed search
reports the same names and values as the trained one.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from robnas.search._ray_compat import tune_environment
from robnas.search._run import STATE_PERIOD_S, init_ray, trial_dirname, versions
from robnas.search._settings import resolve_path
from robnas.search._tabulate_archs import (
    ENUMERATIONS, SPACES, all_cells, distinct_descriptions, read_archs, sample_archs, space_family,
)
from robnas.spaces._family import DEFAULT_FAMILY, FAMILIES, parse_description
from robnas.spaces._resolve import ALTERNATIVES
from robnas.trainables._layout import atomic_write_bytes, atomic_write_json, atomic_write_text, read_results

__all__ = [
    "TABLE_METRICS",
    "TabulateResult",
    "TabulateSettings",
    "all_cells",
    "experiment_path",
    "read_archs",
    "tabulate",
]

#: Per-epoch metrics of ``robust_trainable`` written to the table, in column order.
TABLE_METRICS = (
    "clean_acc", "robust_acc", "sparsity", "params", "macs", "sparse_macs",
    "train_loss", "lr", "train_time_s", "epoch_time_s",
)
SETTINGS_FILE = "robnas_tabulate.json"
_SUFFIXES = (".csv", ".parquet", ".pq")
# Trial keys with their own option; ``trial`` must not set them.
_OWN_KEYS = ("family", "arch", *ALTERNATIVES["arch"], "dataset", "data_dir", "max_epochs", "seed")
# Options that may change when a tabulation is resumed.
_RUNTIME = ("max_concurrent", "cpus_per_trial", "address")


@dataclasses.dataclass(frozen=True)
class TabulateSettings:
    """What to tabulate: ``archs`` (descriptions of ``space``'s family), else ``num_samples``
    networks drawn from ``space`` (seeded by ``seed``), else every canonical network of a space
    that can be listed (6,466 for ``cell``; ``resnet`` cannot).

    ``epochs`` None takes the dataset's default ``max_epochs``; ``trial`` holds fixed trial keys
    (anything ``robnas.spaces.decode`` accepts except the cell, dataset, epochs and seed).
    """

    out: str
    archs: tuple[str, ...] | None = None
    space: str = "cell"
    num_samples: int | None = None
    dataset: str = "digits"
    data_dir: str | None = None
    epochs: int | None = None
    max_concurrent: int = 2
    cpus_per_trial: float = 1.0
    address: str | None = None
    seed: int = 0
    trial: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        from robnas.spaces._compose import decode
        from robnas.spaces._defaults import dataset_default

        if not self.out:
            raise ValueError("tabulate needs an output table path (--out), ending in .csv or .parquet")
        if Path(self.out).suffix.lower() not in _SUFFIXES:
            raise ValueError(f"output table {self.out!r} must end in one of {', '.join(_SUFFIXES)}")
        if self.space not in SPACES:
            raise ValueError(f"cannot tabulate space {self.space!r}; choose from {', '.join(SPACES)}")
        family = space_family(self.space, dataset=self.dataset)
        if isinstance(self.archs, str):
            raise ValueError(f"archs must be a sequence of {family.name} descriptions, got the string {self.archs!r}")
        if self.archs is not None and self.num_samples is not None:
            raise ValueError("give archs (--archs) or num_samples (--num-samples), not both")
        if self.num_samples is not None:
            if isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int) or self.num_samples < 1:
                raise ValueError(f"num_samples must be an integer >= 1, got {self.num_samples!r}")
            archs = sample_archs(self.space, self.num_samples, dataset=self.dataset, seed=self.seed)
        elif self.archs is not None:
            archs = distinct_descriptions(self.archs, family)
        elif self.space in ENUMERATIONS:
            archs = ENUMERATIONS[self.space]()
        else:
            raise ValueError(f"space {self.space!r} has no finite list of networks: "
                             f"give --archs FILE or --num-samples N")
        if not archs:
            raise ValueError("tabulate needs at least one network, got an empty list")
        object.__setattr__(self, "archs", archs)
        if self.epochs is None:
            object.__setattr__(self, "epochs", int(dataset_default(self.dataset, "max_epochs")))
        for name, minimum in (("epochs", 1), ("max_concurrent", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if isinstance(self.cpus_per_trial, bool) or not isinstance(self.cpus_per_trial, (int, float)) \
                or self.cpus_per_trial <= 0:
            raise ValueError(f"cpus_per_trial must be a number > 0, got {self.cpus_per_trial!r}")
        if not isinstance(self.trial, Mapping):
            raise ValueError(f"trial must be a mapping of trial keys, got {self.trial!r}")
        own = sorted(set(self.trial) & set(_OWN_KEYS))
        if own:
            raise ValueError(f"trial key(s) {', '.join(own)} have their own options; remove them from trial")
        object.__setattr__(self, "trial", dict(self.trial))
        decode({"arch": archs[0], **self.fixed_keys()})  # every fixed key is valid

    def fixed_keys(self) -> dict[str, Any]:
        """The trial keys every network shares (``family`` unless the default)."""
        family = parse_description(self.archs[0]).family
        return {
            **({} if family == DEFAULT_FAMILY else {"family": family}),
            "dataset": self.dataset, "data_dir": self.data_dir,
            "max_epochs": self.epochs, "seed": self.seed, **self.trial,
        }

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["archs"], data["trial"] = list(self.archs), dict(self.trial)
        return data


@dataclasses.dataclass(frozen=True, eq=False)
class TabulateResult:
    """The table (written to ``path`` unless some network is unfinished or none succeeded), its
    Tune experiment, and the networks missing from it: ``failed`` (the trial raised an error) and
    ``unfinished`` (the run was interrupted). ``resume`` continues both."""

    path: Path
    experiment_path: Path
    table: pd.DataFrame
    failed: tuple[str, ...]
    unfinished: tuple[str, ...] = ()
    written: bool = True


def experiment_path(out: str | os.PathLike) -> Path:
    """The Tune experiment directory of the table ``out``: ``<out>.tune`` beside it."""
    out = resolve_path(out, "output table")
    return out.with_name(out.name + ".tune")


def tabulate(settings: TabulateSettings, *, resume: bool = False, overwrite: bool = False,
             callbacks: Sequence[Any] = ()) -> TabulateResult:
    """Train every cell of ``settings`` for ``settings.epochs`` epochs and write the table
    (only once every cell has finished or failed; failed cells are left out of it).

    An existing experiment or output is never replaced silently: ``resume`` continues the
    experiment (same settings apart from ``max_concurrent``, ``cpus_per_trial``, ``address``;
    finished cells are kept, unfinished and failed ones continue from their last checkpoint)
    and ``overwrite`` starts again. Uses the running Ray instance if there is one.
    ``callbacks`` are Ray Tune callbacks of a new experiment (e.g. progress lines).
    """
    from ray import tune

    from robnas.trainables._data import load_dataset
    from robnas.search._trainables import robust_trainable

    if resume and overwrite:
        raise ValueError("choose one of resume and overwrite")
    out = resolve_path(settings.out, "output table")
    path = experiment_path(out)
    existing = path.is_dir() and any(path.iterdir())
    if existing and not (resume or overwrite):
        raise ValueError(f"tabulation {path} exists; use --resume to continue it or --overwrite to start again")
    if out.exists() and not (resume or overwrite):
        raise ValueError(f"output table {out} exists; use --overwrite to replace it")
    if existing:
        _check_previous(path, settings, compare=resume)
    load_dataset(settings.dataset, settings.data_dir)  # fail now, not in every trial
    init_ray(settings.address)
    trainable = tune.with_resources(robust_trainable, {"cpu": settings.cpus_per_trial})
    if existing and resume and tune.Tuner.can_restore(str(path)):
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        if existing:
            shutil.rmtree(path)
        atomic_write_json(path / SETTINGS_FILE, {"settings": settings.to_dict(), "versions": versions()})
        tuner = _new_tuner(settings, trainable, path, callbacks=list(callbacks))
    with tune_environment(state_period_s=STATE_PERIOD_S):
        table, failed, unfinished = collect(tuner.fit(), settings)
    written = not unfinished and len(table) > 0
    if written:
        write_table(table, out)
    return TabulateResult(out, path, table, failed, unfinished, written)


def _new_tuner(settings: TabulateSettings, trainable, path: Path, *, callbacks: list[Any]):
    from ray import tune

    return tune.Tuner(
        trainable,
        param_space={"arch": tune.grid_search(list(settings.archs)), **settings.fixed_keys()},
        tune_config=tune.TuneConfig(
            num_samples=1,
            max_concurrent_trials=settings.max_concurrent,
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=path.name,
            storage_path=str(path.parent),
            verbose=0,
            callbacks=callbacks,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )


def collect(grid, settings: TabulateSettings) -> tuple[pd.DataFrame, tuple[str, ...], tuple[str, ...]]:
    """The table of a tabulation in ``settings.archs`` order, the cells whose trial raised an
    error, and those not finished for another reason (an interrupted run).

    Values are read from each trial's ``result.json`` (exact floats); a diverged trial's rows
    from its diverged epoch on hold NaN metrics and cost 0.
    """
    trials = {_describe(r.config["arch"]): r for r in grid if r.config}
    rows, failed, unfinished = [], [], []
    for arch in settings.archs:
        result = trials.get(arch)
        curve = _curve(_read_results(Path(result.path)), settings.epochs) if result else None
        if result is not None and result.error is not None:
            failed.append(arch)
        elif curve is None:
            unfinished.append(arch)
        else:
            rows += [{"arch": arch, "epoch": epoch, **values} for epoch, values in enumerate(curve, start=1)]
    columns = ["arch", "epoch", *TABLE_METRICS]
    return pd.DataFrame(rows, columns=columns), tuple(failed), tuple(unfinished)


def _describe(text: str) -> str:
    """The exact description of a trial's ``arch``."""
    network = parse_description(text)
    return FAMILIES[network.family].describe(network)


def _read_results(trial_dir: Path) -> dict[int, dict[str, Any]]:
    """Epoch -> report of a trial directory (a re-run epoch: the last report wins)."""
    return {int(record["epoch"]): record for record in read_results(trial_dir) if "epoch" in record}


def _curve(records: dict[int, dict[str, Any]], epochs: int) -> list[dict[str, float]] | None:
    curve = []
    for epoch in range(1, epochs + 1):
        record = records.get(epoch)
        if record is None:
            return None
        if record.get("diverged"):
            lost = {**dict.fromkeys(TABLE_METRICS, math.nan), "epoch_time_s": 0.0}
            return curve + [lost] * (epochs - epoch + 1)
        curve.append({name: record.get(name, math.nan) for name in TABLE_METRICS})
    return curve


def write_table(table: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Write ``table`` atomically as CSV or Parquet (by the suffix of ``out``)."""
    out = Path(out)
    if out.suffix.lower() == ".csv":
        return atomic_write_text(out, table.to_csv(index=False))
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return atomic_write_bytes(out, buffer.getvalue())


def _check_previous(path: Path, settings: TabulateSettings, *, compare: bool) -> None:
    file = path / SETTINGS_FILE
    if not file.is_file():
        raise ValueError(f"{path} is not a robnas tabulation (no {SETTINGS_FILE}); remove it or choose another --out")
    if not compare:
        return
    try:
        previous = json.loads(file.read_text(encoding="utf-8"))["settings"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"{file} is not a valid tabulation settings file ({error})") from None
    current = json.loads(json.dumps(settings.to_dict(), default=str))
    changed = sorted(k for k in current if k not in _RUNTIME and previous.get(k) != current[k])
    if changed:
        raise ValueError(
            f"cannot resume {path} with different {', '.join(changed)}; use --overwrite to start again"
        )
