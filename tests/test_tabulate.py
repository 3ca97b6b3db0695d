"""``robnas tabulate``: training a finite set of cells into a results table, and replaying it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from robnas.search._cli_tabulate import parse_trial_keys
from robnas.search._tabulate import (
    SETTINGS_FILE,
    TABLE_METRICS,
    TabulateSettings,
    _curve,
    collect,
    all_cells,
    experiment_path,
    read_archs,
    tabulate,
    write_table,
)
from robnas.search.cli import main
from robnas.spaces._genotype import Genotype
from robnas.search import table_trainable
from robnas.trainables._table import ResultTable, replay

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
B = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
C = "|nor_conv_1x1~0|+|none~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
ISO_1 = "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|none~0|skip_connect~1|nor_conv_1x1~2|"
ISO_2 = "|skip_connect~0|+|none~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|nor_conv_1x1~2|"
# Small, fast trials on digits: FGSM-RS training, PGD-2 evaluation on 120 images.
FAST = {"attack": "fgsm_rs", "eval_steps": 2, "eval_images": 120, "width": 4}


def _archs_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "archs.txt"
    path.write_text(text)
    return path


def test_all_cells_are_the_6466_canonical_classes():
    cells = all_cells()
    assert len(cells) == 6466 == len(set(cells))
    assert all(Genotype.from_str(cell).canonical().to_str() == cell for cell in cells)
    assert cells[0] == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def test_read_archs_skips_comments_and_deduplicates_by_canonical_form(tmp_path):
    path = _archs_file(tmp_path, f"# cells\n{A}\n\n  {ISO_1}  # first of its class\n{ISO_2}\n{A}\n{B}\n")
    assert read_archs(path) == (A, ISO_1, B)


def test_read_archs_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"archs\.txt, line 2: malformed NB201 cell string '\|conv~0\|'"):
        read_archs(_archs_file(tmp_path, f"{A}\n|conv~0|\n"))
    with pytest.raises(ValueError, match=r"archs\.txt lists no nb201 network"):
        read_archs(_archs_file(tmp_path, "# nothing\n\n"))
    with pytest.raises(ValueError, match="does not exist"):
        read_archs(tmp_path / "missing.txt")


def test_settings_defaults_and_validation(tmp_path):
    out = str(tmp_path / "t.csv")
    settings = TabulateSettings(out=out, archs=(A, ISO_1, ISO_2), trial=FAST)
    assert settings.archs == (A, ISO_1) and settings.epochs == 4  # digits' max_epochs
    assert settings.fixed_keys() == {"dataset": "digits", "data_dir": None, "max_epochs": 4, "seed": 0, **FAST}
    assert len(TabulateSettings(out=out).archs) == 6466
    bad = [
        ({"out": ""}, "needs an output table path"),
        ({"out": str(tmp_path / "t.txt")}, "must end in one of .csv"),
        ({"space": "macro"}, "cannot tabulate space 'macro'"),
        ({"archs": ()}, "at least one network"),
        ({"archs": ("|x~0|",)}, "malformed NB201"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"trial": {"max_epochs": 3}}, "max_epochs have their own options"),
        ({"trial": {"colour": 1}}, "unknown config key"),
        ({"trial": {"sparsity": 2.0}}, "config key 'sparsity'"),
        ({"cpus_per_trial": 0}, "cpus_per_trial must be a number > 0"),
    ]
    for options, message in bad:
        with pytest.raises(ValueError, match=message):
            TabulateSettings(**{"out": out, "archs": (A,), **options})


def test_parse_trial_keys():
    assert parse_trial_keys(["width=16", "attack=pgd", "eps=8.0", "data_dir="]) == {
        "width": 16, "attack": "pgd", "eps": 8.0, "data_dir": None,
    }
    for items, message in ((["width"], "KEY=VALUE"), (["=3"], "KEY=VALUE"), (["a=1", "a=2"], "more than once")):
        with pytest.raises(ValueError, match=message):
            parse_trial_keys(items)


def test_existing_output_or_experiment_is_never_replaced_silently(tmp_path):
    out = tmp_path / "t.csv"
    out.write_text("arch,clean_acc\n")
    settings = TabulateSettings(out=str(out), archs=(A,), epochs=1)
    with pytest.raises(ValueError, match="t.csv exists; use --overwrite"):
        tabulate(settings)
    with pytest.raises(ValueError, match="choose one of resume and overwrite"):
        tabulate(settings, resume=True, overwrite=True)
    foreign = experiment_path(out)
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert foreign == tmp_path / "t.csv.tune"
    with pytest.raises(ValueError, match="exists; use --resume to continue it or --overwrite"):
        tabulate(settings)
    with pytest.raises(ValueError, match=f"is not a robnas tabulation \\(no {SETTINGS_FILE}\\)"):
        tabulate(settings, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    empty = _archs_file(tmp_path, "\n")
    cases = [
        (["tabulate", "--archs", str(empty)], "the following arguments are required: --out"),
        (["tabulate", "--archs", str(empty), "--out", str(tmp_path / "t.csv")], "lists no nb201 network"),
        (["tabulate", "--out", str(tmp_path / "t.csv"), "--trial", "width"], "must look like KEY=VALUE"),
        (["tabulate", "--out", str(tmp_path / "t.csv"), "--resume", "--overwrite"], "not allowed with"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and err.startswith("robnas: error:")
    _archs_file(tmp_path, "|nor_conv_3x3~0|\n")
    assert main(["tabulate", "--archs", str(tmp_path / "archs.txt"), "--out", str(tmp_path / "t.csv")]) == 2
    assert "line 1: malformed NB201 cell string" in capsys.readouterr().err


def test_a_diverged_trial_fills_its_curve_with_nan_and_zero_cost():
    records = {
        1: {"epoch": 1, **{name: float(i) for i, name in enumerate(TABLE_METRICS)}},
        2: {"epoch": 2, "clean_acc": math.nan, "robust_acc": math.nan, "diverged": True},
    }
    curve = _curve(records, 3)
    assert curve[0] == {name: float(i) for i, name in enumerate(TABLE_METRICS)}
    for row in curve[1:]:
        assert row["epoch_time_s"] == 0.0 and all(math.isnan(row[m]) for m in TABLE_METRICS if m != "epoch_time_s")
    assert _curve(records, 3)[0] is not None and _curve({1: records[1]}, 2) is None  # unfinished


def test_collect_tells_failed_from_unfinished_cells(tmp_path):
    settings = TabulateSettings(out=str(tmp_path / "t.csv"), archs=(A, B, C, ISO_1), epochs=2)
    grid = []
    for arch, epochs, error in ((A, 2, None), (B, 1, RuntimeError("boom")), (C, 1, None)):
        trial = tmp_path / arch.replace("|", "").replace("~", "")
        trial.mkdir()
        lines = [json.dumps({"epoch": e, **{m: e + 0.5 for m in TABLE_METRICS}, "node_id": "n"}) for e in range(1, epochs + 1)]
        (trial / "result.json").write_text("\n".join(lines) + "\n")
        grid.append(SimpleNamespace(config={"arch": arch}, path=str(trial), error=error))
    table, failed, unfinished = collect(grid, settings)
    assert failed == (B,) and unfinished == (C, ISO_1)  # ISO_1 never started
    assert list(table.columns) == ["arch", "epoch", *TABLE_METRICS]
    assert table.to_dict("records") == [{"arch": A, "epoch": e, **{m: e + 0.5 for m in TABLE_METRICS}} for e in (1, 2)]


def test_written_tables_load_back_exactly(tmp_path):
    frame = pd.DataFrame({
        "arch": [A, A], "epoch": [1, 2], **{m: [0.1 / 3, 2 / 7] for m in TABLE_METRICS},
    })
    for name in ("t.csv", "t.parquet"):
        if name.endswith("parquet"):
            pytest.importorskip("pyarrow")
        table = ResultTable.load(write_table(frame, tmp_path / name))
        assert table.cost_column == "epoch_time_s" and table.epochs == 2
        assert [r["clean_acc"] for r in replay(A, table)] == [0.1 / 3, 2 / 7]


def _trained(experiment: Path) -> dict[str, list[dict]]:
    """arch -> the results its tabulation trial reported, in order, from result.json."""
    trained = {}
    for params in experiment.glob("trial_*/params.json"):
        lines = (params.parent / "result.json").read_text().splitlines()
        trained[json.loads(params.read_text())["arch"]] = [json.loads(line) for line in lines if line]
    return trained


@pytest.mark.slow
def test_tabulate_then_replay_round_trips(ray_session, tmp_path):
    from ray import tune

    out = tmp_path / "cells.csv"
    archs = read_archs(_archs_file(tmp_path, f"{A}\n{B}\n{ISO_1}\n{ISO_2}\n"))
    settings = TabulateSettings(out=str(out), archs=archs, epochs=2, trial=FAST)
    result = tabulate(settings)
    assert result.failed == result.unfinished == () and result.written and result.path == out and out.is_file()
    assert result.experiment_path == tmp_path / "cells.csv.tune"
    assert list(result.table.columns) == ["arch", "epoch", *TABLE_METRICS]
    assert list(zip(result.table.arch, result.table.epoch)) == [(a, e) for a in archs for e in (1, 2)]

    trained = _trained(result.experiment_path)
    assert sorted(trained) == sorted(archs)
    table = ResultTable.load(out)
    grid = tune.Tuner(
        table_trainable,
        param_space={"arch": tune.grid_search(list(archs)), "table": str(out), **settings.fixed_keys()},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="replay", verbose=0),
    ).fit()
    assert not grid.errors
    for replayed in grid:
        arch = replayed.config["arch"]
        lines = (Path(replayed.path) / "result.json").read_text().splitlines()
        reports = [json.loads(line) for line in lines if line]
        assert [r["epoch"] for r in reports] == [1, 2]
        for report, real in zip(reports, trained[arch]):
            for name in TABLE_METRICS:
                assert report[name] == real[name], (arch, report["epoch"], name)
        assert reports[-1]["sim_time_s"] == trained[arch][0]["epoch_time_s"] + trained[arch][1]["epoch_time_s"]
    assert table.lookup(ISO_2, 2)["robust_acc"] == trained[ISO_1][1]["robust_acc"]

    again = tabulate(settings, resume=True)  # nothing left to train: the same table
    pd.testing.assert_frame_equal(again.table, result.table)
    with pytest.raises(ValueError, match="cannot resume .* with different epochs"):
        tabulate(TabulateSettings(out=str(out), archs=archs, epochs=3, trial=FAST), resume=True)
