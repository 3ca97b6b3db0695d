"""End-to-end on digits through the command line: --max-params, --time-budget, --points."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from robnas.search._progress import set_verbosity
from robnas.search._study_state import progress, saved_state
from robnas.search.cli import main
from robnas.spaces import Genotype
from robnas.trainables._cost_range import OPS_BY_COST, size_ranges
from robnas.trainables._network import nb201_param_count

pytestmark = pytest.mark.slow

ARCH = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"


@pytest.fixture
def cli(tmp_path):
    """``robnas ARGS`` in this process on a small digits search (PGD-5 evaluation), quiet."""
    config = tmp_path / "small.yaml"
    config.write_text("trial: {eval_steps: 5}\n")

    def robnas(*args: str) -> int:
        options = ["--config", str(config), "--storage-path", str(tmp_path), "--quiet"] if args[0] == "search" else []
        return main([*args, *options])

    yield robnas
    set_verbosity("normal")


def launched(experiment: Path) -> list[tuple[str, dict]]:
    """``(trial id, Tune config)`` of each launched trial, in launch order."""
    state = saved_state(experiment)[1]
    return [(trial_id, json.loads((experiment / f"trial_{trial_id}" / "params.json").read_text()))
            for trial_id in state["launched"]]


def dense_params(config: dict) -> int:
    return nb201_param_count(Genotype.from_config(config), width=config["width"],
                             cells_per_stage=config["cells_per_stage"], in_channels=1, num_classes=10)


def test_max_params_launches_only_networks_under_the_limit(ray_session, tmp_path, cli):
    smallest, largest = size_ranges([OPS_BY_COST] * 6, [8, 16], [1, 2], input_shape=(1, 8, 8), num_classes=10)["params"]
    limit = 60_000
    assert smallest < limit < largest
    assert cli("search", "--name", "small", "--space", "cell,macro", "--num-samples", "4", "--max-epochs", "1",
               "--scheduler", "fifo", "--max-concurrent", "1", "--seed", "1", "--max-params", "60k") == 0
    experiment = tmp_path / "small"
    trials = launched(experiment)
    assert len(trials) == 4
    for trial_id, config in trials:
        assert dense_params(config) <= limit
        rows = (experiment / f"trial_{trial_id}" / "result.json").read_text().splitlines()
        assert json.loads(rows[-1])["params"] <= limit
    assert saved_state(experiment)[1]["infeasible"] > 0  # larger candidates were proposed, not launched
    assert json.loads((experiment / "robnas.json").read_text())["settings"]["max_params"] == limit


def test_time_budget_stops_resumably_and_a_resume_extends_it(ray_session, tmp_path, cli, capsys):
    # Each trial trains 40 epochs (well over 15 s even on a quiet machine): the budget ends the search.
    args = ("--name", "timed", "--space", "cell", "--num-samples", "3", "--max-epochs", "40", "--scheduler", "fifo",
            "--screen", "0", "--max-concurrent", "1")
    assert cli("search", *args, "--time-budget", "15s") == 0
    experiment = tmp_path / "timed"
    out = capsys.readouterr().out
    assert "time budget 15s spent: " in out and f"robnas resume {experiment} --time-budget 30s to continue" in out
    record = json.loads((experiment / "robnas.json").read_text())
    assert record["settings"]["time_budget_s"] == 15.0 and record["elapsed_s"] >= 15.0
    done, _, complete = progress(experiment)
    assert done < 3 and not complete
    first = launched(experiment)[0][0]
    epochs = [json.loads(row)["epoch"] for row in (experiment / f"trial_{first}" / "result.json").read_text().splitlines()]

    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in experiment.rglob("*") if p.is_file()}
    assert cli("resume", str(experiment)) == 2  # spent: refused, nothing touched
    assert "robnas: error: the time budget 15s" in capsys.readouterr().err
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in experiment.rglob("*") if p.is_file()} == before

    # Each resume doubles the budget. On a busy machine starting a trial and training an epoch
    # can take longer than 15 s, so resume until the first trial has written a row beyond those
    # it had (6 times at most: a budget of 16 minutes).
    rows = lambda: [json.loads(row)["epoch"]  # noqa: E731
                    for row in (experiment / f"trial_{first}" / "result.json").read_text().splitlines()]
    budget, resumed = 15, epochs
    for _ in range(6):
        budget *= 2
        assert cli("resume", str(experiment), "--time-budget", f"{budget}s", "--quiet") == 0
        assert re.match(r"time budget \S+ spent: ", capsys.readouterr().out)
        record = json.loads((experiment / "robnas.json").read_text())
        assert record["settings"]["time_budget_s"] == budget and record["elapsed_s"] >= budget
        resumed = rows()
        if len(resumed) > len(epochs):
            break
    assert progress(experiment)[0] < 3
    # Rows written are kept, and the trial continues after its last written epoch: the stop
    # waited for that epoch's checkpoint, so no epoch is trained twice.
    assert len(resumed) > len(epochs) and resumed == list(range(1, len(resumed) + 1))


def test_points_are_launched_first(ray_session, tmp_path, cli):
    points = tmp_path / "points.yaml"
    points.write_text(f"- {{arch: '{ARCH}', width: 8, cells_per_stage: 1}}\n- {{width: 16, cells_per_stage: 2}}\n")
    assert cli("search", "--name", "points", "--space", "cell,macro", "--num-samples", "3", "--max-epochs", "1",
               "--scheduler", "fifo", "--points", str(points)) == 0
    experiment = tmp_path / "points"
    trials = [config for _, config in launched(experiment)]
    assert len(trials) == 3
    cell = Genotype.from_str(ARCH).to_config()
    assert {k: trials[0][k] for k in (*cell, "width", "cells_per_stage")} == {**cell, "width": 8, "cells_per_stage": 1}
    assert (trials[1]["width"], trials[1]["cells_per_stage"]) == (16, 2)
    recorded = json.loads((experiment / "robnas.json").read_text())["settings"]["points"]
    assert recorded == [{**cell, "width": 8, "cells_per_stage": 1}, {"width": 16, "cells_per_stage": 2}]
