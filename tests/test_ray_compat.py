"""Ray internals robnas relies on: ASHA rungs as JSON, SearchGenerator counters, Tune's env."""

from __future__ import annotations

import copy
import json
import os
import pickle
from types import SimpleNamespace
from unittest.mock import MagicMock

import numpy as np
import pytest
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import SearchGenerator, Searcher

from robnas.search._ray_compat import (
    asha_state,
    check_ray_compat,
    load_asha_state,
    reopen_search_generator,
    set_trial_budget,
    trials_created,
    tune_environment,
)
from robnas.search._schedulers import _ASHAStateCallback

NAN = float("nan")


def _asha(**kwargs):
    options = dict(time_attr="epoch", metric="score", mode="max", max_t=10, grace_period=1,
                   reduction_factor=2, brackets=2)
    options.update(kwargs)
    return ASHAScheduler(**options)


def _trial(trial_id):
    return SimpleNamespace(trial_id=trial_id, status="RUNNING")


# Results (trial, epoch, score) before and after the interruption; "+" adds a trial (its
# bracket is drawn from numpy's global RNG, seeded alike for both runs), "done" completes one.
_BEFORE = [
    ("+", "t0"), ("+", "t1"), ("+", "t2"), ("+", "t3"), ("+", "t4"),
    ("t0", 1, 0.5), ("t1", 1, 0.7), ("t2", 1, NAN), ("t3", 1, 0.2), ("t4", 1, 0.9),
    ("t0", 2, 0.6), ("t1", 2, 0.4), ("done", "t3", 1, 0.2),
]
_AFTER = [
    ("+", "t5"), ("+", "t6"),
    ("t5", 1, 0.55), ("t6", 1, 0.1), ("t4", 2, 0.95), ("t2", 2, NAN), ("t0", 4, 0.3),
    ("t1", 4, 0.8), ("t5", 2, 0.65), ("t4", 4, 0.2), ("t6", 2, 0.3), ("t4", 8, 0.99), ("t0", 10, 0.9),
]


def _feed(scheduler, steps):
    decisions = []
    for step in steps:
        if step[0] == "+":
            scheduler.on_trial_add(MagicMock(), _trial(step[1]))
        elif step[0] == "done":
            _, trial_id, epoch, score = step
            scheduler.on_trial_complete(MagicMock(), _trial(trial_id), {"epoch": epoch, "score": score})
        else:
            trial_id, epoch, score = step
            decisions.append(scheduler.on_trial_result(MagicMock(), _trial(trial_id), {"epoch": epoch, "score": score}))
    return decisions


def _run(scheduler, steps, seed):
    np.random.seed(seed)
    return _feed(scheduler, steps)


def test_asha_json_round_trip_reproduces_the_uninterrupted_decisions():
    uninterrupted = _asha()
    _run(uninterrupted, _BEFORE, seed=0)
    expected = _run(uninterrupted, _AFTER, seed=1)

    interrupted = _asha()
    _run(interrupted, _BEFORE, seed=0)
    text = json.dumps(asha_state(interrupted), allow_nan=False)  # strict JSON: NaN is null
    resumed = _asha()
    load_asha_state(resumed, json.loads(text), "test")
    assert asha_state(resumed) == asha_state(interrupted)
    assert _run(resumed, _AFTER, seed=1) == expected
    assert asha_state(resumed) == asha_state(uninterrupted)
    assert "STOP" in expected and "CONTINUE" in expected


def test_asha_state_is_plain_data_with_trial_ids_as_keys():
    scheduler = _asha()
    _run(scheduler, _BEFORE, seed=0)
    state = asha_state(scheduler)
    assert set(state) == {"brackets", "trial_brackets", "num_stopped", "counter"}
    assert set(state["trial_brackets"]) == {"t0", "t1", "t2", "t4"}  # t3 completed
    first_rung = {t: r for b in state["brackets"] for m, rung in b if m == 1 for t, r in rung.items()}
    assert first_rung["t2"] is None and first_rung["t1"] == 0.7
    assert state["num_stopped"] == scheduler._num_stopped


def test_asha_state_callback_round_trip_through_tunes_pickle():
    running, fresh = _asha(), _asha()
    _run(running, _BEFORE, seed=0)
    saved = _ASHAStateCallback(running).get_state()
    assert list(saved) == ["robnas_json"] and isinstance(saved["robnas_json"], str)
    _ASHAStateCallback(fresh).set_state(pickle.loads(pickle.dumps(saved)))
    assert asha_state(fresh) == asha_state(running)
    assert _run(fresh, _AFTER, seed=1) == _run(running, _AFTER, seed=1)


def test_asha_state_callback_reads_the_copies_saved_by_robnas_0_1():
    running, fresh = _asha(), _asha()
    _run(running, _BEFORE, seed=0)
    legacy = {"asha": copy.deepcopy({k: getattr(running, k) for k in
                                     ("_brackets", "_trial_info", "_num_stopped", "_counter")})}
    _ASHAStateCallback(fresh).set_state(pickle.loads(pickle.dumps(legacy)))
    assert asha_state(fresh) == asha_state(running)
    assert _run(fresh, _AFTER, seed=1) == _run(running, _AFTER, seed=1)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda d: d.pop("counter"), "missing keys \\['counter'\\]"),
        (lambda d: d["brackets"].pop(), "1 saved brackets"),
        (lambda d: d["brackets"][0].pop(), "milestones"),
        (lambda d: d["brackets"][0][0].__setitem__(0, 16), "milestones"),
        (lambda d: d["brackets"][0][-1][1].__setitem__("t0", "0.5"), "'t0' must be a number"),
        (lambda d: d["trial_brackets"].__setitem__("t0", 2), "bracket 2, not in 0..1"),
        (lambda d: d.__setitem__("num_stopped", -3), "num_stopped must be an integer >= 0"),
    ],
)
def test_load_asha_state_rejects_bad_data_and_changes_nothing(change, match):
    source = _asha()
    _run(source, _BEFORE, seed=0)
    data = json.loads(json.dumps(asha_state(source)))
    change(data)
    target = _asha()
    before = asha_state(target)
    with pytest.raises(ValueError, match=match):
        load_asha_state(target, data, "callback-states.pkl")
    assert asha_state(target) == before


