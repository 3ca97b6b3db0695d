"""A table of trained results as a backend: look results up instead of training.

A results table is a CSV or Parquet file (chosen by the suffix: ``.csv``, ``.parquet``, ``.pq``)
with one row per network, or per (network, epoch) for learning curves. Its columns are read as follows:

- ``arch`` (required): the network's one-line description in its family (``describe`` of
  ``robnas.spaces._family``: an NB201 cell string, or a ``resnet`` line such as
  ``conv16k3-basic-d2.1-w8.32-k3-relu-se0``); rows of different families may share a table.
  Rows of networks with one canonical form (isomorphic NB201 cells) are joined: a network is
  looked up by its exact description first, then by its canonical one, taking the first row of
  the class in file order.
- ``epoch`` (optional): integer >= 1, the epoch whose metrics the row holds. Without it, the
  table holds one fidelity, epoch 1.
- cost (optional): seconds per epoch; the first of ``COST_COLUMNS`` present. It drives a
  simulated clock: ``sim_time_s`` is the sum of the cost over epochs 1..k.
- index-like columns, ignored: ``uid``, ``index``, ``id``, names ending in ``_index`` or ``_id``,
  and ``Unnamed: ...`` (a DataFrame index written to CSV).
- every other column is a metric and must be numeric; NaN is allowed (a diverged trial).

A metric's direction is ``robnas.spaces.default_direction`` of its name: ``"min"`` for times,
losses, sizes and costs, ``"max"`` otherwise (accuracies).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from robnas.spaces._compose import CONFIG_KEYS
from robnas.spaces._family import DEFAULT_FAMILY, family_named, family_of, parse_description
from robnas.spaces._genotype import Genotype
from robnas.spaces._nb201 import NB201Arch
from robnas.spaces._runtime import RUNTIME_KEYS, scalarize

__all__ = ["COST_COLUMNS", "TABLE_INPUT", "TABLE_MACRO", "ResultTable", "config_reports", "replay", "row_network",
           "row_networks",
           "table_params"]

#: Names of the cost column (seconds per epoch), in order of preference.
COST_COLUMNS = ("cost_s", "epoch_time_s")
_INDEX_NAMES = ("uid", "index", "id")
_READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


def _is_index_like(name: str) -> bool:
    return name in _INDEX_NAMES or name.endswith(("_index", "_id")) or name.startswith("Unnamed:")


class ResultTable:
    """A validated results table indexed by (network, epoch): from a DataFrame, or a file with :meth:`load`."""

    def __init__(self, frame: pd.DataFrame, *, path: str = "<DataFrame>") -> None:
        self._path = str(path)
        where = f"table {self._path}"
        columns = [str(c) for c in frame.columns]
        if "arch" not in columns:
            raise ValueError(f"{where} has no 'arch' column (columns: {', '.join(columns) or 'none'})")
        if len(frame) == 0:
            raise ValueError(f"{where} has no rows")
        frame = frame.set_axis(columns, axis=1)
        self._cost = next((name for name in COST_COLUMNS if name in columns), None)
        skip = {"arch", "epoch", self._cost}
        self._metrics = tuple(c for c in columns if c not in skip and not _is_index_like(c))
        if not self._metrics:
            raise ValueError(f"{where} has no metric columns (columns: {', '.join(columns)})")
        values = {name: _numeric(frame[name], name, where) for name in self._metrics}
        epochs = _epochs(frame["epoch"], where) if "epoch" in columns else [1] * len(frame)
        costs = _costs(frame[self._cost], self._cost, where) if self._cost else None
        self._epochs = max(epochs)
        self._rows = list(zip(*values.values()))
        self._row_costs = costs
        self._exact: dict[tuple[str, int], int] = {}
        self._first: dict[tuple[str, int], int] = {}
        self._class_epochs: dict[str, set[int]] = {}
        self._families: dict[str, str] = {}  # canonical description -> family name
        parsed: dict[Any, tuple[str, str]] = {}
        for row, (text, epoch) in enumerate(zip(frame["arch"].tolist(), epochs)):
            if text not in parsed:
                try:
                    network = parse_description(text)
                except ValueError as error:
                    raise ValueError(f"{where}, row {row + 1}: {error}") from None
                parsed[text] = _keys(network)
                self._families.setdefault(parsed[text][1], network.family)
            exact, canonical = parsed[text]
            self._exact.setdefault((exact, epoch), row)
            self._first.setdefault((canonical, epoch), row)
            self._class_epochs.setdefault(canonical, set()).add(epoch)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ResultTable:
        """Read and validate the table at ``path``; cached per process by path and mtime."""
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"table {path} does not exist")
        if path.suffix.lower() not in _READERS:
            raise ValueError(f"table {path}: unknown format {path.suffix!r}; use one of {', '.join(_READERS)}")
        stat = path.stat()
        return _load_cached(str(path), stat.st_mtime_ns, stat.st_size)

    @property
    def path(self) -> str:
        return self._path

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metric columns in file order (not arch, epoch, cost or index-like columns)."""
        return self._metrics

    @property
    def epochs(self) -> int:
        """The largest epoch in the table; 1 when it has no epoch column."""
        return self._epochs

    @property
    def cost_column(self) -> str | None:
        """The column of seconds per epoch, or None."""
        return self._cost

    def cells(self) -> list[Genotype]:
        """The distinct canonical NB201 cells, in order of first appearance."""
        return [parse_description(text).genotype for text in self.descriptions("nb201")]

    def descriptions(self, family: str | None = None) -> list[str]:
        """The distinct canonical descriptions (of ``family``'s networks only, when given), in
        order of first appearance."""
        return [text for text, name in self._families.items() if family in (None, name)]

    def __contains__(self, network: object) -> bool:
        try:
            return _keys(_network(network))[1] in self._class_epochs
        except ValueError:
            return False

    def metric_range(self, name: str) -> tuple[float, float] | None:
        """``(smallest, largest)`` finite value of metric ``name`` over every row and epoch, or
        None when the table has no such metric or no finite value of it."""
        if name not in self._metrics:
            return None
        column = self._metrics.index(name)
        values = [row[column] for row in self._rows if math.isfinite(row[column])]
        return (min(values), max(values)) if values else None

    def lookup(self, network: Any, epoch: int = 1) -> dict[str, float]:
        """The metrics of ``network`` at ``epoch`` (and the cost, under its column's name).

        ``network``: a family's network, an NB201 ``Genotype`` or a description. The row of the
        exact description wins over another row of its canonical class.

        Raises:
            ValueError: the network, or that epoch of it, is not in the table.
        """
        exact, canonical = _keys(_network(network))
        row = self._exact.get((exact, epoch), self._first.get((canonical, epoch)))
        if row is None:
            if canonical not in self._class_epochs:
                raise ValueError(f"network {exact} (canonical {canonical}) is not in table {self._path}")
            have = sorted(self._class_epochs[canonical])
            raise ValueError(
                f"network {exact} has no row for epoch {epoch!r} in table {self._path} "
                f"(epochs {have[0]}..{have[-1]}: {len(have)} rows)"
            )
        values = dict(zip(self._metrics, self._rows[row]))
        if self._row_costs is not None:
            values[self._cost] = self._row_costs[row]
        return values


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> ResultTable:
    try:
        frame = _READERS[Path(path).suffix.lower()](path)
    except (OSError, ValueError, ImportError) as error:
        raise ValueError(f"table {path} cannot be read: {' '.join(str(error).split())}") from None
    return ResultTable(frame, path=path)


