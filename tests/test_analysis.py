"""Analysis of search directories: loading, front, hypervolume, files and the command line.

The searches here are hand-written directories in the layout Ray Tune and robnas write
(``robnas.json``, ``experiment_state-*.json``, ``trial_<id>/params.json`` and ``result.json``),
so no test needs Ray or training.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robnas.analysis._analyze import analyze, write_comparison
from robnas.analysis._front import analyze_trials, default_reference_point
from robnas.analysis._front import objectives_of as parse_objectives
from robnas.spaces import Objective
from robnas.analysis._load import SkippedRowWarning, error_message, load_experiment
from robnas.search.cli import main

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|"
START = 1_700_000_000.0
ERROR_TXT = """Failure # 1 (occurred at 2026-01-01_00-00-01)
\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=1, ip=127.0.0.1, actor_id=ab, repr=f)
  File "/x/trainable.py", line 329, in train
    raise skipped from exception_cause(skipped)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^
RuntimeError: first failure
Failure # 2 (occurred at 2026-01-01_00-00-09)
\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=2, ip=127.0.0.1, actor_id=cd, repr=f)
  File "/x/function_trainable.py", line 249, in _trainable_func
    output = fn()
             ^^^^
  File "/x/_trial.py", line 9, in run_epoch
    raise ValueError("out of memory in epoch 2")
