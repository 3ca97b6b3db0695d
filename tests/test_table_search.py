"""Searches on the table backend: every scheduler and searcher, screening, and the simulator
that drives a searcher without Ray launching what Ray launches."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robnas.search import run
from robnas.search._settings import SearchSettings
from robnas.search._simulate import simulate
from robnas.search.cli import main
from robnas.spaces._genotype import EDGE_KEYS, OPS, Genotype
from robnas.spaces._keys import config_key
from robnas.trainables._table import ResultTable

EPOCHS = 3


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    """Learning curves of every cell class (the whole space): accuracies that grow with the
    epoch and the cell's convolutions, plus a fixed per-cell offset."""
    rng = np.random.default_rng(0)
    cells = {Genotype(ops).canonical() for ops in itertools.product(OPS, repeat=6)}
    rows = []
    for cell in sorted(cells, key=lambda c: c.to_str()):
        convs = sum(op.startswith("nor_conv") for op in cell.ops)
        offset = rng.uniform(0, 5)
        for epoch in range(1, EPOCHS + 1):
            clean = 40 + 5 * convs + offset + 3 * epoch
            rows.append({"arch": cell.to_str(), "epoch": epoch, "clean_acc": clean,
                         "pgd_acc": clean / 2 - offset, "cost_s": 1.0 + convs})
    path = tmp_path_factory.mktemp("table") / "curves.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _launch_order(experiment: Path) -> list[str]:
    """Cells (``config_key`` of the edges) in the order the search's (screening) searcher launched
    them. Not the launch's own key: that holds what differs from the search's defaults, so the
    default cell's is empty."""
    state = json.loads(max(experiment.glob("robnas-searcher-state-*.json")).read_text())
    launched = sorted(state["launched"].values(), key=lambda launch: launch["number"])
    return [config_key({k: launch["config"][k] for k in EDGE_KEYS}) for launch in launched]


@pytest.mark.parametrize(
    ("scheduler", "searcher", "screen"),
    [("moasha", "motpe", 0), ("asha", "tpe", 0), ("hyperband", "random", 0), ("fifo", "nsga2", 0),
     ("asha", "random", 8), ("moasha", "nsga2", 8)],
)
def test_every_scheduler_and_searcher_runs_on_the_table(ray_session, tmp_path, table_path, scheduler, searcher, screen):
    grid = run(backend="table", table=str(table_path), objectives="clean_acc,pgd_acc", scheduler=scheduler,
               searcher=searcher, screen=screen, num_samples=6, storage_path=str(tmp_path), name="t", seed=1)
    table = ResultTable.load(table_path)
    assert len(grid) == 6 and all(r.error is None for r in grid)
    for result in grid:
        epoch = result.metrics["epoch"]
        expected = table.lookup(Genotype.from_config(result.config), epoch)
        assert result.metrics["clean_acc"] == expected["clean_acc"]
        assert result.metrics["pgd_acc"] == expected["pgd_acc"]
        assert result.metrics["sim_time_s"] == pytest.approx(sum(
            table.lookup(Genotype.from_config(result.config), e)["cost_s"] for e in range(1, epoch + 1)))
    keys = {Genotype.from_config(r.config).canonical() for r in grid}
    assert len(keys) == 6  # never an isomorph twice


@pytest.mark.parametrize("objectives", ["pgd_acc", "clean_acc,pgd_acc"])
def test_simulated_search_launches_what_ray_launches(ray_session, tmp_path, table_path, objectives):
    options = dict(backend="table", table=str(table_path), objectives=objectives, scheduler="fifo",
                   max_concurrent=1, num_samples=8, seed=3)
    settings = SearchSettings(**options)
    assert settings.screen > 1  # the default strategy screens
    simulated = [config_key({k: c[k] for k in EDGE_KEYS}) for c, _ in simulate(settings)]
    grid = run(storage_path=str(tmp_path), name="ray", **options)
    assert len(grid) == 8 and all(r.error is None for r in grid)
    assert _launch_order(tmp_path / "ray") == simulated and len(set(simulated)) == 8


def test_simulate_reports_the_table_values(table_path):
    settings = SearchSettings(backend="table", table=str(table_path), objectives=("clean_acc",),
                              screen=0, num_samples=5, seed=0)
    table = ResultTable.load(table_path)
    trials = simulate(settings)
    assert len(trials) == 5
    for config, reports in trials:
        assert [r["epoch"] for r in reports] == [1, 2, 3]
        cell = Genotype.from_config(config)
        assert [r["clean_acc"] for r in reports] == [table.lookup(cell, e)["clean_acc"] for e in (1, 2, 3)]
    with pytest.raises(ValueError, match="reports_of"):
        simulate(SearchSettings(num_samples=1))


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_crafted_pickle_in_the_searcher_state_never_runs_on_resume(ray_session, tmp_path, table_path, capsys):
    import hashlib
    import pickle

    run(backend="table", table=str(table_path), objectives="clean_acc,pgd_acc", num_samples=3,
        storage_path=str(tmp_path), name="t", seed=1, screen=4)
    experiment = tmp_path / "t"
    marker = tmp_path / "pwned"
    state = max(experiment.glob("robnas-searcher-state-*.json"))
    state.write_bytes(pickle.dumps(_Payload(marker)))
    (experiment / "searcher-state-2099-01-01_00-00-00.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in experiment.rglob("*") if p.is_file()}
    assert main(["resume", str(experiment), "--num-samples", "5"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("robnas: error: ") and state.name in error and "\n" not in error
    assert not marker.exists()
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in experiment.rglob("*") if p.is_file()}
    assert after == before


def test_analyze_compares_a_table_search_with_the_table(ray_session, tmp_path, table_path, capsys):
    run(backend="table", table=str(table_path), objectives="clean_acc,pgd_acc", scheduler="fifo",
        searcher="random", num_samples=4, storage_path=str(tmp_path), name="t", seed=1)
    assert main(["analyze", str(tmp_path / "t")]) == 0
    line = capsys.readouterr().out
    assert "hypervolume fraction of the table's true front 0." in line and "regret clean_acc" in line
    summary = json.loads((tmp_path / "t" / "analysis" / "summary.json").read_text())
    assert 0 < summary["table_front"]["hypervolume_fraction"] < 1
    assert summary["table_front"]["regret"]["clean_acc"] >= 0
