"""ASHA and multi-objective ASHA rungs go through a real Tune experiment checkpoint as JSON and
come back on resume (table backend: no training)."""

from __future__ import annotations

import itertools
import json
import os
import pickle

import pandas as pd
import pytest

from robnas.search import resume, run
from robnas.spaces._genotype import OPS, Genotype

pytestmark = pytest.mark.slow  # two Ray searches and two resumes


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    """Three-epoch curves for every cell class; accuracy grows with the cell's convolutions."""
    cells = sorted({Genotype(ops).canonical() for ops in itertools.product(OPS, repeat=6)}, key=Genotype.to_str)
    rows = []
    for i, cell in enumerate(cells):
        convs = sum(op.startswith("nor_conv") for op in cell.ops)
        for epoch in (1, 2, 3):
            clean = 40 + 5 * convs + (i % 7) + 3 * epoch
            rows.append({"arch": cell.to_str(), "epoch": epoch, "clean_acc": clean, "pgd_acc": clean / 2 - i % 5,
                         "cost_s": 1.0})
    path = tmp_path_factory.mktemp("table") / "curves.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _saved_rungs(experiment) -> dict:
    """The scheduler state in Tune's newest callback checkpoint (a pickle this test wrote)."""
    newest = max(experiment.glob("callback-states-*.pkl"))  # named by session start time
    with open(newest, "rb") as file:
        states = pickle.load(file)
    texts = [s["robnas_json"] for s in states.values() if s and "robnas_json" in s]
    assert len(texts) == 1 and all(isinstance(s, dict) for s in states.values() if s)
    return json.loads(texts[0])


@pytest.mark.parametrize("scheduler", ["asha", "moasha"])
def test_rungs_are_json_in_the_experiment_and_come_back_on_resume(ray_session, tmp_path, small_table, scheduler):
    options = dict(backend="table", table=str(small_table), objectives="clean_acc,pgd_acc", scheduler=scheduler,
                   searcher="random", screen=0, num_samples=5, max_epochs=3, grace_period=1, reduction_factor=2,
                   seed=2, storage_path=str(tmp_path), name="s")
    grid = run(**options)
    assert len(grid) == 5 and all(r.error is None for r in grid)
    saved = _saved_rungs(tmp_path / "s")
    if scheduler == "asha":
        recorded = {t for bracket in saved["asha"]["brackets"] for _, rung in bracket for t in rung}
    else:
        recorded = {t for _, rung in saved["multi_objective_asha"]["rungs"] for t in rung}
    assert recorded == {r.metrics["trial_id"] for r in grid}  # every trial reached rung 1

    extended = resume(tmp_path / "s", num_samples=7)
    assert len(extended) == 7 and all(r.error is None for r in extended)
    again = _saved_rungs(tmp_path / "s")
    if scheduler == "asha":
        first_rung = [rung for _, rung in again["asha"]["brackets"][0] if _ == 1][0]
    else:
        first_rung = [rung for m, rung in again["multi_objective_asha"]["rungs"] if m == 1][0]
    assert recorded < set(first_rung) and len(first_rung) == 7  # the old rungs came back, two joined
    assert "TUNE_GLOBAL_CHECKPOINT_S" not in os.environ or os.environ["TUNE_GLOBAL_CHECKPOINT_S"] != "2"
