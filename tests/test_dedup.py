"""The deduplicating searcher: isomorphic cells are launched once; state survives a save."""

from __future__ import annotations

import math

from ray.tune.search import Searcher

from robnas.search._dedup import DedupSearcher, config_key
from robnas.search._searchers import make_searcher
from robnas.spaces._genotype import Genotype

# Two isomorphic cells: the ops on edges that cannot reach the output do not matter.
A = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
B = "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|none~2|"
C = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


class ScriptedSearcher(Searcher):
    """Suggests a fixed list of configs and records what it is told."""

    def __init__(self, configs):
        super().__init__(metric="score", mode="max")
        self.configs = list(configs)
        self.completed = {}

    def suggest(self, trial_id):
        return self.configs.pop(0) if self.configs else Searcher.FINISHED

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed[trial_id] = (result, error)


def cell(arch, **rest):
    return {**Genotype.from_str(arch).to_config(), **rest}


def test_config_key_joins_isomorphic_cells_only():
    assert Genotype.from_str(A).canonical() == Genotype.from_str(B).canonical()
    assert config_key(cell(A, width=8)) == config_key(cell(B, width=8))
    assert config_key(cell(A, width=8)) != config_key(cell(A, width=16))
    assert config_key(cell(A)) != config_key(cell(C))
    assert config_key({"arch": A}) == config_key(cell(B))


def test_duplicates_are_skipped_and_told_the_original_result():
    inner = ScriptedSearcher([cell(A), cell(B), cell(C), cell(A)])
    searcher = DedupSearcher(inner, objectives=("score",))
    assert searcher.suggest("t1") == cell(A)
    searcher.on_trial_complete("t1", {"score": 0.7})
    # B is isomorphic to A: skipped, and the inner searcher learns A's score for it.
    assert searcher.suggest("t2") == cell(C)
    told = [v for k, v in inner.completed.items() if k.startswith("t2")]
    assert told == [({"score": 0.7}, False)]
    # A again, while nothing else is left: the searcher is finished.
    assert searcher.suggest("t3") == Searcher.FINISHED
    assert searcher.num_duplicates == 2


def test_duplicate_of_a_running_trial_is_told_as_failed():
    inner = ScriptedSearcher([cell(A), cell(B), cell(C)])
    searcher = DedupSearcher(inner)
    searcher.suggest("t1")
    assert searcher.suggest("t2") == cell(C)
    assert [v for k, v in inner.completed.items() if k.startswith("t2")] == [(None, True)]


def test_nan_results_are_told_as_failed():
    inner = ScriptedSearcher([cell(C)])
    searcher = DedupSearcher(inner, objectives=("clean_acc",))
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", {"clean_acc": math.nan})
    assert list(inner.completed.values()) == [(None, True)]


def test_seeded_optuna_search_is_reproducible_and_restorable(tmp_path):
    from ray import tune

    space = {key: tune.choice(["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"])
             for key in Genotype.from_str(C).to_config()}

    def fresh():
        inner = make_searcher("motpe", objectives=("a", "b"), modes=("max", "max"), seed=3)
        searcher = DedupSearcher(inner, objectives=("a", "b"))
        searcher.set_search_properties(None, None, space)
        return searcher

    def run(searcher, ids):
        out = []
        for i in ids:
            config = searcher.suggest(f"t{i}")
            out.append(config_key(config))
            searcher.on_trial_complete(f"t{i}", {"a": float(i % 3), "b": float(i % 5)})
        return out

    first, second = fresh(), fresh()
    assert run(first, range(12)) == run(second, range(12))
    assert len(set(run(fresh(), range(12)))) == 12
    # save after 6, restore into a new searcher: the next suggestions are the same
    one = fresh()
    run(one, range(6))
    one.save(str(tmp_path / "state.pkl"))
    two = fresh()
    two.restore(str(tmp_path / "state.pkl"))
    assert run(one, range(6, 12)) == run(two, range(6, 12))
