"""The time budget: a search's running time adds up over its runs and stops it once spent (fake clock)."""

from __future__ import annotations

import json
import pickle

from robnas.search._elapsed import budget_spent, read_elapsed
from robnas.search._time_budget import TimeBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def experiment(tmp_path, *, budget=None, elapsed=0.0):
    data = {"settings": {"name": "x", "time_budget_s": budget}, "resolved_trial": {}}
    if elapsed is not None:
        data["elapsed_s"] = elapsed
    (tmp_path / "robnas.json").write_text(json.dumps(data))
    return tmp_path


def callback(path, clock, stops, **options):
    return TimeBudget(path, clock=clock, stop=lambda: stops.append(clock.now) is None, **options)


def test_running_time_adds_up_over_runs_and_the_search_stops_once_when_spent(tmp_path):
    path, clock, stops = experiment(tmp_path, budget=60.0), Clock(), []
    first = callback(path, clock, stops, period_s=5.0)
    first.setup()
    clock.now += 4
    first.on_step_begin(0, [])
    assert read_elapsed(path) == 0.0  # written every 5 s
    clock.now += 26
    first.on_step_begin(1, [])
    assert read_elapsed(path) == 30.0 and not stops
    clock.now += 3
    first.on_experiment_end([])  # e.g. Ctrl-C after 33 s
    assert read_elapsed(path) == 33.0 and budget_spent(path) is None

    clock.now += 500  # time between the runs does not count
    second = pickle.loads(pickle.dumps(first))  # as Tune restores it, with the path only
    assert second.__getstate__() == {"path": str(path)}
    second.clock, second.stop = clock, first.stop
    second.setup()
    clock.now += 26
    second.on_step_begin(0, [])
    assert not stops and second.elapsed_s == 59.0
    clock.now += 1
    second.on_step_begin(1, [])
    second.on_step_begin(2, [])
    assert stops == [clock.now]  # asked once
    assert read_elapsed(path) == 60.0 and budget_spent(path) == (60.0, 60.0)


def test_a_resume_reads_the_raised_budget(tmp_path):
    path, clock, stops = experiment(tmp_path, budget=10.0, elapsed=10.0), Clock(), []
    settings = json.loads((path / "robnas.json").read_text())
    settings["settings"]["time_budget_s"] = 20.0  # what robnas resume --time-budget 20s writes
    (path / "robnas.json").write_text(json.dumps(settings))
    budget = callback(path, clock, stops)
    budget.setup()
    clock.now += 9.5
    budget.on_step_begin(0, [])
    assert not stops
    clock.now += 0.5
    budget.on_step_begin(1, [])
    assert stops and budget_spent(path) == (20.0, 20.0)


def test_without_a_budget_the_time_is_kept_and_nothing_stops(tmp_path):
    path, clock, stops = experiment(tmp_path, elapsed=None), Clock(), []
    budget = callback(path, clock, stops)
    budget.setup()
    clock.now += 10**6
    budget.on_step_begin(0, [])
    budget.on_experiment_end([])
    assert not stops and read_elapsed(path) == 10**6 and budget_spent(path) is None
