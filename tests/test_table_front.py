"""A search on a table of results compared with the table's true front and best values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robnas.analysis._cli import _table_line
from robnas.analysis._table_front import table_quality, true_values
from robnas.spaces._genotype import Genotype
from robnas.spaces._objectives import Objective
from robnas.trainables._network import nb201_param_count
from robnas.trainables._table import ResultTable

CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|skip_connect~1|avg_pool_3x3~2|",
]
OBJECTIVES = (Objective("acc", "max"), Objective("params", "min"))


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"arch": CELLS, "acc": [90.0, 80.0, 50.0]}).to_csv(path, index=False)
    return path


def test_true_values_count_the_parameters_of_each_cell(table):
    values = true_values(ResultTable.load(table), OBJECTIVES)
    expected = {(acc, float(nb201_param_count(Genotype.from_str(c)))) for c, acc in zip(CELLS, (90.0, 80.0, 50.0))}
    assert {tuple(row) for row in values} == expected
    assert true_values(ResultTable.load(table), (Objective("nope", "max"),)) is None


def test_found_front_as_a_fraction_of_the_true_front_and_the_regret(table):
    truth = true_values(ResultTable.load(table), OBJECTIVES)
    reference = np.array([40.0, 1.01 * truth[:, 1].max()])
    settings = {"backend": "table", "table": str(table)}
    whole = table_quality(settings, OBJECTIVES, reference, truth)
    assert whole["hypervolume_fraction"] == pytest.approx(1.0)
    assert whole["regret"] == {"acc": 0.0, "params": 0.0}
    worst = truth[np.argmin(truth[:, 0])][np.newaxis]  # the smallest, least accurate cell alone
    part = table_quality(settings, OBJECTIVES, reference, worst)
    assert 0 < part["hypervolume_fraction"] < 1
    assert part["regret"]["acc"] == pytest.approx(40.0) and part["regret"]["params"] == 0.0
    line = _table_line(part)
    assert "hypervolume fraction of the table's true front 0." in line and "regret acc 40" in line


def test_searches_not_on_a_table_have_no_table_quality(table, tmp_path):
    found = np.zeros((1, 2))
    assert table_quality({"backend": "torch"}, OBJECTIVES, [0, 1], found) is None
    assert table_quality({"backend": "table", "table": str(tmp_path / "gone.csv")}, OBJECTIVES, [0, 1], found) is None
    assert _table_line(None) == ""


def test_a_row_stands_for_every_member_of_its_isomorphism_class(tmp_path):
    """NB201's class rule is syntactic: two parallel 3x3 convs of the input and one conv reached
    by two paths share a row. The search can draw the smaller member, so the true front has it."""
    two_convs = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|nor_conv_3x3~0|nor_conv_3x3~1|skip_connect~2|"
    one_conv = "|nor_conv_3x3~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    assert Genotype.from_str(one_conv).canonical() == Genotype.from_str(two_convs)
    members = Genotype.from_str(one_conv).isomorphic_cells()
    assert members[0] == Genotype.from_str(two_convs) and Genotype.from_str(one_conv) in members
    assert len(set(members)) == len(members) == 7
    path = tmp_path / "t.csv"
    pd.DataFrame({"arch": [two_convs], "acc": [70.0]}).to_csv(path, index=False)
    values = true_values(ResultTable.load(path), OBJECTIVES)
    sizes = {float(nb201_param_count(m)) for m in members}
    assert {tuple(row) for row in values} == {(70.0, size) for size in sizes}
    assert min(sizes) == nb201_param_count(Genotype.from_str(one_conv)) < nb201_param_count(Genotype.from_str(two_convs))
    reference = np.array([60.0, 1.01 * max(sizes)])
    settings = {"backend": "table", "table": str(path)}
    canonical_only = np.array([[70.0, float(nb201_param_count(Genotype.from_str(two_convs)))]])
    assert table_quality(settings, OBJECTIVES, reference, canonical_only)["hypervolume_fraction"] < 1.0
    smallest = np.array([[70.0, min(sizes)]])
    assert table_quality(settings, OBJECTIVES, reference, smallest)["hypervolume_fraction"] == pytest.approx(1.0)
