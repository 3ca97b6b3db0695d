"""``score_scales``: the range of each weighted objective over a search's space.

The scalarised ``score`` of asha, hyperband and tpe weighs every objective scaled to [0, 1]
by its range (``robnas.spaces.scalarize``), so that ``robust_acc=0.5,params=-0.5`` means half
accuracy, half size, and not "minimise parameters" (millions against fractions). Ranges:
accuracies and sparsity are fractions, [0, 1]; ``params``, ``macs`` and ``sparse_macs`` run
from the cheapest to the dearest network of the space (its family's ``size_range``;
``macs`` down to ``sparse_macs``' low end when a dynamic schedule can remove channels); a
results table's columns from their smallest to their largest value in the table. An objective
with no range known before training (``epoch_time_s``) enters the score unscaled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from robnas.spaces._family import DEFAULT_FAMILY
from robnas.spaces._genotype import EDGE_KEYS, Genotype
from robnas.spaces._sparsity import DYNAMIC_SCHEDULES
from robnas.trainables._families import size_range
from robnas.trainables._table import row_networks, table_params

__all__ = ["FRACTIONS", "edge_ops_of", "score_scales", "space_size_ranges", "values_of"]

#: Objectives that are fractions: scaled by [0, 1], i.e. as they are.
FRACTIONS: tuple[str, ...] = ("clean_acc", "robust_acc", "sparsity")


def score_scales(
    weights: Mapping[str, float],
    *,
    space: Mapping[str, Any],
    fixed: Mapping[str, Any],
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    table=None,
) -> dict[str, list[float]]:
    """Objective name -> ``[low, high]`` for every weighted objective with a known range.

    ``space``: the searched keys (Tune domains); ``fixed``: every other trial key's value.
    Trained trials give ``input_shape`` (C, H, W) and ``num_classes`` of their data set; a
    replayed search gives its ``ResultTable`` as ``table``.
    """
    values = lambda key: values_of(key, space, fixed)  # noqa: E731
    scales: dict[str, tuple[float, float]] = {}
    sizes: dict[str, tuple[float, float]] | None = None
    for name in weights:
        if table is not None and (column := table.metric_range(name)) is not None:
            scales[name] = column
        elif table is not None and name == "params":
            counts = [table_params(network) for text in table.descriptions() for network in row_networks(text, fixed)]
            scales[name] = (float(min(counts)), float(max(counts)))
        elif name in FRACTIONS:
            scales[name] = (0.0, 1.0)
        elif table is None and name in ("params", "macs", "sparse_macs"):
            if sizes is None:
                sizes = space_size_ranges(space, fixed, input_shape=input_shape, num_classes=num_classes)
                smallest, largest = sizes["macs"]
                sizes["sparse_macs"] = (smallest * (1.0 - max(float(v) for v in values("sparsity"))), largest)
            scales[name] = sizes[name]
            if name == "macs" and _removes_channels(space, fixed):
                scales[name] = (sizes["sparse_macs"][0], sizes["macs"][1])
    return {name: [low, high] for name, (low, high) in scales.items() if high > low}


def space_size_ranges(
    space: Mapping[str, Any], fixed: Mapping[str, Any], *, input_shape: tuple[int, int, int], num_classes: int
) -> dict[str, tuple[float, float]]:
    """``{"params", "macs"}`` -> ``(smallest, largest)`` over the networks of ``space`` (Tune
    domains) completed by ``fixed``, of whichever family (or families) the space builds."""
    given = lambda key: values_of(key, space, fixed) if key in space or key in fixed else None  # noqa: E731
    ranges = [size_range(family, given, input_shape=input_shape, num_classes=num_classes)
              for family in given("family") or [DEFAULT_FAMILY]]
    return {name: (min(r[name][0] for r in ranges), max(r[name][1] for r in ranges)) for name in ("params", "macs")}
def _removes_channels(space: Mapping[str, Any], fixed: Mapping[str, Any]) -> bool:
    """Whether a trial of the space can move whole channels, and so report fewer ``macs``."""
    values = lambda key: values_of(key, space, fixed) if key in space or key in fixed else []  # noqa: E731
    return (any(s in DYNAMIC_SCHEDULES for s in values("sparsity_schedule"))
            and "channel" in values("sparsity_granularity"))


def values_of(key: str, space: Mapping[str, Any], fixed: Mapping[str, Any]) -> Sequence[Any]:
    """The values ``key`` takes: a choice's categories, a numeric domain's bounds, or the fixed value."""
    if key not in space:
        return [fixed[key]]
    domain = space[key]
    if not hasattr(domain, "sample"):  # a constant of the space (e.g. ``family``)
        return [domain]
    if hasattr(domain, "categories"):
        return list(domain.categories)
    if hasattr(domain, "lower") and hasattr(domain, "upper"):
        return [domain.lower, domain.upper]
    return [domain]


def edge_ops_of(space: Mapping[str, Any], fixed: Mapping[str, Any]) -> list[Sequence[str]]:
    """The ops each of the six edges can take."""
    if any(key in space or key in fixed for key in EDGE_KEYS):
        return [values_of(key, space, fixed) for key in EDGE_KEYS]
    return [[op] for op in Genotype.from_str(fixed["arch"]).ops]
