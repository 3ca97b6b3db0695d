"""The study searcher: Optuna through ask/tell, no isomorph twice, a budget, JSON state."""

from __future__ import annotations

import json
import math
import os
import pickle

import pytest
from ray import tune
from ray.tune.search import Searcher

from robnas.search._json_state import StateError
from robnas.search._study import StudySearcher
from robnas.search._study_state import set_budget
from robnas.spaces import OPS, Genotype
from robnas.spaces._keys import config_key

# Two isomorphic cells: the ops on edges that cannot reach the output do not matter.
A = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
B = "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|none~2|"
C = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def cell(arch, **rest):
    return {**Genotype.from_str(arch).to_config(), **rest}


def space(**extra):
    return {**{key: tune.choice(OPS) for key in cell(C)}, **extra}


def searcher(points=(), *, sampler="random", objectives=None, **options):
    s = StudySearcher(sampler, objectives=objectives, points_to_evaluate=points, **options)
    s.set_search_properties(None, None, space())
    return s


def states(s):
    return [t.state.name for t in s.study.trials]


def test_config_key_joins_isomorphic_cells_only():
    assert Genotype.from_str(A).canonical() == Genotype.from_str(B).canonical()
    assert config_key(cell(A, width=8)) == config_key(cell(B, width=8))
    assert config_key(cell(A, width=8)) != config_key(cell(A, width=16))
    assert config_key(cell(A)) != config_key(cell(C))
    assert config_key({"arch": A}) == config_key(cell(B))


def test_an_isomorph_of_a_finished_trial_is_skipped_and_learnt_with_its_values():
    s = searcher([cell(A), cell(B), cell(C)])
    assert s.suggest("t1") == cell(A)
    s.on_trial_complete("t1", {"score": 0.7})
    assert s.suggest("t2") == cell(C)
    assert s.num_duplicates == 1
    trials = s.study.trials
    assert states(s) == ["COMPLETE", "COMPLETE", "RUNNING"]
    assert trials[0].value == trials[1].value == 0.7
    assert trials[1].user_attrs == {"duplicate_of": "t1"} and trials[1].params == cell(B)
    assert trials[2].user_attrs["trial_id"] == "t2"


def test_an_isomorph_of_a_running_trial_leaves_no_trial_in_the_study():
    s = searcher([cell(A), cell(B), cell(C)])
    s.suggest("t1")
    assert s.suggest("t2") == cell(C)
    assert states(s) == ["RUNNING", "RUNNING"]


def test_nan_and_errors_are_failed_trials_of_the_study():
    s = searcher([cell(A), cell(C)])
    s.suggest("t1")
    s.suggest("t2")
    s.on_trial_complete("t1", {"score": math.nan})
    s.on_trial_complete("t2", None, error=True)
    s.on_trial_complete("t2", {"score": 1.0})  # told twice: the first answer stands
    assert states(s) == ["FAIL", "FAIL"]


def test_the_budget_and_an_exhausted_space_end_the_search():
    s = searcher(budget=3)
    assert all(isinstance(s.suggest(f"t{i}"), dict) for i in range(3))
    assert s.suggest("t3") == Searcher.FINISHED
    tiny = StudySearcher("random", max_retries=20)
    tiny.set_search_properties(None, None, {"width": tune.choice([8, 16])})
    assert [tiny.suggest(f"t{i}") for i in range(3)][2] == Searcher.FINISHED


def test_seeded_searchers_are_reproducible_for_every_sampler():
    for sampler, objectives in (("random", None), ("tpe", None), ("motpe", ("a", "b:min")), ("nsga2", ("a", "b"))):
        def run():
            s = searcher(sampler=sampler, objectives=objectives, seed=3)
            keys = []
            for i in range(20):
                config = s.suggest(f"t{i}")
                keys.append(config_key(config))
                s.on_trial_complete(f"t{i}", {"score": i % 4 / 4, "a": (i % 3) / 3, "b": float(i % 5)})
            return keys
        first = run()
        assert first == run() and len(set(first)) == 20, sampler


def _drive(s, ids):
    keys = []
    for i in ids:
        config = s.suggest(f"t{i}")
        keys.append(config_key(config))
        if i % 4 != 3:  # one in four is still running when the state is saved
            s.on_trial_complete(f"t{i}", {"a": float(i % 3), "b": float(i % 5)})
    return keys


