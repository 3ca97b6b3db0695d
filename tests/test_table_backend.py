"""The table backend: loading results tables and replaying them as a Ray Tune trainable."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from robnas.spaces._genotype import Genotype
from robnas.trainables._network import nb201_param_count
from robnas.spaces import default_direction as metric_mode
from robnas.search import table_trainable
from robnas.trainables._table import ResultTable, replay

ROBBENCH = "nasrobbench201_cifar10.csv"
ROBBENCH_METRICS = (
    "clean_acc", "fgsm_eps3_acc", "pgd_eps3_acc", "fgsm_eps8_acc", "pgd_eps8_acc", "autoattack_eps8_acc",
)
A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
B = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
# Isomorphic cells (same NB201 class, neither is the canonical form): conv3x3 0->3 and
# avg_pool 0->2 then conv1x1 2->3, with a skip_connect moved along the path.
ISO_1 = "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|none~0|skip_connect~1|nor_conv_1x1~2|"
ISO_2 = "|skip_connect~0|+|none~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "table.csv") -> Path:
    path = tmp_path / name
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _curves() -> pd.DataFrame:
    """Two cells x 3 epochs with a cost column; values are known functions of (cell, epoch)."""
    rows = []
    for k, arch in enumerate((A, B)):
        for epoch in (1, 2, 3):
            rows.append({
                "arch": arch, "epoch": epoch, "clean_acc": 0.5 + 0.1 * epoch + 0.01 * k,
                "robust_acc": 0.2 + 0.05 * epoch, "cost_s": 1.5 * (k + 1) + epoch,
            })
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def robbench(shared_data) -> ResultTable:
    return ResultTable.load(shared_data / ROBBENCH)


def test_isomorphs_fixture_is_one_class():
    canonical = Genotype.from_str(ISO_1).canonical()
    assert canonical == Genotype.from_str(ISO_2).canonical()
    assert len({ISO_1, ISO_2, canonical.to_str()}) == 3


def test_nasrobbench201_loads_with_its_metrics_and_6466_classes(robbench, shared_data):
    assert robbench.metrics == ROBBENCH_METRICS  # nb201_index and uid are index-like
    assert robbench.epochs == 1 and robbench.cost_column is None
    cells = robbench.cells()
    assert len(cells) == 6466 == len(set(cells))
    assert all(cell == cell.canonical() for cell in cells)
    assert robbench.path == str((shared_data / ROBBENCH).resolve())


def test_nasrobbench201_lookup_of_any_member_gives_the_trained_representative(robbench, shared_data):
    frame = pd.read_csv(shared_data / ROBBENCH)
    trained = frame[frame.nb201_index == frame.uid]  # one trained row per class
    representatives = ResultTable(trained)
    assert len(representatives.cells()) == 6466
    by_index = frame.set_index("nb201_index")
    for _, row in frame.iloc[::97].iterrows():
        expected = by_index.loc[row.uid, list(ROBBENCH_METRICS)].to_dict()
        assert representatives.lookup(row.arch) == expected
        assert robbench.lookup(Genotype.from_str(row.arch)) == expected


def test_lookup_of_an_isomorph_not_in_the_table(tmp_path):
    table = ResultTable.load(_write(tmp_path, pd.DataFrame({"arch": [ISO_1, A], "clean_acc": [0.25, 0.5]})))
    assert ISO_2 in table and Genotype.from_str(ISO_2) in table and B not in table
    assert table.lookup(ISO_2) == {"clean_acc": 0.25}
    assert table.lookup(Genotype.from_str(A), 1) == {"clean_acc": 0.5}


def test_differing_values_in_a_class_prefer_the_exact_row_then_file_order():
    table = ResultTable(pd.DataFrame({"arch": [ISO_1, ISO_2, ISO_1], "clean_acc": [1.0, 2.0, 3.0]}))
    assert table.lookup(ISO_1) == {"clean_acc": 1.0}
    assert table.lookup(ISO_2) == {"clean_acc": 2.0}
    assert table.lookup(Genotype.from_str(ISO_1).canonical()) == {"clean_acc": 1.0}


def test_metric_modes_follow_the_name():
    for name in ("clean_acc", "pgd_eps8_acc", "sparsity", "score"):
        assert metric_mode(name) == "max"
    for name in ("epoch_time_s", "cost_s", "train_loss", "params", "macs", "sparse_macs", "flops", "cost"):
        assert metric_mode(name) == "min"


def test_index_like_columns_are_not_metrics():
    frame = pd.DataFrame({"Unnamed: 0": [0], "uid": [3], "nb201_index": [3], "run_id": [1], "arch": [A], "acc": [1]})
    assert ResultTable(frame).metrics == ("acc",)


def test_missing_arch_column(tmp_path):
    path = _write(tmp_path, pd.DataFrame({"cell": [A], "clean_acc": [0.5]}))
    with pytest.raises(ValueError, match=r"table .*table\.csv has no 'arch' column"):
        ResultTable.load(path)


def test_non_numeric_metric_names_column_and_row(tmp_path):
    path = _write(tmp_path, pd.DataFrame({"arch": [A, B], "clean_acc": ["0.5", "high"]}))
    with pytest.raises(ValueError, match=r"column 'clean_acc' must be numeric, row 2 holds 'high'"):
        ResultTable.load(path)


def test_malformed_arch_names_the_row(tmp_path):
    path = _write(tmp_path, pd.DataFrame({"arch": [A, "|conv~0|+|"], "clean_acc": [0.5, 0.6]}))
    with pytest.raises(ValueError, match=r"row 2: .*malformed NB201 cell string"):
        ResultTable.load(path)


def test_bad_epoch_and_cost_values(tmp_path):
    with pytest.raises(ValueError, match=r"'epoch' must hold integers >= 1, row 1 holds 0"):
        ResultTable(pd.DataFrame({"arch": [A], "epoch": [0], "acc": [1.0]}))
    with pytest.raises(ValueError, match=r"'cost_s' must hold seconds >= 0, row 1 holds -1"):
        ResultTable(pd.DataFrame({"arch": [A], "cost_s": [-1.0], "acc": [1.0]}))
    with pytest.raises(ValueError, match="unknown format '.txt'"):
        ResultTable.load(_write(tmp_path, pd.DataFrame({"arch": [A]}), "table.csv").rename(tmp_path / "t.txt"))
    with pytest.raises(ValueError, match="does not exist"):
        ResultTable.load(tmp_path / "missing.csv")


def test_unknown_cell_is_a_clear_error(tmp_path):
    path = _write(tmp_path, pd.DataFrame({"arch": [A], "clean_acc": [0.5]}))
    table = ResultTable.load(path)
    with pytest.raises(ValueError, match=rf"network {re.escape(B)} .* is not in table .*table\.csv"):
        table.lookup(B)
    with pytest.raises(ValueError, match="is not in table"):
        replay(B, table)


def test_learning_curves_and_simulated_time(tmp_path):
    table = ResultTable.load(_write(tmp_path, _curves()))
    assert table.metrics == ("clean_acc", "robust_acc") and table.epochs == 3 and table.cost_column == "cost_s"
    reports = replay(B, table)
    assert [r["epoch"] for r in reports] == [1, 2, 3]
    assert [r["clean_acc"] for r in reports] == [0.5 + 0.1 * e + 0.01 for e in (1, 2, 3)]
    assert [r["cost_s"] for r in reports] == [4.0, 5.0, 6.0]
    assert [r["sim_time_s"] for r in reports] == [4.0, 9.0, 15.0]
    assert [r["epoch"] for r in replay(A, table, 2)] == [1, 2]
    with pytest.raises(ValueError, match=r"max_epochs 4 exceeds table .*\(3 epochs\)"):
        replay(A, table, 4)
    with pytest.raises(ValueError, match="no row for epoch 4"):
        table.lookup(A, 4)


def test_epoch_time_s_is_a_cost_column_and_cost_s_wins():
    frame = pd.DataFrame({"arch": [A], "epoch_time_s": [2.5], "acc": [1.0]})
    table = ResultTable(frame)
    assert table.cost_column == "epoch_time_s" and table.metrics == ("acc",)
    assert replay(A, table)[0]["sim_time_s"] == 2.5
    both = ResultTable(frame.assign(cost_s=[7.0]))
    assert both.cost_column == "cost_s" and both.metrics == ("epoch_time_s", "acc")


def test_without_epoch_column_there_is_one_fidelity(robbench):
    assert [r["epoch"] for r in replay(A, robbench)] == [1]
    assert "sim_time_s" not in replay(A, robbench)[0]
    with pytest.raises(ValueError, match="no epoch column: one fidelity, epoch 1"):
        replay(A, robbench, 2)


def test_params_are_counted_unless_the_table_has_them(robbench):
    full = replay(A, robbench)[0]["params"]
    assert full == nb201_param_count(Genotype.from_str(A), width=16, cells_per_stage=5, in_channels=3, num_classes=10)
    small = replay(A, robbench, width=8, cells_per_stage=1)[0]["params"]
    assert small == nb201_param_count(Genotype.from_str(A), width=8, cells_per_stage=1) < full
    own = ResultTable(pd.DataFrame({"arch": [A], "acc": [1.0], "params": [123]}))
    assert replay(A, own, width=8)[0]["params"] == 123


def test_score_is_the_weighted_sum(robbench):
    report = replay(A, robbench, score_weights={"clean_acc": 0.5, "pgd_eps8_acc": -2.0})[0]
    assert report["score"] == 0.5 * report["clean_acc"] - 2.0 * report["pgd_eps8_acc"]
    with pytest.raises(ValueError, match="cannot score: the trial does not report robust_acc"):
        replay(A, robbench, score_weights={"robust_acc": 1.0})


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    frame = _curves()
    csv, parquet = ResultTable.load(_write(tmp_path, frame)), ResultTable.load(_write(tmp_path, frame, "t.parquet"))
    assert parquet.metrics == csv.metrics and parquet.epochs == csv.epochs
    assert parquet.cells() == csv.cells()
    for cell in (A, B, ISO_1):
        if cell in csv:
            assert replay(cell, parquet) == replay(cell, csv)


def test_loaded_tables_are_cached_until_the_file_changes(tmp_path):
    path = _write(tmp_path, pd.DataFrame({"arch": [A], "acc": [1.0]}))
    first = ResultTable.load(path)
    assert ResultTable.load(str(path)) is first
    pd.DataFrame({"arch": [A], "acc": [2.0]}).to_csv(path, index=False)
    os.utime(path, ns=(1, 1))
    assert ResultTable.load(path).lookup(A) == {"acc": 2.0}


def test_trainable_rejects_bad_configs_before_touching_ray(tmp_path, robbench):
    table = robbench.path
    with pytest.raises(ValueError, match="unknown config key.*'colour'"):
        table_trainable({"arch": A, "table": table, "colour": "red"})
    with pytest.raises(ValueError, match="needs the config key 'table'"):
        table_trainable({"arch": A})
    with pytest.raises(ValueError, match="names no network"):
        table_trainable({"table": table, "width": 16})
    with pytest.raises(ValueError, match="exceeds table"):
        table_trainable({"arch": A, "table": table, "max_epochs": 4})


# --------------------------------------------------------------------------- with Ray Tune


def _reported(result) -> list[dict]:
    """Every result a trial reported, in order, from its result.json (exact floats)."""
    lines = (Path(result.path) / "result.json").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _only(report: dict, keys) -> dict:
    return {key: report[key] for key in keys}


@pytest.mark.slow
def test_trainable_reports_the_table_values_under_tune(ray_session, robbench, tmp_path):
    from ray import tune

    cells = [cell.to_str() for cell in robbench.cells()[:2]] + [ISO_2]
    weights = {"clean_acc": 0.5, "pgd_eps8_acc": 0.5}
    space = {"arch": tune.grid_search(cells), "table": robbench.path, "max_epochs": 1, "dataset": "digits",
             "sparsity": 0.5, "score_weights": weights}
    grid = tune.Tuner(
        table_trainable, param_space=space, tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="replay", verbose=0),
    ).fit()
    assert len(grid) == 3 and not grid.errors
    for result in grid:
        expected = replay(result.config["arch"], robbench, score_weights=weights)
        reported = _reported(result)
        assert [_only(r, expected[0]) for r in reported] == expected


class _FakeTune:
    """Stands in for ``ray.tune`` inside ``table_trainable``: records reports and checkpoints."""

    def __init__(self, tmp_path: Path, restore_from: dict[str, str] | None = None) -> None:
        self.reports: list[dict] = []
        self.checkpoints: list[dict[str, str]] = []
        self._tmp, self._restore_from = tmp_path, restore_from

    def get_checkpoint(self):
        if self._restore_from is None:
            return None
        from ray import tune

        directory = Path(self._tmp) / "restored"
        directory.mkdir(exist_ok=True)
        for name, text in self._restore_from.items():
            (directory / name).write_text(text)
        return tune.Checkpoint.from_directory(str(directory))

    def report(self, metrics, *, checkpoint) -> None:
        self.reports.append(dict(metrics))
        with checkpoint.as_directory() as directory:
            self.checkpoints.append({p.name: p.read_text() for p in Path(directory).iterdir()})


def test_trainable_continues_after_its_checkpointed_epoch(tmp_path, monkeypatch):
    from ray import tune

    path = _write(tmp_path, _curves())
    config = {"arch": A, "table": str(path), "max_epochs": 3, "width": 8, "attack": "pgd"}
    first = _FakeTune(tmp_path)
    for name in ("get_checkpoint", "report"):
        monkeypatch.setattr(tune, name, getattr(first, name))
    table_trainable(config)
    assert first.reports == replay(A, path, 3, width=8)
    assert [json.loads(c["replay.json"]) for c in first.checkpoints] == [{"epoch": e} for e in (1, 2, 3)]

    resumed = _FakeTune(tmp_path, restore_from=first.checkpoints[0])  # paused after epoch 1
    for name in ("get_checkpoint", "report"):
        monkeypatch.setattr(tune, name, getattr(resumed, name))
    table_trainable(config)
    assert resumed.reports == first.reports[1:]
    assert resumed.reports[-1]["sim_time_s"] == 2.5 + 3.5 + 4.5  # the clock counts epoch 1 too


@pytest.mark.slow
def test_hyperband_pauses_and_resumes_replayed_trials(ray_session, tmp_path):
    from ray import tune
    from ray.tune.schedulers import HyperBandScheduler

    cells = [Genotype(("nor_conv_1x1",) * k + ("skip_connect",) * (6 - k)) for k in range(6)]
    rows = [
        {"arch": cell.to_str(), "epoch": epoch, "score": k * 0.1 + epoch * 0.01, "cost_s": 1.0 + k}
        for k, cell in enumerate(cells) for epoch in range(1, 5)
    ]
    path = _write(tmp_path, pd.DataFrame(rows))
    scheduler = HyperBandScheduler(time_attr="epoch", metric="score", mode="max", max_t=4, reduction_factor=2)
    grid = tune.Tuner(
        table_trainable,
        param_space={"arch": tune.grid_search([c.to_str() for c in cells]), "table": str(path), "max_epochs": 4},
        tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="hb", verbose=0),
    ).fit()
    assert len(grid) == len(cells) and not grid.errors
    full = restored = 0
    for result in grid:
        reported = _reported(result)
        expected = replay(result.config["arch"], path, len(reported))
        assert [_only(r, expected[0]) for r in reported] == expected  # epochs 1..k, none repeated
        full += len(reported) == 4
        restored += any(r["iterations_since_restore"] < r["training_iteration"] for r in reported)
    assert 1 <= full < len(cells)  # some trials were stopped early, the best ran to the end
    assert restored >= 1  # a paused trial continued from its checkpoint
    assert max(r.metrics["sim_time_s"] for r in grid) == 4 * (1.0 + len(cells) - 1)
