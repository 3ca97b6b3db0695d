"""``SizeLimits``: the largest network a search may train (``--max-params``, ``--max-macs``).

A configuration's size is computed in closed form from its network (decoded by its
architecture family) and the data set's input shape and classes (``network_sizes``); no
network is built. Parameters are the dense network's (pruning does not shrink the limit's
count); MACs are per image. A replayed table's ``params`` column, when it has one, gives the
parameters of its cells instead (in the table's units), and its networks are NB201's on
3x32x32 images with 10 classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from robnas.search._score_scales import space_size_ranges
from robnas.spaces._family import DEFAULT_FAMILY, FAMILY_KEYS, family_named
from robnas.spaces._resolve import ALTERNATIVES
from robnas.trainables._families import network_sizes

__all__ = ["LIMITED", "SizeLimits", "size_limits"]

#: Size -> the settings field that limits it.
LIMITED = {"params": "max_params", "macs": "max_macs"}
#: Size -> its name in messages.
SHOWN = {"params": "parameters", "macs": "MACs"}
#: Input shape (C, H, W) and classes of a replayed table's networks (NAS-Bench-201, CIFAR-10).
TABLE_INPUT = ((3, 32, 32), 10)


@dataclass(frozen=True)
class SizeLimits:
    """``limits``: size name (``params``, ``macs``) -> the most allowed. ``fixed``: the keys every
    trial shares that shape its network (``family``, the family's keys, ``dataset``). ``input_shape``:
    (C, H, W) of the data set's images. ``table``: a results table with a ``params`` column."""

    limits: Mapping[str, float]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10
    table: str | None = None

    def sizes(self, config: Mapping[str, Any]) -> dict[str, float]:
        """``{"params": ..., "macs": ...}`` of the network ``config`` (searched keys) trains."""
        merged = _completed({**self.fixed, **config})
        counted = network_sizes(_network(merged), input_shape=self.input_shape, num_classes=self.num_classes)
        sizes: dict[str, float] = {}
        if "params" in self.limits:
            column = self._table_params(_network(merged)) if self.table is not None else None
            sizes["params"] = column if column is not None else float(counted["params"])
        if "macs" in self.limits:
            sizes["macs"] = float(counted["macs"])
        return sizes

    def excess(self, config: Mapping[str, Any]) -> str | None:
        """Why ``config`` is too large (``"params 3,072 > max_params 2,000"``), or None if it fits."""
        for name, size in self.sizes(config).items():
            if size > self.limits[name]:
                return f"{name} {_count(size)} > {LIMITED[name]} {_count(self.limits[name])}"
        return None

    def fits(self, config: Mapping[str, Any]) -> bool:
        return self.excess(config) is None

    def check_reachable(self, space: Mapping[str, Any], points: Sequence[Mapping[str, Any]] = ()) -> None:
        """ValueError if even the cheapest network of ``space`` (Tune domains), or of a point's
        completions, is above a limit."""
        for number, point in enumerate([None, *points]):
            smallest = self._smallest(space, point or {})
            for name, size in smallest.items():
                if size > self.limits[name]:
                    flag = "--" + LIMITED[name].replace("_", "-")
                    limit = f"{flag} {_count(self.limits[name])}"
                    raise ValueError(
                        f"no network of the space fits {limit}: the smallest has {_count(size)} {SHOWN[name]}" if point is None
                        else f"point {number} is too large for {limit}: its smallest network has {_count(size)} {SHOWN[name]}"
                    )

    def _smallest(self, space: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, float]:
        free = {key: domain for key, domain in space.items() if key not in point}
        fixed = _completed({**self.fixed, **point})
        ranges = space_size_ranges(free, fixed, input_shape=self.input_shape, num_classes=self.num_classes)
        smallest = {name: ranges[name][0] for name in self.limits}
        column = self._table_column()
        if "params" in self.limits and column is not None:
            network_fixed = not any(key in free for key in ("arch", *ALTERNATIVES["arch"]))
            params = self._table_params(_network(fixed)) if network_fixed else None
            smallest["params"] = params if params is not None else column[0]
        return smallest

    def _table_column(self) -> tuple[float, float] | None:
        """The smallest and largest of the table's ``params`` column (None: no table or column)."""
        if self.table is None:
            return None
        from robnas.trainables._table import ResultTable

        return ResultTable.load(self.table).metric_range("params")

    def _table_params(self, network: Any) -> float | None:
        """The table's ``params`` of ``network`` (None: no table, column or row)."""
        if self.table is None:
            return None
        from robnas.trainables._table import ResultTable

        table = ResultTable.load(self.table)
        if "params" not in table.metrics:
            return None
        try:
            return float(table.lookup(network, 1)["params"])
        except ValueError:
            return None


def size_limits(settings, resolved: Mapping[str, Any]) -> SizeLimits | None:
    """The ``SizeLimits`` of a search's ``settings`` (None without ``max_params`` and ``max_macs``),
    given its ``resolved`` trial keys (``robnas.json``'s ``resolved_trial``)."""
    limits = {name: getattr(settings, field) for name, field in LIMITED.items() if getattr(settings, field) is not None}
    if not limits:
        return None
    if settings.backend == "table":
        (input_shape, num_classes), table = TABLE_INPUT, settings.result_table().path
    else:
        from robnas.trainables._data import load_dataset

        data = load_dataset(settings.dataset, settings.data_dir)  # cached in this process
        input_shape, num_classes, table = tuple(data.x_train.shape[1:]), data.num_classes, None
    keep = {key: resolved[key] for key in (*FAMILY_KEYS, "family", "dataset") if key in resolved}
    return SizeLimits(limits, keep, input_shape=input_shape, num_classes=int(num_classes), table=table)


def _completed(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` without a key whose other form it holds (``arch`` beside edge keys)."""
    return {key: value for key, value in config.items()
            if not any(other in config for other in ALTERNATIVES.get(key, ()))}


def _network(config: Mapping[str, Any]):
    """The network description of a config's architecture keys (keys not given: the data set's
    defaults, CIFAR-10's when the config names no data set)."""
    family = family_named(config.get("family", DEFAULT_FAMILY))
    keys = {key: value for key, value in config.items() if key in family.keys}
    return family.decode(keys, dataset=config.get("dataset", "cifar10"))


def _count(value: float) -> str:
    """``1,234,567`` for a count, ``0.129306`` for a table's count in millions."""
    return f"{value:,.0f}" if abs(value) >= 1 else f"{value:.6g}"