def _numeric(column: pd.Series, name: str, where: str) -> list:
    if not pd.api.types.is_numeric_dtype(column):
        coerced = pd.to_numeric(column, errors="coerce")
        bad = coerced.isna() & column.notna()
        row = int(bad.to_numpy().argmax()) if bad.any() else None
        if row is not None:
            raise ValueError(
                f"{where}: column {name!r} must be numeric, row {row + 1} holds {column.iloc[row]!r}"
            )
        column = coerced
    return column.tolist()


def _epochs(column: pd.Series, where: str) -> list[int]:
    values = _numeric(column, "epoch", where)
    for row, value in enumerate(values):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value == int(value) and value >= 1):
            raise ValueError(f"{where}: column 'epoch' must hold integers >= 1, row {row + 1} holds {value!r}")
    return [int(value) for value in values]


def _costs(column: pd.Series, name: str, where: str) -> list[float]:
    values = _numeric(column, name, where)
    for row, value in enumerate(values):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{where}: cost column {name!r} must hold seconds >= 0, row {row + 1} holds {value!r}")
    return values


def _network(network: object) -> Any:
    """A family's network from itself, an NB201 ``Genotype`` or a description."""
    if isinstance(network, Genotype):
        return NB201Arch(network)
    if isinstance(network, str):
        return parse_description(network)
    family_of(network)  # ValueError for anything else
    return network


def _keys(network: Any) -> tuple[str, str]:
    """The exact and the canonical description of ``network``: its rows' keys."""
    family = family_of(network)
    return family.describe(network), family.describe(family.canonical(network))