@pytest.mark.parametrize("sampler", ["motpe", "nsga2"])
def test_json_state_restores_the_exact_next_suggestions(tmp_path, sampler):
    def fresh():
        return searcher(sampler=sampler, objectives=("a", "b"), seed=3)

    one = fresh()
    _drive(one, range(10))
    one.save(str(tmp_path / "state.json"))
    # Tune hands the space only to a new search: the restored searcher takes it from the state.
    two = StudySearcher(sampler, objectives=("a", "b"), seed=3)
    two.restore(str(tmp_path / "state.json"))
    assert [t.params for t in two.study.trials] == [t.params for t in one.study.trials]
    two.on_trial_complete("t3", {"a": 1.0, "b": 1.0})  # a trial running at the save finishes
    one.on_trial_complete("t3", {"a": 1.0, "b": 1.0})
    assert _drive(one, range(10, 20)) == _drive(two, range(10, 20))
    assert json.loads((tmp_path / "state.json").read_text())["kind"] == "searcher"


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['ROBNAS_MARKER']}",))


def test_a_crafted_pickle_in_place_of_the_state_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("ROBNAS_MARKER", str(marker))
    path = tmp_path / StudySearcher.CKPT_FILE_TMPL.format("2026-01-01_00-00-00")
    path.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(StateError, match="not a readable robnas searcher state"):
        searcher().restore_from_dir(str(tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],
    lambda text: text.replace('"sampler":"random"', '"sampler":"tpe"'),
    lambda text: text.replace('"budget":null', '"budget":-4'),
    lambda text: text.replace('"launched":{', '"launched":{"x":{"number":99,"key":"k","config":{},"done":false},'),
    lambda text: text.replace('"kind":"searcher"', '"kind":"scheduler"'),
])
def test_a_damaged_state_is_refused_with_the_file_named(tmp_path, damage):
    s = searcher([cell(A)])
    s.suggest("t1")
    s.save(str(tmp_path / "state.json"))
    (tmp_path / "state.json").write_text(damage((tmp_path / "state.json").read_text()))
    with pytest.raises(StateError, match="state.json"):
        searcher().restore(str(tmp_path / "state.json"))


def test_set_budget_extends_a_finished_search(tmp_path):
    s = searcher(budget=2)
    s.suggest("t0"), s.suggest("t1")
    assert s.suggest("t2") == Searcher.FINISHED
    s.save(str(tmp_path / StudySearcher.CKPT_FILE_TMPL.format("a")))
    set_budget(tmp_path, 4)
    restored = searcher(budget=2)
    restored.restore_from_dir(str(tmp_path))
    assert isinstance(restored.suggest("t2"), dict) and restored.budget == 4
    with pytest.raises(StateError, match="no saved searcher state"):
        set_budget(tmp_path / "nothing", 3)


def test_candidates_above_a_size_limit_are_told_infeasible_and_the_budget_still_fills():
    from robnas.search._size_limits import SizeLimits
    from robnas.trainables._network import nb201_param_count

    shape = {"width": 8, "cells_per_stage": 1}
    params = lambda config: nb201_param_count(Genotype.from_config(config), **shape, in_channels=1)  # noqa: E731
    limit = params(cell(C))  # C has three 3x3 convolutions: many cells are larger
    limits = SizeLimits({"params": limit}, shape, input_shape=(1, 8, 8), num_classes=10)
    s = searcher(sampler="tpe", budget=10, limits=limits)
    launched = []
    for i in range(11):
        config = s.suggest(f"t{i}")
        if config is Searcher.FINISHED:
            break
        launched.append(config)
        s.on_trial_complete(f"t{i}", {"score": 1.0 - params(config) / limit})  # TPE is pushed to large cells
    assert len(launched) == 10 and all(params(config) <= limit for config in launched)
    infeasible = [t for t in s.study.trials if "infeasible" in t.user_attrs]
    assert len(infeasible) == s.num_infeasible > 0
    assert all(t.state.name == "FAIL" and params(t.params) > limit for t in infeasible)
    assert all("> max_params" in t.user_attrs["infeasible"] for t in infeasible)
    assert [t.state.name for t in s.study.trials].count("COMPLETE") == 10
    assert StudySearcher("tpe", limits=limits).get_state()["infeasible"] == 0