ValueError: out of memory in epoch 2
"""


def trial(trial_id, points, *, status="TERMINATED", done=None, config=None, start=0.0, epoch_s=10.0,
          error=None, diverged_at=None, extra=None):
    """A fake trial: ``points`` is one (clean_acc, robust_acc, sparsity) per reported epoch."""
    return {"id": trial_id, "points": points, "status": status, "done": done, "config": config or {},
            "start": start, "epoch_s": epoch_s, "error": error, "diverged_at": diverged_at,
            "extra": extra or {}}


def write_search(path: Path, trials, *, max_epochs=3, objectives=("clean_acc", "robust_acc", "sparsity"),
                 state=True) -> Path:
    """Write a search directory as Tune and robnas lay it out."""
    path.mkdir(parents=True)
    settings = {"max_epochs": max_epochs, "objectives": list(objectives), "name": path.name}
    (path / "robnas.json").write_text(json.dumps({"settings": settings, "versions": {}}))
    entries = []
    for number, t in enumerate(trials):
        directory = path / f"trial_{t['id']}"
        directory.mkdir()
        # One training seed per trial: distinct trainings (a shared config would be one network).
        config = {"arch": ARCH, "width": 8, "max_epochs": max_epochs, "score_weights": {"clean_acc": 1.0},
                  "seed": number, **t["config"]}
        (directory / "params.json").write_text(json.dumps(config))
        lines = []
        for epoch, point in enumerate(t["points"], start=1):
            clean, robust, sparsity = point
            row = {"epoch": epoch, "clean_acc": clean, "robust_acc": robust, "sparsity": sparsity,
                   "params": 1000 * epoch, "diverged": False, **t["extra"]}
            if t["diverged_at"] == epoch:
                row.update(clean_acc=math.nan, robust_acc=math.nan, sparsity=math.nan, diverged=True,
                           error="training loss is nan in epoch 2")
            last = epoch == len(t["points"])
            done = t["done"] if t["done"] is not None else (last and t["status"] == "TERMINATED")
            row.update(timestamp=int(START + t["start"] + epoch * t["epoch_s"]), time_this_iter_s=t["epoch_s"],
                       time_total_s=epoch * t["epoch_s"], training_iteration=epoch, trial_id=t["id"],
                       done=bool(done and last), config=config,
                       checkpoint_dir_name=f"checkpoint_{epoch - 1:06d}")
            lines.append(json.dumps(row))
        (directory / "result.json").write_text("".join(line + "\n" for line in lines))
        if t["error"] is not None:
            (directory / "error.txt").write_text(t["error"])
            failed_at = START + t["start"] + len(lines) * t["epoch_s"] + 3
            os.utime(directory / "error.txt", (failed_at, failed_at))
        entries.append([
            json.dumps({"trial_id": t["id"], "status": t["status"], "relative_logdir": directory.name,
                        "config": config}),
            json.dumps({"start_time": START + t["start"], "last_result_time": -math.inf if not lines else
                        START + t["start"] + len(lines) * t["epoch_s"] + 0.25,
                        "error_filename": "error.txt" if t["error"] is not None else None}),
        ])
    if state:
        data = {"trial_data": entries, "runner_data": {}, "stats": {"start_time": START}}
        (path / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps(data))
    return path


def standard_trials():
    """Front over (clean, robust) at 3 epochs: a, b, d (c is dominated by b); e is better than
    all but stopped at epoch 1; f diverged; g failed; h is still running."""
    return [
        trial("a", [(0.5, 0.1, 0.0), (0.8, 0.2, 0.0), (0.9, 0.3, 0.0)], start=0),
        trial("b", [(0.4, 0.4, 0.0), (0.5, 0.5, 0.0), (0.6, 0.6, 0.0)], start=5),
        trial("c", [(0.3, 0.3, 0.0), (0.4, 0.4, 0.0), (0.5, 0.5, 0.0)], start=10),
        trial("d", [(0.1, 0.5, 0.0), (0.2, 0.8, 0.0), (0.3, 0.9, 0.0)], start=40),
        trial("e", [(1.0, 1.0, 0.0)], start=15),
        trial("f", [(0.5, 0.5, 0.0), (0.0, 0.0, 0.0)], diverged_at=2, start=20),
        trial("g", [(0.2, 0.2, 0.0)], status="ERROR", error=ERROR_TXT, start=25),
        trial("h", [(0.7, 0.7, 0.0)], status="RUNNING", start=60),
    ]


@pytest.fixture
def search(tmp_path) -> Path:
    return write_search(tmp_path / "s", standard_trials())


TWO = (Objective("clean_acc", "max"), Objective("robust_acc", "max"))


# ---------------------------------------------------------------- loading


def test_load_reads_statuses_epochs_and_configs(search):
    experiment = load_experiment(search)
    trials = experiment.trials.set_index("trial_id")
    assert list(experiment.trials["trial_id"]) == list("abcefgdh")  # by start time
    assert experiment.max_epochs == 3 and experiment.start_time == START
    assert trials.loc["a", "status"] == "TERMINATED" and trials.loc["a", "epoch"] == 3
    assert bool(trials.loc["a", "complete"]) and not bool(trials.loc["a", "stopped_early"])
    assert bool(trials.loc["e", "stopped_early"]) and trials.loc["e", "epoch"] == 1
    assert trials.loc["g", "status"] == "ERROR" and not bool(trials.loc["g", "complete"])
    assert trials.loc["g", "error"] == "ValueError: out of memory in epoch 2"
    assert bool(trials.loc["f", "diverged"]) and "nan" in trials.loc["f", "error"]
    assert trials.loc["h", "status"] == "RUNNING"
    assert trials.loc["a", "arch"] == ARCH and trials.loc["a", "config/width"] == 8
    assert trials.loc["a", "clean_acc"] == 0.9  # the last result
    assert trials.loc["a", "wall_time_s"] == pytest.approx(30.25)
    assert trials.loc["a", "checkpoint"] == ""  # none written here
    results = experiment.results
    assert list(results[results["trial_id"] == "a"]["clean_acc"]) == [0.5, 0.8, 0.9]
    assert len(results) == 3 + 3 + 3 + 3 + 1 + 2 + 1 + 1


def test_error_message_is_the_last_exception_line(tmp_path):
    file = tmp_path / "error.txt"
    file.write_text(ERROR_TXT)
    assert error_message(file) == "ValueError: out of memory in epoch 2"
    file.write_text("Failure # 1 (occurred at x)\nsomething odd happened\n")
    assert error_message(file) == "something odd happened"
    assert error_message(tmp_path / "missing.txt") == ""


def test_statuses_are_inferred_without_a_state_file(tmp_path):
    trials = [
        trial("a", [(0.5, 0.5, 0.0)] * 3),
        trial("b", [(0.5, 0.5, 0.0)], status="RUNNING"),
        trial("c", [(0.5, 0.5, 0.0)], status="ERROR", error=ERROR_TXT),
        trial("d", [(0.5, 0.5, 0.0)], done=True),  # stopped early by the scheduler
        trial("p", []),
    ]
    path = write_search(tmp_path / "s", trials, state=False)
    statuses = load_experiment(path).trials.set_index("trial_id")["status"].to_dict()
    assert statuses == {"a": "TERMINATED", "b": "RUNNING", "c": "ERROR", "d": "TERMINATED", "p": "PENDING"}
    (path / "experiment_state-2026-01-01_00-00-00.json").write_text('{"trial_data": [["{oops')
    assert load_experiment(path).trials.set_index("trial_id")["status"].to_dict() == statuses


def test_running_search_half_written_lines_and_stale_state(tmp_path):
    path = write_search(tmp_path / "s", [trial("a", [(0.5, 0.5, 0.0)] * 2, status="RUNNING"),
                                         trial("b", [(0.6, 0.6, 0.0)] * 3, status="RUNNING", done=True)])
    with open(path / "trial_a" / "result.json", "a") as file:
        file.write('{"epoch": 3, "clean_')  # Tune is writing this line right now
    (path / "trial_z").mkdir()  # created, nothing written yet
    (path / "trial_z" / "params.json").write_text(json.dumps({"arch": ARCH}))
    trials = load_experiment(path).trials.set_index("trial_id")
    assert trials.loc["a", "epoch"] == 2 and trials.loc["a", "status"] == "RUNNING"
    assert trials.loc["b", "status"] == "TERMINATED"  # its last result says done; the state is older
    assert trials.loc["z", "status"] == "PENDING" and trials.loc["z", "epoch"] == 0


def test_resumed_trial_reporting_an_epoch_twice_keeps_the_last_report(tmp_path):
    path = write_search(tmp_path / "s", [trial("a", [(0.1, 0.1, 0.0), (0.2, 0.2, 0.0), (0.3, 0.3, 0.0)])])
    lines = (path / "trial_a" / "result.json").read_text().splitlines()
    again = json.loads(lines[1]) | {"clean_acc": 0.25}
    rewritten = [lines[0], lines[1], json.dumps(again), lines[2]]
    (path / "trial_a" / "result.json").write_text("\n".join(rewritten) + "\n")
    results = load_experiment(path).results
    assert list(results["epoch"]) == [1, 2, 3] and list(results["clean_acc"]) == [0.1, 0.25, 0.3]


def test_a_resumed_search_reads_the_newest_state_file(tmp_path):
    trials = [trial("a", [(0.5, 0.5, 0.0)] * 3), trial("b", [(0.5, 0.5, 0.0)], status="RUNNING")]
    path = write_search(tmp_path / "s", trials)
    old = path / "experiment_state-2026-01-01_00-00-00.json"
    data = json.loads(old.read_text())
    entry = json.loads(data["trial_data"][1][0]) | {"status": "ERROR"}
    data["trial_data"][1][0] = json.dumps(entry)
    (path / "experiment_state-2026-01-02_00-00-00.json").write_text(json.dumps(data))  # after the resume
    statuses = load_experiment(path).trials.set_index("trial_id")["status"].to_dict()
    assert statuses == {"a": "TERMINATED", "b": "ERROR"}


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_text("x"), "not a directory"),
    (lambda p: p.mkdir(), "not a robnas search"),
    (lambda p: (p.mkdir(), (p / "robnas.json").write_text("{")), "not a valid robnas settings file"),
])
def test_not_a_search_is_a_one_line_value_error(tmp_path, setup, message):
    path = tmp_path / "x"
    setup(path)
    with pytest.raises(ValueError, match=message):
        load_experiment(path)



# ---------------------------------------------------------------- damaged result rows


#: Damage done to a good row (a dict) -> the line written instead, and what the warning says.
BAD_ROWS = {
    "epoch a string": (lambda r: json.dumps(r | {"epoch": "x"}), 'epoch "x" is not an integer'),
    "epoch a fraction": (lambda r: json.dumps(r | {"epoch": 2.5}), "epoch 2.5 is not an integer"),
    "epoch a bool": (lambda r: json.dumps(r | {"epoch": True}), "epoch true is not an integer"),
    "epoch null": (lambda r: json.dumps(r | {"epoch": None}), "epoch null is not an integer"),
    "epoch 0": (lambda r: json.dumps(r | {"epoch": 0}), "epoch 0 is below 1"),
    "epoch negative": (lambda r: json.dumps(r | {"epoch": -3}), "epoch -3 is below 1"),
    "no epoch": (lambda r: json.dumps({k: v for k, v in r.items() if k not in ("epoch", "training_iteration")}),
                 "no epoch"),
    "training_iteration a string": (
        lambda r: json.dumps({k: v for k, v in r.items() if k != "epoch"} | {"training_iteration": "2"}),
        'training_iteration "2" is not an integer'),
    "objective a string": (lambda r: json.dumps(r | {"clean_acc": "high"}), 'clean_acc "high" is not a number'),
    "objective null": (lambda r: json.dumps(r | {"robust_acc": None}), "robust_acc null is not a number"),
    "objective a list": (lambda r: json.dumps(r | {"sparsity": [0.5]}), "sparsity [0.5] is not a number"),
    "objective a bool": (lambda r: json.dumps(r | {"clean_acc": True}), "clean_acc true is not a number"),
    "objective infinite": (lambda r: json.dumps(r | {"robust_acc": math.inf}), "robust_acc Infinity is not finite"),
    "objective -infinite": (lambda r: json.dumps(r | {"clean_acc": -math.inf}), "clean_acc -Infinity is not finite"),
    "long value cut in the message": (lambda r: json.dumps(r | {"clean_acc": "y" * 500}),
                                      'clean_acc "' + "y" * 36 + "... is not a number"),
    "a JSON array": (lambda r: "[1, 2]", "JSON array, not an object"),
    "a JSON string": (lambda r: '"row"', "JSON string, not an object"),
    "a JSON number": (lambda r: "3", "JSON number, not an object"),
    "JSON null": (lambda r: "null", "JSON null, not an object"),
    "not JSON": (lambda r: "{not json", "not valid JSON at column 2 (Expecting property name enclosed in double quotes)"),
    "a line cut short": (lambda r: json.dumps(r)[:12],
                         "not valid JSON at column 13 (Expecting property name enclosed in double quotes)"),
    "NUL bytes": (lambda r: "\x00" * 16, "not valid JSON at column 1 (Expecting value)"),
    "nested too deeply": (lambda r: "[" * 100_000 + "]" * 100_000, "not valid JSON (nested too deeply)"),
    "a 5000-digit number": (lambda r: '{"epoch": 2, "clean_acc": ' + "9" * 5000 + "}", "not valid JSON (Exceeds the limit (4300 digits) for integer string conversion)"),
}
#: (trial, line) damaged: a middle row, and the last row of a front member.
DAMAGED = (("a", 3), ("b", 2))


def _edit_results(path: Path, trial_id: str, edit) -> Path:
    """Rewrite ``trial_<id>/result.json`` as ``edit(lines)`` (lines without their newlines)."""
    file = path / f"trial_{trial_id}" / "result.json"
    file.write_text("".join(line + "\n" for line in edit(file.read_text().splitlines())))
    return file


def damaged_and_cut(tmp_path: Path, damage) -> tuple[Path, Path]:
    """The standard search twice: with the rows ``DAMAGED`` replaced by ``damage(row)``, and
    with them deleted (what the analysis of the damaged one must equal)."""
    damaged = write_search(tmp_path / "damaged", standard_trials())
    cut = write_search(tmp_path / "cut", standard_trials())
    for trial_id, line in DAMAGED:
        def replace(lines, i=line - 1):
            return [damage(json.loads(x)) if k == i else x for k, x in enumerate(lines)]
        _edit_results(damaged, trial_id, replace)
        _edit_results(cut, trial_id, lambda lines, i=line - 1: lines[:i] + lines[i + 1:])
    return damaged, cut


def assert_same_analysis(damaged, cut) -> None:
    """Trials, results, front and summary of two loaded searches are the same."""
    pd.testing.assert_frame_equal(damaged.trials, cut.trials)
    pd.testing.assert_frame_equal(damaged.results, cut.results)
    for objectives in (TWO, parse_objectives("clean_acc,robust_acc,sparsity", [])):
        ours, theirs = (analyze_trials(e.trials, objectives, max_epochs=3) for e in (damaged, cut))
        pd.testing.assert_frame_equal(ours.trials, theirs.trials)
        assert ours.summary == theirs.summary


@pytest.mark.parametrize("damage, message", BAD_ROWS.values(), ids=BAD_ROWS)
def test_a_damaged_row_is_skipped_named_and_the_rest_analysed_as_without_it(tmp_path, damage, message):
    damaged_dir, cut_dir = damaged_and_cut(tmp_path, damage)
    with pytest.warns(SkippedRowWarning) as caught:
        damaged = load_experiment(damaged_dir)
    expected = tuple(f"{damaged_dir / f'trial_{t}' / 'result.json'} line {n}: {message}"
                     for t, n in DAMAGED)
    assert len(damaged.skipped) == len(DAMAGED)
    for found, start in zip(damaged.skipped, expected):
        assert found.startswith(start) and found.endswith("; row skipped") and "\n" not in found
    assert [str(w.message) for w in caught] == list(damaged.skipped)
    cut = load_experiment(cut_dir)
    assert cut.skipped == ()
    assert_same_analysis(damaged, cut)
    # a's last row went: it reached epoch 2 of 3, so the front is b and d.
    assert list(analyze_trials(damaged.trials, TWO, max_epochs=3).front["trial_id"]) == ["b", "d"]


@pytest.mark.parametrize("damage", [
    lambda r: json.dumps(r | {"epoch": float(r["epoch"])}),  # 3.0 is epoch 3
    lambda r: json.dumps(r | {"params": "many"}),  # not an objective: kept as written
    lambda r: json.dumps(r | {"robust_acc": math.nan}),  # NaN is how a diverged trial reports
    lambda r: json.dumps(r) + "\r",  # a Windows line end
], ids=["epoch 3.0", "non-objective string", "NaN objective", "CRLF"])
def test_rows_that_are_not_damaged(tmp_path, damage):
    damaged_dir, _ = damaged_and_cut(tmp_path, damage)
    good = write_search(tmp_path / "good", standard_trials())
    experiment = load_experiment(damaged_dir)
    assert experiment.skipped == ()
    assert len(experiment.results) == len(load_experiment(good).results)
    assert experiment.results["epoch"].tolist() == load_experiment(good).results["epoch"].tolist()


def test_a_string_in_a_metric_is_damage_when_it_is_an_objective(tmp_path):
    damaged_dir, cut_dir = damaged_and_cut(tmp_path, lambda r: json.dumps(r | {"params": "many"}))
    assert load_experiment(damaged_dir).skipped == ()
    with pytest.warns(SkippedRowWarning, match='params "many" is not a number'):
        damaged = load_experiment(damaged_dir, objectives="clean_acc,params")
    assert len(damaged.skipped) == 2
    assert_same_analysis(damaged, load_experiment(cut_dir, objectives="clean_acc,params"))


def test_blank_lines_and_the_line_being_written_pass_silently(tmp_path):
    good = write_search(tmp_path / "good", standard_trials())
    path = write_search(tmp_path / "s", standard_trials())
    _edit_results(path, "b", lambda lines: ["", lines[0], "   ", *lines[1:]])
    with open(path / "trial_a" / "result.json", "a") as file:
        file.write('{"epoch": 4, "clean_')  # no newline yet: Tune is writing it
    experiment = load_experiment(path)
    assert experiment.skipped == ()
    pd.testing.assert_frame_equal(experiment.trials, load_experiment(good).trials)
    with open(path / "trial_a" / "result.json", "a") as file:
        file.write("\n")  # the same line ended: a line that will never be whole
    message = f"{path / 'trial_a' / 'result.json'} line 4: not valid JSON at column 14 (Unterminated string)"
    with pytest.warns(SkippedRowWarning):
        assert load_experiment(path).skipped == (message + "; row skipped",)


def test_trials_found_by_their_directory_are_read_once(tmp_path):
    path = write_search(tmp_path / "s", standard_trials(), state=False)
    _edit_results(path, "b", lambda lines: [lines[0], "[1]", *lines[1:]])
    with pytest.warns(SkippedRowWarning):
        assert len(load_experiment(path).skipped) == 1


def test_cli_prints_one_warning_line_per_skipped_row(tmp_path, capsys):
    damaged, cut = damaged_and_cut(tmp_path, BAD_ROWS["epoch a string"][0])
    assert main(["analyze", str(cut), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert main(["analyze", str(damaged), "--json"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert lines == [f"robnas: warning: {damaged / f'trial_{t}' / 'result.json'} line {n}: "
                     f'epoch "x" is not an integer; row skipped' for t, n in DAMAGED]
    summary = json.loads(out)
    assert summary.pop("experiment") != expected.pop("experiment") and summary == expected


def test_a_real_process_warns_without_a_traceback(tmp_path):
    damaged, _ = damaged_and_cut(tmp_path, BAD_ROWS["a JSON array"][0])
    out = subprocess.run([sys.executable, "-m", "robnas", "analyze", str(damaged)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "Traceback" not in out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("robnas: warning: ") for line in lines)
    assert "front 2" in out.stdout

# ---------------------------------------------------------------- objectives and the front


def test_parse_objectives_directions_and_errors():
    available = ["clean_acc", "pgd_eps8_acc", "train_loss"]
    assert parse_objectives("clean_acc,params,pgd_eps8_acc,train_loss", available) == (
        Objective("clean_acc", "max"), Objective("params", "min"),
        Objective("pgd_eps8_acc", "max"), Objective("train_loss", "min"))
    assert parse_objectives(["robust_acc:min"], available) == (Objective("robust_acc", "min"),)
    with pytest.raises(ValueError, match="unknown objective 'nope'; choose from clean_acc"):
        parse_objectives("clean_acc,nope", available)
    with pytest.raises(ValueError, match="must not repeat"):
        parse_objectives("clean_acc,clean_acc:min", available)
    with pytest.raises(ValueError, match="direction 'up'"):
        parse_objectives("clean_acc:up", available)
    with pytest.raises(ValueError, match="non-empty"):
        parse_objectives("clean_acc,", available)


def test_default_reference_point():
    values = [[0.5, 100.0, -2.0, 0.0], [0.9, 300.0, 1.0, 0.0]]
    assert default_reference_point(values, ["max", "min", "max", "min"]).tolist() == [0.0, 303.0, -2.02, 1.0]
    assert default_reference_point(np.zeros((0, 2)), ["max", "min"]).tolist() == [0.0, 1.0]


def test_front_knee_best_and_hand_computed_hypervolume(search):
    experiment = load_experiment(search)
    result = analyze_trials(experiment.trials, TWO, max_epochs=3)
    trials = result.trials.set_index("trial_id")
    assert trials["excluded"].to_dict() == {"a": "", "b": "", "c": "", "d": "", "e": "stopped early",
                                            "f": "diverged", "g": "failed", "h": "not finished"}
    assert list(result.front["trial_id"]) == ["a", "b", "d"]  # best clean_acc first
    assert trials["rank"].to_dict() == {"a": 0, "b": 0, "c": 1, "d": 0, "e": -1, "f": -1, "g": -1, "h": -1}
    # Union of the boxes [0, .9]x[0, .3], [0, .6]x[0, .6], [0, .3]x[0, .9].
    assert result.summary["hypervolume"] == pytest.approx(0.9 * 0.3 + 0.6 * 0.3 + 0.3 * 0.3)
    assert result.summary["reference_point"] == [0.0, 0.0]
    # Normalised over the front, b = (0.5, 0.5) is closest to the ideal point.
    assert result.summary["knee"]["trial_id"] == "b" and bool(trials.loc["b", "knee"])
    assert result.summary["best"] == {"clean_acc": {"trial_id": "a", "value": 0.9},
                                      "robust_acc": {"trial_id": "d", "value": 0.9}}
    assert result.summary["failed"] == [{"trial_id": "g", "error": "ValueError: out of memory in epoch 2"}]
    assert (result.summary["n_trials"], result.summary["n_complete"], result.summary["n_pareto"]) == (8, 4, 3)
    assert (result.summary["n_failed"], result.summary["n_diverged"], result.summary["n_running"]) == (1, 1, 1)


def test_all_fidelities_uses_every_last_result(search):
    result = analyze_trials(load_experiment(search).trials, TWO, max_epochs=3, all_fidelities=True)
    assert list(result.front["trial_id"]) == ["e"]  # (1, 1) at epoch 1 dominates everything
    assert result.summary["hypervolume"] == pytest.approx(1.0)
    assert result.trials.set_index("trial_id")["excluded"]["h"] == ""


def test_three_objective_hypervolume_hand_computed_and_min_direction(tmp_path):
    trials = [trial("p", [(0.8, 0.5, 0.5)], start=0), trial("q", [(0.5, 0.8, 0.2)], start=1)]
    path = write_search(tmp_path / "s", trials, max_epochs=1)
    experiment = load_experiment(path)
    three = parse_objectives("clean_acc,robust_acc,sparsity", [])
    result = analyze_trials(experiment.trials, three, max_epochs=1)
    # Two boxes minus their overlap: .8*.5*.5 + .5*.8*.2 - .5*.5*.2.
    assert result.summary["hypervolume"] == pytest.approx(0.23)
    assert result.summary["n_pareto"] == 2
    with_params = parse_objectives("clean_acc,params", [])
    result = analyze_trials(experiment.trials, with_params, max_epochs=1, reference_point=[0.0, 2000.0])
    # Both have 1000 params: p dominates q; box .8 x (2000 - 1000).
    assert list(result.front["trial_id"]) == ["p"] and result.summary["hypervolume"] == pytest.approx(800.0)
    default = analyze_trials(experiment.trials, with_params, max_epochs=1)
    assert default.summary["reference_point"] == [0.0, 1010.0]


def test_dense_front_members_add_no_hypervolume_with_the_default_sparsity_reference(search):
    three = parse_objectives("clean_acc,robust_acc,sparsity", [])
    result = analyze_trials(load_experiment(search).trials, three, max_epochs=3)
    assert result.summary["n_pareto"] == 3  # a, b, d as with two objectives
    assert result.summary["hypervolume"] == 0.0  # sparsity 0 does not beat the reference 0
    assert analyze_trials(load_experiment(search).trials, three, max_epochs=3,
                          reference_point=[0, 0, -1]).summary["hypervolume"] == pytest.approx(0.54)


def test_hypervolume_curve_follows_completion_order(search):
    result = analyze_trials(load_experiment(search).trials, TWO, max_epochs=3)
    curve = result.curve
    # Finished at e 25, a 30, b 35, g 38 (its error file), c 40, f 40 (tie: by id), d 70; h runs.
    assert list(curve["trial_id"]) == ["e", "a", "b", "g", "c", "f", "d"]
    by_id = curve.set_index("trial_id")
    assert by_id.loc["e", "hypervolume"] == 0.0  # stopped early: not on the front
    assert by_id.loc["a", "hypervolume"] == pytest.approx(0.27)
    assert by_id.loc["b", "hypervolume"] == pytest.approx(0.27 + 0.18)
    assert by_id.loc["d", "hypervolume"] == pytest.approx(0.54)
    assert by_id.loc["d", "wall_time_s"] == pytest.approx(70.25)
    assert curve["hypervolume"].is_monotonic_increasing and list(curve["n_finished"]) == list(range(1, 8))


def test_search_time_leaves_out_the_idle_gap_before_a_resume(tmp_path):
    """Two batches of trials 10,000 s apart (the search was stopped, then resumed): the gap
    counts in wall time, not in search time; a 600-s epoch and a 50-s pause between trials do."""
    trials = [
        trial("a", [(0.5, 0.1, 0.0)] * 3, start=0),         # at work 0 - 30.25
        trial("b", [(0.1, 0.5, 0.0)] * 3, start=5),         # 5 - 35.25
        trial("c", [(0.6, 0.6, 0.0)] * 3, start=10_000),    # resumed: 10,000 - 10,030.25
        trial("d", [(0.7, 0.2, 0.0)] * 1, start=10_080.25, epoch_s=600),  # 50 s after c: counted
    ]
    path = write_search(tmp_path / "s", trials)
    experiment = load_experiment(path)
    assert experiment.idle_gaps == ((START + 35.25, START + 10_000),)
    by_id = experiment.trials.set_index("trial_id")
    gap = 10_000 - 35.25
    assert by_id["wall_time_s"].to_dict() == pytest.approx({"a": 30.25, "b": 35.25, "c": 10_030.25,
                                                            "d": 10_680.5})
    assert by_id["search_time_s"].to_dict() == pytest.approx({"a": 30.25, "b": 35.25, "c": 10_030.25 - gap,
                                                              "d": 10_680.5 - gap})
    [analysis] = analyze([path], objectives="clean_acc,robust_acc")
    curve = analysis.result.curve.set_index("trial_id")
    assert curve["search_time_s"].to_dict() == pytest.approx(by_id["search_time_s"].to_dict())
    assert analysis.summary["search_time_s"] == pytest.approx(10_680.5 - gap)
    assert analysis.summary["wall_time_s"] == pytest.approx(10_680.5)
    assert analysis.summary["idle_gaps"] == [[START + 35.25, START + 10_000]]
    csv = pd.read_csv(path / "analysis" / "hypervolume.csv", dtype={"trial_id": str}).set_index("trial_id")
    assert csv.loc["d", "search_time_s"] == pytest.approx(10_680.5 - gap)


def test_idle_gaps_and_active_seconds():
    from robnas.analysis._activity import active_seconds, idle_gaps

    spans = [(0, 10), (5, 8), (100, 100), (130, 400), (1000, 1010), (float("nan"), 5)]
    gaps = idle_gaps(spans, idle_gap_s=60)
    assert gaps.tolist() == [[10, 100], [400, 1000]]  # 30 s from 100 to 130 is no gap
    assert active_seconds([5, 50, 120, 700, 1010, float("nan")], 0.0, gaps)[:5].tolist() == [
        5, 10, 30, 310, 1010 - 90 - 600]
    assert np.isnan(active_seconds([float("nan")], 0.0, gaps)[0])
    assert idle_gaps([(0, 0)]).shape == (0, 2)


def _brute_front(values, maximize):
    loss = np.where(maximize, -values, values)
    dominated = [any(np.all(loss[j] <= loss[i]) and np.any(loss[j] < loss[i]) for j in range(len(loss)))
                 for i in range(len(loss))]
    return ~np.array(dominated, dtype=bool)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_front_of_a_directory_matches_brute_force(tmp_path, seed):
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 4, size=(40, 3)) / 4  # few levels: many ties and duplicates
    trials = [trial(f"t{i:02d}", [tuple(p)], start=i) for i, p in enumerate(grid)]
    path = write_search(tmp_path / "s", trials, max_epochs=1)
    objectives = parse_objectives("clean_acc,robust_acc:min,sparsity", [])
    result = analyze_trials(load_experiment(path).trials, objectives, max_epochs=1)
    flags = result.trials.set_index("trial_id")["pareto"]
    expected = _brute_front(grid, np.array([True, False, True]))
    assert [bool(flags[f"t{i:02d}"]) for i in range(40)] == expected.tolist()


# ---------------------------------------------------------------- files and the command


FILES = ("trials.csv", "pareto.csv", "hypervolume.csv", "summary.json", "scatter_matrix.png",
         "hypervolume.png", "learning_curves.png", "report.html")


def test_analyze_writes_every_file(search):
    [analysis] = analyze([search], objectives="clean_acc,robust_acc")
    out = search / "analysis"
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    summary = json.loads((out / "summary.json").read_text())
    keys = ("n_trials", "n_complete", "objectives", "n_pareto", "hypervolume", "reference_point", "knee",
            "failed")
    assert set(keys) <= set(summary)
    assert summary["n_pareto"] == 3 and summary["hypervolume"] == pytest.approx(0.54)
    pareto = pd.read_csv(out / "pareto.csv")
    assert list(pareto["trial_id"]) == ["a", "b", "d"] and set(pareto["arch"]) == {ARCH}
    assert {"clean_acc", "robust_acc", "config/width", "config/arch"} <= set(pareto.columns)
    trials = pd.read_csv(out / "trials.csv", keep_default_na=False).set_index("trial_id")
    assert trials.loc["f", "excluded"] == "diverged" and trials.loc["g", "excluded"] == "failed"
    assert trials.loc["g", "error"] == "ValueError: out of memory in epoch 2"
    assert trials["pareto"].to_dict() == {k: k in "abd" for k in "abcefgdh"}
    for name in ("scatter_matrix.png", "hypervolume.png", "learning_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and 'class="sortable"' in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_several_searches_are_compared_with_one_reference_point(tmp_path):
    first = write_search(tmp_path / "one", standard_trials())
    second = write_search(tmp_path / "two", [trial("x", [(0.2, 0.2, 0.1)] * 3),
                                             trial("y", [(0.1, 0.3, 0.3)] * 3)])
    compare = tmp_path / "cmp"
    analyses = analyze([first, second], objectives="clean_acc,params", out=compare)
    assert analyses[0].summary["reference_point"] == analyses[1].summary["reference_point"] == [0.0, 3030.0]
    names = ["fronts.png", "hypervolume.png", "report.html", "summary.json"]
    assert sorted(p.name for p in compare.iterdir()) == names
    summary = json.loads((compare / "summary.json").read_text())
    assert [s["label"] for s in summary["searches"]] == ["one", "two"]
    for search in (first, second):  # each search keeps its own analysis, and nothing else
        assert sorted(p.name for p in (search / "analysis").iterdir()) == sorted(FILES)
    write_comparison(analyses, tmp_path / "again")
    assert (tmp_path / "again" / "report.html").is_file()


def test_comparing_needs_an_out_directory_outside_every_search(tmp_path, capsys):
    first = write_search(tmp_path / "one", standard_trials())
    second = write_search(tmp_path / "two", standard_trials())
    with pytest.raises(ValueError, match="comparing 2 searches needs --out PATH"):
        analyze([first, second])
    for inside in (first / "analysis", first / "analysis" / "compare", second, second / "trial_a" / "x"):
        with pytest.raises(ValueError, match="inside the search directory"):
            analyze([first, second], out=inside)
    assert not (first / "analysis").exists() and not (second / "analysis").exists()
    assert main(["analyze", str(first), str(second)]) == 2
    assert capsys.readouterr().err == "robnas: error: comparing 2 searches needs --out PATH (a directory outside the searches)\n"
    # The old name still works, with a warning once the comparison is written.
    assert main(["analyze", str(first), str(second), "--compare-dir", str(tmp_path / "cmp")]) == 0
    out, err = capsys.readouterr()
    assert err == "robnas: warning: --compare-dir is deprecated; use --out\n"
    assert f"comparison: {tmp_path / 'cmp'}" in out and (tmp_path / "cmp" / "report.html").is_file()


def test_one_search_writes_to_out_instead_of_its_analysis(tmp_path, capsys):
    search = write_search(tmp_path / "s", standard_trials())
    other = write_search(tmp_path / "other", standard_trials())
    out = tmp_path / "elsewhere" / "a"
    assert main(["analyze", str(search), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES) and not (search / "analysis").exists()
    [analysis] = analyze([search], out=search / "analysis")  # its own analysis: the default, allowed
    assert analysis.out_dir == search / "analysis"
    for bad in (search / "analysis" / "sub", search, other / "analysis"):
        with pytest.raises(ValueError, match="inside the search directory"):
            analyze([search], out=bad)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        analyze([search], out=tmp_path / "file")


def test_plots_have_titles_and_every_axis_a_label_with_its_unit(search):
    from robnas.analysis import _plots

    experiment = load_experiment(search)
    three = parse_objectives("clean_acc,robust_acc,params", [])
    result = analyze_trials(experiment.trials, three, max_epochs=3)
    figures = {
        "scatter": _plots.scatter_matrix_figure([("", result)]),
        "compared": _plots.scatter_matrix_figure([("one", result), ("two", result)]),
        "hypervolume": _plots.hypervolume_curves_figure([("s", result.curve)], three),
        "learning": _plots.learning_curves_figure(experiment.results, ["a", "b"], three),
    }
    for name, figure in figures.items():
        assert figure.get_suptitle(), name
        axes = [ax for ax in figure.axes if ax.get_visible()]
        assert axes, name
        for ax in axes:
            assert "(" in ax.get_xlabel() and "(" in ax.get_ylabel(), (name, ax.get_xlabel(), ax.get_ylabel())
    scatter = figures["scatter"].axes[3]  # row 1, column 0: robust_acc against clean_acc
    assert (scatter.get_xlabel(), scatter.get_ylabel()) == ("clean_acc (fraction; max)", "robust_acc (fraction; max)")
    assert figures["scatter"].axes[8].get_xlabel() == "params (count; min)"
    assert figures["hypervolume"].axes[0].get_ylabel() == "hypervolume (fraction x fraction x count)"
    assert figures["hypervolume"].axes[1].get_xlabel().startswith("search time (s; idle gaps over 60 s")
    legend = [t.get_text() for t in figures["compared"].legends[0].get_texts()]
    assert legend == ["one", "two", "Pareto front (colour: search)", "knee", "other eligible trials",
                      "kept out (fewer epochs, running)"]


def test_report_folds_configs_and_the_comparison_explains_its_markers(tmp_path):
    trials = standard_trials()
    for t in trials:
        t["config"] = {"data_dir": "/a/very/long/path/" * 8, "sparsity_schedule": "gradual"}
    first = write_search(tmp_path / "one", trials)
    second = write_search(tmp_path / "two", standard_trials())
    analyze([first, second], out=tmp_path / "cmp")
    page = (first / "analysis" / "report.html").read_text()
    front = page[page.index("<h2>Pareto front"):page.index("</table>", page.index("<h2>Pareto front"))]
    assert "<th>config</th>" in front and "config/" not in front
    assert front.count("<details><summary>") == 3 and "<dt>sparsity_schedule</dt><dd>gradual</dd>" in front
    assert '<td class="long">|nor_conv_3x3~0|+<wbr>|' in front
    for caption in ("Large dots: the Pareto front", "search time (right)", "one colour per front member"):
        assert caption in page
    comparison = (tmp_path / "cmp" / "report.html").read_text()
    assert "One colour per search (one: red; two: blue). Large dots: the Pareto front" in comparison
    assert "star: the knee" in comparison and "hollow circles: trials kept out of it" in comparison
    assert "One line per search, in its colour." in comparison


def test_nothing_is_written_when_an_input_is_bad(search, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        analyze([search, tmp_path / "missing"], out=tmp_path / "cmp")
    with pytest.raises(ValueError, match="unknown objective"):
        analyze([search], objectives="clean_acc,foo")
    with pytest.raises(ValueError, match="reference point must have 2 finite numbers"):
        analyze([search], objectives="clean_acc,robust_acc", reference_point="0")
    assert not (search / "analysis").exists()


def test_an_empty_running_search_is_analysed(tmp_path):
    path = write_search(tmp_path / "s", [])
    [analysis] = analyze([path])
    assert analysis.summary["n_trials"] == 0 and analysis.summary["knee"] is None
    assert analysis.summary["hypervolume"] == 0.0
    assert sorted(p.name for p in (path / "analysis").iterdir()) == sorted(FILES)


def test_cli_json_prints_summary(search, capsys):
    assert main(["analyze", str(search), "--objectives", "clean_acc,robust_acc", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((search / "analysis" / "summary.json").read_text())
    assert main(["analyze", str(search), "--reference-point", "0,0,-1"]) == 0
    out = capsys.readouterr().out
    assert "front 3" in out and "hypervolume 0.54" in out


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robnas: error: search directory") and err.count("\n") == 1
    assert main(["analyze", str(tmp_path), "--reference-point", "a,b"]) == 2
    assert "not a robnas search" in capsys.readouterr().err


def test_a_system_error_while_writing_is_one_line(search, capsys, monkeypatch):
    def refuse(path, *args):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("robnas.analysis._analyze.atomic_write_text", refuse)
    assert main(["analyze", str(search)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robnas: error: [Errno 13] Permission denied") and err.count("\n") == 1


@pytest.mark.parametrize("settings, message", [
    ({"objectives": 5}, "objectives is not a list of names"),
    ({"objectives": "clean_acc"}, "objectives is not a list of names"),
    ({"objectives": ["clean_acc:up"]}, "direction 'up'"),
])
def test_damaged_objectives_in_robnas_json(tmp_path, settings, message):
    path = write_search(tmp_path / "s", standard_trials())
    (path / "robnas.json").write_text(json.dumps({"settings": settings}))
    with pytest.raises(ValueError, match=message):
        load_experiment(path)


def test_analysis_modules_import_without_ray():
    code = ("import sys; import robnas.analysis._load, robnas.analysis._front, robnas.analysis._analyze, "
            "robnas.analysis._plots, robnas.analysis._report, robnas.analysis._cli; "
            "sys.exit(('ray' in sys.modules) + 2 * ('torch' in sys.modules))")
    subprocess.run([sys.executable, "-c", code], check=True)