def replay(
    network: Any,
    table: ResultTable | str | os.PathLike,
    epochs: int | None = None,
    *,
    width: int = 16,
    cells_per_stage: int = 5,
    score_weights: Mapping[str, float] | None = None,
    score_scales: Mapping[str, Sequence[float]] | None = None,
) -> list[dict[str, Any]]:
    """The reports of ``robnas.search.table_trainable`` for ``network``, epochs 1..``epochs`` (default: all).

    ``network``: a family's network, an NB201 ``Genotype`` or a description (an NB201 cell
    given so is placed in the skeleton of ``width`` and ``cells_per_stage``). Each report holds
    the table's metrics (and cost) for that epoch, ``epoch``, ``params`` (the table's column,
    else ``table_params`` of the network), ``sim_time_s`` (cumulative cost, only with a cost
    column) and ``score`` (only with ``score_weights``; metrics scaled by ``score_scales``, see
    ``robnas.spaces.scalarize``).
    """
    if not isinstance(table, ResultTable):
        table = ResultTable.load(table)
    if isinstance(network, (str, Genotype)):
        macro = {"width": width, "cells_per_stage": cells_per_stage}
        network = row_network(_keys(_network(network))[0], macro)
    epochs = table.epochs if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"max_epochs must be an integer >= 1, got {epochs!r}")
    if epochs > table.epochs:
        detail = "it has no epoch column: one fidelity, epoch 1" if table.epochs == 1 else f"{table.epochs} epochs"
        raise ValueError(f"max_epochs {epochs} exceeds table {table.path} ({detail})")
    params = None if "params" in table.metrics else table_params(network)
    reports, clock = [], 0.0
    for epoch in range(1, epochs + 1):
        report: dict[str, Any] = {**table.lookup(network, epoch), "epoch": epoch}
        if params is not None:
            report["params"] = params
        if table.cost_column is not None:
            clock += report[table.cost_column]
            report["sim_time_s"] = clock
        if score_weights:
            report["score"] = scalarize(report, score_weights, score_scales)
        reports.append(report)
    return reports


#: Config keys the replay trainable reads besides the trial keys of ``robnas.spaces.decode``.
TABLE_KEYS = ("table",)


#: Macro of a replayed trial whose config gives none, for its ``params``: NB201's C=16, N=5.
TABLE_MACRO = {"width": 16, "cells_per_stage": 5}
#: Images a table's network is counted on when the table has no ``params`` column: (C, H, W)
#: and classes (CIFAR-10's; parameters do not depend on H and W).
TABLE_INPUT = ((3, 32, 32), 10)


def table_params(network: Any) -> int:
    """Parameters of ``network`` on ``TABLE_INPUT``, in closed form (its family's counter)."""
    from robnas.trainables._families import network_sizes  # imports torch: only when counting

    input_shape, num_classes = TABLE_INPUT
    return network_sizes(network, input_shape=input_shape, num_classes=num_classes)["params"]


def row_network(description: str, config: Mapping[str, Any]) -> Any:
    """The network of a table row's ``arch`` ``description`` in a trial whose other keys are
    ``config`` (its family's keys besides the network's own, e.g. NB201's ``width``; missing
    ones from ``TABLE_MACRO``)."""
    family = family_of(parse_description(description))
    return _config_network({**{k: v for k, v in config.items() if k not in _network_keys(family)},
                            "family": family.name, "arch": description})


def row_networks(description: str, config: Mapping[str, Any]) -> list[Any]:
    """Every network a table row's ``arch`` ``description`` stands for (see :func:`row_network`):
    an NB201 cell's whole isomorphism class, whose members share the row's results but can
    differ in size; the row's one network in other families."""
    network = row_network(description, config)
    if not isinstance(network, NB201Arch):
        return [network]
    return [dataclasses.replace(network, genotype=cell) for cell in network.genotype.isomorphic_cells()]


def config_reports(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The reports ``robnas.search.table_trainable`` makes for the Tune config ``config``, one
    per epoch (epochs 1..``max_epochs``); raises ValueError for a config it cannot replay.
    With ``robnas.trainables._layout``'s replay checkpoint (the last epoch reported), this is
    the table backend's Ray-free per-epoch driver."""
    table = _config_table(config)
    return replay(
        _config_network(config),
        table,
        config.get("max_epochs"),
        score_weights=config.get("score_weights") or None,
        score_scales=config.get("score_scales") or None,
    )


def _config_table(config: Mapping[str, Any]) -> ResultTable:
    known = {*CONFIG_KEYS, *TABLE_KEYS, *RUNTIME_KEYS}
    unknown = sorted(str(key) for key in config if key not in known)
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(map(repr, unknown))} for the table backend")
    if not config.get("table"):
        raise ValueError("the table backend needs the config key 'table' (path of a results table)")
    return ResultTable.load(config["table"])


def _network_keys(family) -> set[str]:
    """The keys naming a family's network itself (``arch`` and its other forms), not its skeleton."""
    return {*family.alternatives, *(key for others in family.alternatives.values() for key in others)}


def _config_network(config: Mapping[str, Any]) -> Any:
    """The network of a replayed trial's config (its family's keys; NB201's skeleton from
    ``TABLE_MACRO`` when not given)."""
    family = family_named(config.get("family", DEFAULT_FAMILY))
    if not any(key in config for key in _network_keys(family)):
        raise ValueError(f"the config names no network: give 'arch' or all of {', '.join(family.alternatives['arch'])}")
    keys = {key: value for key, value in config.items() if key in family.keys}
    return family.decode(keys, dataset=config.get("dataset", "cifar10"), defaults=TABLE_MACRO)