def test_asha_state_callback_rejects_other_content():
    callback = _ASHAStateCallback(_asha())
    with pytest.raises(ValueError, match="robnas_json"):
        callback.set_state({"asha": {"_brackets": []}})
    with pytest.raises(ValueError, match="expected \\{'asha'"):
        callback.set_state({"robnas_json": "[]"})


# ---------------------------------------------------------------- the compatibility check


def _drop_after_init(monkeypatch, cls, name):
    original = cls.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        delattr(self, name)

    monkeypatch.setattr(cls, "__init__", init)


def test_check_passes_on_the_installed_ray():
    check_ray_compat()


@pytest.mark.parametrize("name", ["_brackets", "_trial_info", "_num_stopped", "_counter"])
def test_check_names_a_missing_asha_attribute_in_one_line(monkeypatch, name):
    import ray

    _drop_after_init(monkeypatch, ASHAScheduler, name)
    with pytest.raises(RuntimeError) as error:
        check_ray_compat()
    message = str(error.value)
    assert message == (f"robnas: Ray {ray.__version__} changed ASHAScheduler internals (no {name}); "
                       "robnas is tested with ray 2.40-2.60")
    assert "\n" not in message


def test_check_notices_a_changed_rung_shape(monkeypatch):
    original = ASHAScheduler.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        for bracket in self._brackets:
            bracket._rungs = [SimpleNamespace(milestone=m, recorded=r) for m, r in bracket._rungs]

    monkeypatch.setattr(ASHAScheduler, "__init__", init)
    with pytest.raises(RuntimeError, match="ASHAScheduler internals \\(a rung is not"):
        check_ray_compat()


@pytest.mark.parametrize("name", ["_counter", "_total_samples", "_finished"])
def test_check_names_a_missing_search_generator_attribute(monkeypatch, name):
    from ray.tune.search.search_algorithm import SearchAlgorithm

    _drop_after_init(monkeypatch, SearchGenerator, name)
    monkeypatch.delattr(SearchAlgorithm, name, raising=False)  # ray 2.60 has a class-level _finished
    with pytest.raises(RuntimeError, match=f"changed SearchGenerator internals \\(no {name}\\); robnas is tested"):
        check_ray_compat()


def test_check_notices_a_budget_that_is_finished_ignores(monkeypatch):
    monkeypatch.setattr(SearchGenerator, "is_finished", lambda self: self._counter >= self._total_samples)
    with pytest.raises(RuntimeError, match="is_finished\\(\\) ignores"):
        check_ray_compat()


def test_search_generator_counters():
    generator = SearchGenerator(Searcher())
    assert trials_created(generator) == 0 and generator.is_finished()
    set_trial_budget(generator, 5)
    assert not generator.is_finished() and generator.total_samples == 5
    generator.set_finished()  # what Tune does when the searcher returns FINISHED
    assert generator.is_finished()
    reopen_search_generator(generator)
    assert not generator.is_finished() and trials_created(generator) == 0


# ---------------------------------------------------------------- environment


def test_tune_environment_sets_and_restores(monkeypatch):
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "auto")
    monkeypatch.delenv("RAY_AIR_NEW_OUTPUT", raising=False)
    with tune_environment(state_period_s="2"):
        assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "2"
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"
    assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "auto"
    assert "RAY_AIR_NEW_OUTPUT" not in os.environ


def test_tune_environment_keeps_the_users_output_choice_and_restores_on_error(monkeypatch):
    monkeypatch.delenv("TUNE_GLOBAL_CHECKPOINT_S", raising=False)
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1")
    with pytest.raises(KeyError), tune_environment(state_period_s="2"):
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "1"
        assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "2"
        raise KeyError("fit failed")
    assert "TUNE_GLOBAL_CHECKPOINT_S" not in os.environ
    assert os.environ["RAY_AIR_NEW_OUTPUT"] == "1"


_WORKER_NICENESS = """
import os, ray
from robnas.search._run import init_ray
init_ray(None)
print(ray.get(ray.remote(lambda: os.nice(0)).options(num_cpus=0).remote()), flush=True)
ray.shutdown()
"""


@pytest.mark.slow
@pytest.mark.parametrize(("given", "expected"), [(None, 0), ("7", 7)])
def test_a_local_ray_runs_trial_workers_at_normal_priority_unless_the_user_says_otherwise(given, expected):
    """Ray's own default, niceness 15, leaves trials almost no CPU on a busy machine."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RAY_worker_niceness"}
    if given is not None:
        env["RAY_worker_niceness"] = given
    out = subprocess.run([sys.executable, "-c", _WORKER_NICENESS], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip().splitlines()[-1]) == expected + os.nice(0)
