"""The scalarised score weighs objectives scaled by their range over the space, so that its
weights compare accuracies (fractions) with sizes (millions of parameters)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pandas as pd
import pytest

from robnas.search._run import _param_space
from robnas.search._settings import SearchSettings
from robnas.spaces import DEFAULT_ARCH, scalarize
from robnas.spaces._genotype import OPS, Genotype
from robnas.trainables._cost_range import size_ranges
from robnas.trainables._counting import count_macs, count_parameters
from robnas.trainables._network import build_network, nb201_mac_count
from robnas.trainables._table import ResultTable, config_reports


def test_scalarize_scales_each_weighted_metric_by_its_range():
    metrics = {"robust_acc": 0.6, "params": 300_000.0, "epoch_time_s": 2.0}
    scales = {"robust_acc": [0.0, 1.0], "params": [100_000.0, 500_000.0]}
    score = scalarize(metrics, {"robust_acc": 0.5, "params": -0.5, "epoch_time_s": -0.1}, scales)
    assert score == pytest.approx(0.5 * 0.6 - 0.5 * 0.5 - 0.1 * 2.0)
    assert scalarize(metrics, {"params": 1.0}) == 300_000.0  # no range: as reported
    assert scalarize(metrics, {"params": 1.0}, {"params": [5.0, 5.0]}) == 300_000.0  # empty range


def test_the_closed_form_mac_count_is_the_counted_one():
    rng = random.Random(0)
    for _ in range(25):
        ops = [rng.choice(OPS) for _ in range(6)]
        shape = {"width": rng.choice([2, 4, 8]), "cells_per_stage": rng.choice([1, 2]),
                 "in_channels": rng.choice([1, 3]), "num_classes": rng.choice([2, 10])}
        size = (rng.randint(3, 12), rng.randint(3, 12))
        network = build_network(ops, **shape)
        assert nb201_mac_count(ops, input_size=size, **shape) == count_macs(network, (shape["in_channels"], *size))


def test_size_ranges_bound_every_network_of_the_space_and_are_reached():
    edge_ops = [OPS, ("skip_connect", "nor_conv_1x1"), OPS, ("nor_conv_3x3",), OPS, ("none", "avg_pool_3x3")]
    widths, cells = (4, 8), (1, 2)
    ranges = size_ranges(edge_ops, widths, cells, input_shape=(1, 8, 8), num_classes=10, max_sparsity=0.9)
    seen = {"params": [], "macs": []}
    for ops in itertools.product(*edge_ops):
        if random.Random(hash(ops)).random() > 0.05:
            continue
        for width, n in itertools.product(widths, cells):
            network = build_network(ops, width=width, cells_per_stage=n, in_channels=1, num_classes=10)
            seen["params"].append(count_parameters(network))
            seen["macs"].append(count_macs(network, (1, 8, 8)))
    for name in ("params", "macs"):
        low, high = ranges[name]
        assert low <= min(seen[name]) and max(seen[name]) <= high
    cheapest = build_network(["none", "skip_connect", "none", "nor_conv_3x3", "none", "none"], width=4,
                             cells_per_stage=1, in_channels=1, num_classes=10)
    dearest = build_network(["nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3",
                             "avg_pool_3x3"], width=8, cells_per_stage=2, in_channels=1, num_classes=10)
    assert ranges["params"] == (count_parameters(cheapest), count_parameters(dearest))
    assert ranges["sparse_macs"] == pytest.approx((0.1 * ranges["macs"][0], ranges["macs"][1]))


def test_a_trained_search_records_the_range_of_each_weighted_objective():
    settings = SearchSettings(space="cell,macro,sparsity", objectives="robust_acc,params,epoch_time_s")
    space, record = _param_space(settings)
    scales = record["score_scales"]
    assert space["score_scales"] == scales
    assert scales["robust_acc"] == [0.0, 1.0] and "epoch_time_s" not in scales  # no range before training
    low, high = scales["params"]
    widths, cells = space["width"].categories, space["cells_per_stage"].categories
    smallest = build_network(["none"] * 6, width=min(widths), cells_per_stage=min(cells), in_channels=1, num_classes=10)
    largest = build_network(["nor_conv_3x3"] * 6, width=max(widths), cells_per_stage=max(cells), in_channels=1,
                            num_classes=10)
    assert (low, high) == (count_parameters(smallest), count_parameters(largest))


@pytest.fixture()
def accuracy_and_params_table(tmp_path):
    """Robust accuracy in percent that grows with the cell's convolutions, as in NB201 tables."""
    rng = np.random.default_rng(0)
    cells = sorted({Genotype(ops).canonical().to_str() for ops in itertools.product(OPS, repeat=6)})
    rows = []
    for cell in cells:
        convs = sum(op.startswith("nor_conv") for op in Genotype.from_str(cell).ops)
        rows.append({"arch": cell, "epoch": 1, "pgd_eps8_acc": 20 + 4 * convs + rng.uniform(0, 3)})
    path = tmp_path / "table.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_equal_weights_on_accuracy_and_params_do_not_mean_minimise_params(accuracy_and_params_table):
    """Objectives ``pgd_eps8_acc,params`` with the default weights +0.5 / -0.5: unscaled, the
    score is about -0.5 x params and its best cell is the smallest; scaled, every score lies in
    [-0.5, 0.5] and the best cell trades accuracy for size."""
    settings = SearchSettings(backend="table", table=str(accuracy_and_params_table), objectives="pgd_eps8_acc,params")
    space, record = _param_space(settings)
    table = ResultTable.load(accuracy_and_params_table)
    assert record["score_scales"]["pgd_eps8_acc"] == list(table.metric_range("pgd_eps8_acc"))
    constants = {key: value for key, value in space.items() if not hasattr(value, "sample")}
    reports = {cell.to_str(): config_reports({**constants, "arch": cell.to_str()})[-1] for cell in table.cells()}
    scores = {cell: report["score"] for cell, report in reports.items()}
    assert all(-0.5 <= score <= 0.5 for score in scores.values())
    best = max(scores, key=scores.get)
    fewest = min(report["params"] for report in reports.values())
    raw = {cell: scalarize(report, settings.score_weights) for cell, report in reports.items()}
    assert reports[max(raw, key=raw.get)]["params"] == fewest < reports[best]["params"]
    assert reports[best]["pgd_eps8_acc"] > np.median([r["pgd_eps8_acc"] for r in reports.values()])


def test_macs_range_reaches_down_to_sparse_macs_when_channels_can_be_removed():
    from ray import tune

    from robnas.search._score_scales import score_scales

    fixed = {"arch": DEFAULT_ARCH, "cells_per_stage": 1, "sparsity": 0.9, "sparsity_granularity": "channel"}
    widths = {"width": tune.choice([4, 8])}
    shape = {"input_shape": (1, 8, 8), "num_classes": 10}
    weights = {"macs": -1.0, "sparse_macs": -1.0}
    static = score_scales(weights, space={**widths, "sparsity_schedule": tune.choice(["oneshot", "gradual"])}, fixed=fixed, **shape)
    dynamic = score_scales(weights, space={**widths, "sparsity_schedule": tune.choice(["oneshot", "rigl"])}, fixed=fixed, **shape)
    assert static["macs"][0] > static["sparse_macs"][0]
    assert dynamic["macs"] == [static["sparse_macs"][0], static["macs"][1]]
    unstructured = score_scales(weights, space={**widths, "sparsity_schedule": tune.choice(["rigl"])},
                                fixed={**fixed, "sparsity_granularity": "unstructured"}, **shape)
    assert unstructured["macs"] == static["macs"]
