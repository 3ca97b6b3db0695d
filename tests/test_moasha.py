from __future__ import annotations

import json
import logging
import math
import pickle
import re
from types import SimpleNamespace
from unittest.mock import MagicMock

import pytest

from robnas.search._moasha import MultiObjectiveASHA

CONTINUE, STOP = "CONTINUE", "STOP"


def _scheduler(**kwargs):
    options = dict(
        time_attr="epoch",
        objectives=("clean_acc", "robust_acc"),
        modes=("max", "max"),
        max_t=10,
        grace_period=1,
        reduction_factor=2,
    )
    options.update(kwargs)
    return MultiObjectiveASHA(**options)


def _report(scheduler, trial_id, epoch, clean, robust):
    trial = SimpleNamespace(trial_id=trial_id, status="RUNNING")
    result = {"epoch": epoch, "clean_acc": clean, "robust_acc": robust}
    return scheduler.on_trial_result(MagicMock(), trial, result)


def _rung(scheduler, milestone):
    return next(recorded for m, recorded in scheduler.get_state()["rungs"] if m == milestone)


# ---------------------------------------------------------------- construction


def test_milestones_like_asha_below_max_t():
    assert _scheduler(max_t=10).milestones == (1, 2, 4, 8)
    assert MultiObjectiveASHA(max_t=27, reduction_factor=3).milestones == (1, 3, 9)
    assert MultiObjectiveASHA(max_t=9, reduction_factor=3).milestones == (1, 3)
    assert MultiObjectiveASHA(max_t=4, grace_period=4).milestones == ()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(max_t=0), "max_t"),
        (dict(max_t=float("inf")), "max_t"),
        (dict(grace_period=0), "grace_period"),
        (dict(grace_period=11), "grace_period"),
        (dict(reduction_factor=1), "reduction_factor"),
        (dict(tie_breaker="random"), "'random'"),
        (dict(objectives="clean_acc", modes=("max",)), "objectives"),
        (dict(objectives=()), "objectives"),
        (dict(objectives=("a", "a")), "distinct"),
        (dict(modes=("max",)), "modes"),
        (dict(modes=("max", "up")), "'up'"),
        (dict(time_attr=""), "time_attr"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _scheduler(**kwargs)


def test_search_properties_from_tune():
    s = _scheduler()
    assert s.set_search_properties(None, None) is True
    assert s.set_search_properties("robust_acc", "max") is True
    assert s.set_search_properties("robust_acc", "min") is False
    assert s.set_search_properties("loss", "min") is False


# ---------------------------------------------------------------- decisions


def test_dominated_trial_stops_and_new_front_point_continues():
    s = _scheduler()
    assert _report(s, "a", 1, 0.5, 0.5) == CONTINUE  # first at the rung
    assert _report(s, "b", 1, 0.4, 0.4) == STOP  # dominated by a; n=2 keeps 1
    assert _report(s, "c", 1, 0.9, 0.1) == CONTINUE  # on the front with a; n=3 keeps 2
    assert list(_rung(s, 1)) == ["a", "b", "c"]
    assert "num_stopped=1" in s.debug_string()


def test_each_rung_is_judged_once_at_the_highest_milestone_reached():
    s = _scheduler()
    assert _report(s, "a", 1, 0.5, 0.5) == CONTINUE
    assert _report(s, "b", 1, 0.6, 0.6) == CONTINUE
    assert _report(s, "a", 1, 0.1, 0.1) == CONTINUE  # rung 1 already recorded for a
    assert _rung(s, 1)["a"] == (0.5, 0.5)
    assert _report(s, "b", 5, 0.7, 0.7) == CONTINUE  # jumps straight to rung 4
    assert "b" in _rung(s, 4) and "b" not in _rung(s, 2)


def test_max_t_stops_unless_told_otherwise():
    assert _report(_scheduler(), "a", 10, 0.9, 0.9) == STOP
    s = _scheduler(stop_last_trials=False)
    assert _report(s, "a", 10, 0.9, 0.9) == CONTINUE


# Rung of five front points x + y = 1 in loss space (maximised as 1 - x, x) at
# x = 0, 1, .35 recorded first; the fifth arrival is x = .45 or x = .7 with rf = 2, so the top
# ceil(5 / 2) = 3 go on: the two ends, then crowding's choice (.7, widest neighbour gap) or the
# epsilon-net's (.45, farthest from both ends).
_FIRST_THREE = [(1.0, 0.0), (0.0, 1.0), (0.65, 0.35)]


@pytest.mark.parametrize(
    "tie_breaker, fourth, fifth, decision",
    [
        ("crowding", (0.55, 0.45), (0.3, 0.7), CONTINUE),
        ("crowding", (0.3, 0.7), (0.55, 0.45), STOP),
        ("epsnet", (0.3, 0.7), (0.55, 0.45), CONTINUE),
        ("epsnet", (0.55, 0.45), (0.3, 0.7), STOP),
    ],
)
def test_tie_breakers_within_the_front(tie_breaker, fourth, fifth, decision):
    s = _scheduler(tie_breaker=tie_breaker)
    for i, vector in enumerate([*_FIRST_THREE, fourth]):
        _report(s, f"t{i}", 1, *vector)
    assert _report(s, "new", 1, *fifth) == decision


def test_crowding_keeps_a_new_extreme_point():
    s = _scheduler()
    for i, vector in enumerate([(0.1, 0.9), (0.9, 0.1), (0.5, 0.5)]):
        _report(s, f"t{i}", 1, *vector)
    # n = 4 keeps 2: the extremes (infinite crowding distance).
    assert _report(s, "extreme", 1, 0.95, 0.05) == CONTINUE
    s = _scheduler()
    for i, vector in enumerate([(0.1, 0.9), (0.9, 0.1), (0.5, 0.5)]):
        _report(s, f"t{i}", 1, *vector)
    assert _report(s, "middle", 1, 0.6, 0.45) == STOP


def test_nan_and_non_numeric_objectives_rank_last_and_stop():
    s = _scheduler()
    assert _report(s, "nan", 1, float("nan"), 0.9) == STOP  # even when first at the rung
    assert _report(s, "ok", 1, 0.1, 0.1) == CONTINUE  # n=2 keeps 1: the finite vector
    assert _report(s, "none", 1, None, 0.5) == STOP
    # Dominated by ok, but n=4 keeps 2 and the NaN vectors rank below it.
    assert _report(s, "ok2", 1, 0.05, 0.05) == CONTINUE
    assert list(_rung(s, 1)) == ["nan", "ok", "none", "ok2"]


def test_missing_keys_skip_with_one_warning(caplog):
    s = _scheduler()
    trial = SimpleNamespace(trial_id="a", status="RUNNING")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert s.on_trial_result(MagicMock(), trial, {"epoch": 1, "clean_acc": 0.5}) == CONTINUE
    assert _rung(s, 1) == {}
    assert sum("robust_acc" in r.message for r in caplog.records) == 1


def test_on_trial_complete_records_without_deciding():
    s = _scheduler()
    trial = SimpleNamespace(trial_id="a", status="TERMINATED")
    s.on_trial_complete(MagicMock(), trial, {"epoch": 3, "clean_acc": 0.5, "robust_acc": 0.4})
    assert _rung(s, 2) == {"a": (0.5, 0.4)}


# ---------------------------------------------------------------- state


def _half_run(scheduler):
    for i, vector in enumerate([(0.5, 0.5), (0.4, 0.6), (0.2, 0.2), (0.9, 0.1)]):
        _report(scheduler, f"t{i}", 1, *vector)
    _report(scheduler, "t0", 2, 0.6, 0.6)


_NEXT = [("t1", 2, 0.7, 0.7), ("t4", 1, 0.3, 0.3), ("t3", 2, 0.5, 0.5), ("t5", 1, 0.95, 0.2)]


def _decisions(scheduler):
    return [_report(scheduler, *args) for args in _NEXT]


def test_save_restore_gives_the_same_decisions(tmp_path):
    original = _scheduler()
    _half_run(original)
    original.save(str(tmp_path / "moasha.json"))
    restored = _scheduler()
    restored.restore(str(tmp_path / "moasha.json"))
    assert restored.get_state() == original.get_state()
    assert _decisions(restored) == _decisions(original) == [CONTINUE, STOP, STOP, CONTINUE]


def test_pickle_round_trip_keeps_rungs():
    original = _scheduler(tie_breaker="epsnet")
    _half_run(original)
    copy = pickle.loads(pickle.dumps(original))
    assert copy.get_state() == original.get_state()
    assert _decisions(copy) == _decisions(original)


def test_state_callback_carries_rungs_through_a_tuner_style_pickle():
    # Tune pickles TuneConfig (scheduler) and RunConfig (callbacks) together in tuner.pkl.
    fresh = _scheduler()
    fresh_scheduler, callbacks = pickle.loads(pickle.dumps((fresh, [fresh.state_callback()])))
    running = _scheduler()
    _half_run(running)
    saved = running.state_callback().get_state()  # what Tune writes at an experiment checkpoint
    callbacks[0].set_state(pickle.loads(pickle.dumps(saved)))  # what Tune does on restore
    assert fresh_scheduler.get_state() == running.get_state()
    assert _decisions(fresh_scheduler) == _decisions(running)


def test_set_state_rejects_other_settings():
    state = _scheduler().get_state()
    with pytest.raises(ValueError, match="objectives"):
        _scheduler(objectives=("clean_acc", "sparsity")).set_state(state)
    with pytest.raises(ValueError, match="milestones"):
        _scheduler(max_t=20).set_state(state)


def test_saved_state_is_json_and_non_finite_values_round_trip(tmp_path):
    original = _scheduler()
    _half_run(original)
    _report(original, "diverged", 1, float("nan"), float("inf"))
    _report(original, "worst", 1, float("-inf"), 0.0)
    path = tmp_path / "moasha.json"
    original.save(str(path))
    data = json.loads(path.read_text(encoding="utf-8"), parse_constant=pytest.fail)  # strict JSON
    assert data["objectives"] == ["clean_acc", "robust_acc"]
    assert dict(data["rungs"])[1]["diverged"] == [None, "inf"]
    restored = _scheduler()
    restored.restore(str(path))
    vector = _rung(restored, 1)["diverged"]
    assert math.isnan(vector[0]) and vector[1] == float("inf")
    assert _rung(restored, 1)["worst"] == (float("-inf"), 0.0)
    assert list(_rung(restored, 1)) == list(_rung(original, 1))  # arrival order is kept
    assert _decisions(restored) == _decisions(original)


def test_state_callback_hands_tune_json_text():
    running = _scheduler()
    _half_run(running)
    _report(running, "diverged", 1, float("nan"), 0.5)
    saved = running.state_callback().get_state()
    assert list(saved) == ["robnas_json"] and isinstance(saved["robnas_json"], str)
    restored = _scheduler()
    restored.state_callback().set_state(pickle.loads(pickle.dumps(saved)))
    assert math.isnan(_rung(restored, 1)["diverged"][0])
    assert _decisions(restored) == _decisions(running)


def test_state_callback_reads_the_plain_state_of_robnas_0_1():
    running = _scheduler()
    _half_run(running)
    restored = _scheduler()
    restored.state_callback().set_state({"multi_objective_asha": running.get_state()})
    assert restored.get_state() == running.get_state()


class _WritesMarker:
    """Unpickling calls ``open(marker, "w")``: the file appears if the pickle is ever loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_crafted_pickle_at_the_save_path_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "moasha.pkl"
    path.write_bytes(pickle.dumps(_WritesMarker(marker)))
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        path.write_bytes(pickle.dumps(_WritesMarker(marker), protocol=protocol))
        with pytest.raises(ValueError, match=re.escape(str(path))):
            _scheduler().restore(str(path))
        assert not marker.exists()


def _saved(tmp_path, **changes):
    data = json.loads(_saved_text(tmp_path))
    data.update(changes)
    return data  # with the file's header, {"kind": ..., "version": ...}


def _saved_text(tmp_path):
    s = _scheduler()
    _half_run(s)
    s.save(str(tmp_path / "good.json"))
    return (tmp_path / "good.json").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda d: d.pop("num_stopped"), "missing keys \\['num_stopped'\\]"),
        (lambda d: d.update(extra=1), "unknown keys \\['extra'\\]"),
        (lambda d: d.update(objectives="clean_acc"), "'objectives' has type str"),
        (lambda d: d.update(objectives=["clean_acc", "sparsity"]), "saved objectives"),
        (lambda d: d.update(modes=["max", "min"]), "saved modes"),
        (lambda d: d.update(modes=["max", 1]), "modes must be a list of strings"),
        (lambda d: d.update(num_stopped=-1), "num_stopped must be an integer >= 0"),
        (lambda d: d.update(num_stopped=True), "'num_stopped' has type bool"),
        (lambda d: d["rungs"].pop(), "milestones"),
        (lambda d: d["rungs"].append([16, {}]), "milestones"),
        (lambda d: d["rungs"][0].append(1), "a rung must be"),
        (lambda d: d["rungs"][0].__setitem__(0, "8"), "is not a number"),
        (lambda d: d["rungs"][-1][1].__setitem__("t0", [0.5]), "list of 2 objective values"),
        (lambda d: d["rungs"][-1][1].__setitem__("t0", [0.5, "high"]), "must be a number"),
        (lambda d: d["rungs"][-1][1].__setitem__("t0", [0.5, "nan"]), "must be a number"),
        (lambda d: d["rungs"][-1][1].__setitem__("t0", [0.5, True]), "must be a number"),
        (lambda d: d.update(kind="ASHA"), "not a robnas multi-objective ASHA state"),
        (lambda d: d.update(version=2), "version 2"),
    ],
)
def test_a_bad_state_file_raises_value_error_naming_file_and_problem(tmp_path, change, match):
    data = _saved(tmp_path)
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=match) as error:
        _scheduler().restore(str(path))
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "not a readable robnas multi-objective ASHA state"),
        ("[1, 2]", "not a robnas multi-objective ASHA state"),
        ('{"kind": "multi-objective ASHA", "version": NaN}', "NaN"),
        ('{"kind": "multi-objective ASHA", "version": 1}', "missing keys"),
    ],
)
def test_a_file_that_is_not_a_state_raises_value_error(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=match) as error:
        _scheduler().restore(str(path))
    assert str(path) in str(error.value)
    path.write_bytes(b"\x80\x04\x95 binary")
    with pytest.raises(ValueError, match="not a readable"):
        _scheduler().restore(str(path))


def test_a_bad_callback_state_raises_value_error():
    callback = _scheduler().state_callback()
    with pytest.raises(ValueError, match="robnas_json"):
        callback.set_state({"something": "else"})
    with pytest.raises(ValueError, match="not valid JSON"):
        callback.set_state({"robnas_json": "{"})
    with pytest.raises(ValueError, match="multi_objective_asha"):
        callback.set_state({"robnas_json": "{}"})


# ---------------------------------------------------------------- sparsity at the rungs


def _sparse_report(scheduler, trial_id, robust, measured, target):
    trial = SimpleNamespace(trial_id=trial_id, status="RUNNING")
    result = {"epoch": 1, "robust_acc": robust, "sparsity": measured, "target_sparsity": target}
    return scheduler.on_trial_result(MagicMock(), trial, result)


@pytest.mark.parametrize("rung_metrics, ranked", [(None, 0.0), ({"sparsity": "target_sparsity"}, 0.9)])
def test_a_gradually_pruned_trial_is_ranked_on_the_sparsity_it_will_reach(rung_metrics, ranked):
    """At rung 1 a gradual trial has pruned nothing yet (measured sparsity 0); ranked on its
    target, 0.9, it dominates a dense trial of the same accuracy and continues."""
    scheduler = _scheduler(objectives=("robust_acc", "sparsity"), rung_metrics=rung_metrics)
    assert _sparse_report(scheduler, "dense", 0.6, 0.0, 0.0) == CONTINUE
    action = _sparse_report(scheduler, "gradual", 0.6, 0.0, 0.9)
    assert _rung(scheduler, 1)["gradual"] == (0.6, ranked)
    if rung_metrics:
        assert action == CONTINUE


def test_results_without_the_rung_metric_are_ranked_on_the_objective():
    """A table's results have no target_sparsity: the measured sparsity is ranked."""
    scheduler = _scheduler(objectives=("robust_acc", "sparsity"), rung_metrics={"sparsity": "target_sparsity"})
    trial = SimpleNamespace(trial_id="t", status="RUNNING")
    scheduler.on_trial_result(MagicMock(), trial, {"epoch": 1, "robust_acc": 0.5, "sparsity": 0.3})
    assert _rung(scheduler, 1)["t"] == (0.5, 0.3)


def test_a_scheduler_pickled_before_rung_metrics_still_reads_results():
    scheduler = _scheduler()
    del scheduler._rung_metrics
    assert _report(scheduler, "t", 1, 0.9, 0.5) == CONTINUE
