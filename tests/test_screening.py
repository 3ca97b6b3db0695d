"""Screening: best-predicted launches, screened-out candidates leave no trial in the study, no
isomorph twice, exploration share, exact save/restore; the proxies of real candidates."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from ray.tune.search import Searcher

from robnas.search._candidate_proxies import CandidateScorer, dataset_batch, network_of, score_network
from robnas.search._encoding import decode_trial
from robnas.search._screening import Candidate, Screen
from robnas.search._study import StudySearcher
from robnas.spaces._genotype import OPS, Genotype
from robnas.spaces._keys import config_key
from robnas.trainables._counting import count_parameters

# A and B are isomorphic (the ops on edges that cannot reach the output do not matter).
A = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
B = "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|none~2|"
C = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
D = "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
E = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|skip_connect~2|"


def cell(arch, **rest):
    return {**Genotype.from_str(arch).to_config(), **rest}


class CountingScorer:
    """Proxy ``params`` = a fixed score per cell class (default: 3x3 convolutions + width / 100)."""

    def __init__(self, table=None):
        self.table = {Genotype.from_str(a).canonical(): v for a, v in (table or {}).items()}
        self.calls = 0

    def __call__(self, config):
        self.calls += 1
        genotype = Genotype.from_config(config).canonical()
        if genotype in self.table:
            return {"params": float(self.table[genotype])}
        return {"params": genotype.ops.count("nor_conv_3x3") + config.get("width", 8) / 100}


SCREEN_OPTIONS = ("size", "asked", "neighbours", "explore", "proxy_names", "vote", "min_fit", "n_estimators", "scorer")


class ScriptedSearcher(StudySearcher):
    """A ``StudySearcher`` whose sampler proposes the configs of ``script`` first."""

    def __init__(self, *args, script=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.script = [dict(config) for config in script]

    def _propose(self, point=None):
        if point is None and self.script:
            config = self.script.pop(0)
            return Candidate(config, self.key_of(config), "asked")
        return super()._propose(point)


def screening(proposals=(), *, objectives=("robust_acc",), sampler="random", space=None, seed=0, **options):
    """A screened ``StudySearcher``; ``proposals`` are its sampler's first proposals."""
    options = {"size": 3, "explore": 0.0, "proxy_names": ("params",), "vote": ("params",),
               "scorer": CountingScorer({A: 1, C: 3, D: 2, E: 0}), "n_estimators": 10, **options}
    screen = Screen(objectives, seed=seed, **{k: v for k, v in options.items() if k in SCREEN_OPTIONS})
    rest = {k: v for k, v in options.items() if k not in SCREEN_OPTIONS}
    searcher = ScriptedSearcher(sampler, objectives=objectives, seed=seed, screen=screen, script=proposals, **rest)
    searcher.set_search_properties(None, None, cell_space() if space is None else space)
    return searcher


def cell_space():
    from robnas.spaces._compose import build_space

    return build_space(("cell",))


def study_states(searcher):
    return [(t.state.name, t.user_attrs.get("trial_id")) for t in searcher.study.trials]


def test_launches_the_best_predicted_candidate_and_leaves_no_trace_of_the_others():
    searcher = screening([cell(A), cell(C), cell(D)], space={})
    assert searcher.suggest("t1") == cell(C)
    assert searcher.num_screened_out == 2
    searcher.on_trial_result("t1", {"robust_acc": 0.3, "epoch": 1})
    searcher.on_trial_complete("t1", {"robust_acc": 0.5, "epoch": 2})
    assert study_states(searcher) == [("COMPLETE", "t1")]
    assert searcher.study.trials[0].value == 0.5


def test_never_launches_an_isomorph_twice():
    searcher = screening([cell(A), cell(B), cell(C), cell(B), cell(D), cell(C), cell(E)], space={}, size=2)
    # Pool A, (B: isomorph of A in the pool, skipped), C -> C launched, A screened out.
    assert searcher.suggest("t1") == cell(C)
    searcher.on_trial_complete("t1", {"robust_acc": 0.7})
    # A was never launched, so its isomorph B may be; D beats it.
    assert searcher.suggest("t2") == cell(D)
    # C again: a duplicate of t1; E is what is left; then the proposals are used up.
    assert searcher.suggest("t3") == cell(E)
    assert searcher.suggest("t4") == Searcher.FINISHED
    assert searcher.num_duplicates == 2
    assert sorted(searcher._by_key) == sorted({searcher.key_of(cell(x)) for x in (C, D, E)})


def test_all_duplicates_end_the_search():
    searcher = screening([cell(A)] + [cell(B)] * 5, space={}, size=1, max_retries=3)
    assert searcher.suggest("t1") == cell(A)
    assert searcher.suggest("t2") == Searcher.FINISHED


def test_exploration_share_and_unscreened_launches():
    searcher = screening(size=3, explore=0.25, seed=1, scorer=CountingScorer(), neighbours=False, asked=3)
    for i in range(200):
        searcher.suggest(f"t{i}")
    assert 35 <= searcher.num_explored <= 65
    # A screened trial launches one of 3 new candidates; an explored one its only candidate.
    assert searcher.num_screened_out == 2 * (200 - searcher.num_explored)
    assert [state for state, _ in study_states(searcher)] == ["RUNNING"] * 200
    # Always exploring: the sampler's first candidate.
    searcher = screening([cell(A), cell(C)], space={}, explore=1.0)
    assert searcher.suggest("t1") == cell(A) and searcher.num_screened_out == 0


def test_nan_results_are_failed_trials_and_not_learned():
    searcher = screening([cell(C)], space={})
    searcher.suggest("t1")
    searcher.on_trial_result("t1", {"robust_acc": math.nan, "epoch": 1})
    searcher.on_trial_complete("t1", {"robust_acc": math.nan, "epoch": 1})
    assert study_states(searcher) == [("FAIL", "t1")]
    assert searcher.screen.ranker.num_labelled == 0


def test_results_at_any_fidelity_train_the_ranker():
    searcher = screening([cell(C, max_epochs=4), cell(D, max_epochs=4)], space={}, size=1)
    searcher.suggest("t1")
    searcher.on_trial_result("t1", {"robust_acc": 0.2, "epoch": 1})
    row = searcher.screen.ranker._rows[searcher.key_of(cell(C, max_epochs=4))]
    assert row[2] == {"robust_acc": 0.2} and row[3] == 0.25
    searcher.on_trial_complete("t1", {"robust_acc": 0.4, "epoch": 2})  # stopped early at epoch 2
    row = searcher.screen.ranker._rows[searcher.key_of(cell(C, max_epochs=4))]
    assert row[2] == {"robust_acc": 0.4} and row[3] == 0.5


def test_once_fitted_the_ranker_follows_the_measured_results():
    """Results say: fewer 3x3 convolutions = more robust, against the zero-shot vote."""
    searcher = screening(size=4, min_fit=8, scorer=CountingScorer(), seed=3)

    def measured(config):
        return 1.0 - Genotype.from_config(config).canonical().ops.count("nor_conv_3x3") / 6

    early, late = [], []
    for i in range(32):
        config = searcher.suggest(f"t{i}")
        (early if i < 8 else late).append(measured(config))
        searcher.on_trial_complete(f"t{i}", {"robust_acc": measured(config)})
    assert np.mean(late[-16:]) > np.mean(early) + 0.2


def test_save_and_restore_give_identical_next_suggestions(tmp_path):
    from ray import tune

    space = {key: tune.choice(OPS) for key in Genotype.from_str(C).to_config()}
    space["sparsity"] = tune.choice([0.0, 0.5, 0.9])

    def fresh():
        return screening(objectives=("robust_acc", "sparsity"), sampler="motpe", space=space, seed=4,
                         size=3, explore=0.3, scorer=CountingScorer(), min_fit=4)

    def run(searcher, ids):
        keys = []
        for i in ids:
            config = searcher.suggest(f"t{i}")
            keys.append(config_key(config))
            ops = Genotype.from_config(config).canonical().ops
            result = {"robust_acc": ops.count("skip_connect") / 6, "sparsity": config["sparsity"], "epoch": 1}
            searcher.on_trial_complete(f"t{i}", result)
        return keys

    one = fresh()
    first_keys = run(one, range(8))
    assert len(set(first_keys)) == 8
    one.save(str(tmp_path / "state.json"))
    two = fresh()
    two.restore(str(tmp_path / "state.json"))
    assert two.screen.ranker.num_labelled == 8 and two.screen.ranker._models is None
    assert run(one, range(8, 14)) == run(two, range(8, 14))
    assert not hasattr(two, "searcher")  # Tune would take it for a wrapper


# ------------------------------------------------------------------ real proxies


def test_candidate_scorer_builds_the_trial_network_and_caches_each_config():
    scorer = CandidateScorer(names=("params", "synflow", "nwot"), batch_size=16)
    dense = scorer({"arch": A})
    assert scorer({"arch": A}) == dense and len(scorer.cache) == 1
    # B is isomorphic to A (the edges where they differ are dead), but its network holds other
    # parameters: it is scored as itself, whatever was scored before.
    other = scorer({"arch": B})
    assert len(scorer.cache) == 2 and other["params"] != dense["params"]
    assert CandidateScorer(names=("params", "synflow", "nwot"), batch_size=16)({"arch": B}) == other
    trial = decode_trial({"arch": A})
    model, masks = network_of(trial, in_channels=1, num_classes=10)
    assert masks is None and dense["params"] == count_parameters(model)
    assert all(math.isfinite(v) for v in dense.values())
    pruned = scorer({"arch": A, "sparsity": 0.9, "sparsity_schedule": "oneshot"})
    assert pruned["params"] < 0.5 * dense["params"]
    # A sparsity target without a schedule trains dense, and is scored dense.
    assert scorer({"arch": A, "sparsity": 0.9, "sparsity_schedule": "none"})["params"] == dense["params"]
    assert all(math.isnan(v) for v in scorer({"arch": A, "width": 0}).values())
    restored = pickle.loads(pickle.dumps(scorer))
    assert restored._batches == {} and restored.cache.keys() == scorer.cache.keys()
    assert restored({"arch": C}) == scorer({"arch": C})


def test_candidate_scorer_scores_its_own_network_as_a_copying_call_would():
    names = ("params", "synflow", "jacob_cov", "nwot", "snip_adv")
    config = {"arch": C, "sparsity": 0.5, "sparsity_schedule": "oneshot", "attack": "pgd"}
    trial = decode_trial(config)
    model, masks = network_of(trial, in_channels=1, num_classes=10)
    batch = dataset_batch(size=8, seed=1)
    expected = score_network(model, batch, names=names, masks=masks, eps=trial.attack.eps / 255, seed=1)
    assert CandidateScorer(names=names, batch_size=8, seed=1)(config) == expected
    assert all(math.isfinite(v) for v in expected.values())


def test_a_dynamic_schedule_is_scored_at_the_trials_own_random_sparse_start():
    from robnas.spaces import decode
    from robnas.trainables import TrialRunner

    config = {"arch": C, "sparsity": 0.8, "sparsity_schedule": "rigl", "max_epochs": 1}
    _, masks = network_of(decode_trial(config), in_channels=1, num_classes=10)
    runner = TrialRunner(decode(config))
    assert all(torch_equal(masks[name], runner.masks.masks[name]) for name in masks)
    _, magnitude = network_of(decode_trial({**config, "sparsity_schedule": "oneshot"}), in_channels=1, num_classes=10)
    assert any(not torch_equal(masks[name], magnitude[name]) for name in masks)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_candidate_scorer_is_deterministic_and_leaves_the_thread_count():
    import torch

    threads = torch.get_num_threads()
    first = CandidateScorer(names=("snip", "jacob_cov"), batch_size=16, seed=2)({"arch": C})
    second = CandidateScorer(names=("snip", "jacob_cov"), batch_size=16, seed=2)({"arch": C})
    assert first == second
    assert torch.get_num_threads() == threads


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="screen"):
        Screen(("robust_acc",), size=0)
    with pytest.raises(ValueError, match="explore"):
        Screen(("robust_acc",), size=2, explore=1.5)
    with pytest.raises(ValueError, match="asked"):
        Screen(("robust_acc",), size=3, asked=4)
    with pytest.raises(ValueError, match="unknown proxies"):
        Screen(("robust_acc",), size=2, proxy_names=("bogus",))


# ------------------------------------------------------------------ inside a real search


@pytest.mark.slow
def test_screened_search_runs_and_resumes_on_digits(ray_session, tmp_path):
    from robnas.search import resume, run

    grid = run(screen=4, num_samples=4, max_epochs=1, storage_path=str(tmp_path), name="s",
               scheduler="fifo", trial={"eval_steps": 5})
    assert len(grid) == 4 and all(r.error is None for r in grid)
    grid = resume(tmp_path / "s", num_samples=6)
    assert len(grid) == 6 and all(r.error is None for r in grid)
    fixed = {"dataset", "data_dir", "max_epochs", "score_weights", "eval_steps"}
    keys = [config_key({k: v for k, v in r.config.items() if k not in fixed}) for r in grid]
    assert len(set(keys)) == 6
    # The saved searcher state is JSON, carried over the resume.
    latest = max((tmp_path / "s").glob("robnas-searcher-state-*.json"))
    state = json.loads(latest.read_text())
    assert state["kind"] == "searcher" and state["budget"] == 6
    assert len(state["launched"]) == 6 and len(state["screen"]["labels"]) == 6
    assert [t["state"] for t in state["trials"] if "trial_id" in t["user_attrs"]] == ["COMPLETE"] * 6
    # Each screened launch closed at least its 3 rivals (more once neighbours join the pool).
    duplicates, screened_out, explored = state["counters"]
    assert screened_out >= 3 * (6 - explored)
    assert not list((tmp_path / "s").glob("searcher-state-*.pkl"))


def _pools(searcher):
    """Record the pool of every screened launch."""
    pools = []
    original = searcher.screen.choose

    def choose(pool, *args, **kwargs):
        index = original(pool, *args, **kwargs)
        pools.append([c.config for c in pool])
        return index

    searcher.screen.choose = choose
    return pools


def test_pool_mixes_sampler_proposals_space_draws_and_incumbent_neighbours():
    searcher = screening(size=6, asked=2, scorer=CountingScorer())
    pools = _pools(searcher)
    first = searcher.suggest("t0")
    assert len(pools[0]) == 6  # 2 asked, 4 drawn, no incumbent yet
    searcher.on_trial_complete("t0", {"robust_acc": 0.5, "epoch": 1})
    searcher.suggest("t1")
    incumbent = Genotype.from_config(first)
    launched = {config_key(first)}
    neighbours = {
        config_key(c) for c in pools[1]
        if sum(a != b for a, b in zip(Genotype.from_config(c).ops, incumbent.ops)) == 1
    }
    # Every one-change neighbour of the incumbent that is new (not launched, not isomorphic to
    # another) is in the second pool, besides the 2 asked and 4 drawn candidates.
    expected = set()
    for i in range(6):
        for op in OPS:
            if op != incumbent.ops[i]:
                ops = list(incumbent.ops)
                ops[i] = op
                expected.add(config_key(Genotype(tuple(ops)).to_config()))
    assert neighbours == expected - launched and len(pools[1]) >= 6 + len(neighbours) - 6


def test_without_neighbours_the_pool_is_exactly_screen_candidates():
    searcher = screening(size=5, asked=1, neighbours=False, scorer=CountingScorer(), seed=1)
    pools = _pools(searcher)
    for i in range(4):
        searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"robust_acc": 0.1 * i, "epoch": 1})
    assert [len(p) for p in pools] == [5, 5, 5, 5]


def test_every_launch_is_a_trial_of_the_study_with_its_value():
    searcher = screening(sampler="tpe", size=6, asked=1, scorer=CountingScorer())
    for i in range(5):
        searcher.suggest(f"t{i}")
        result = {"robust_acc": float(i), "epoch": 1, "training_iteration": 1}
        searcher.on_trial_result(f"t{i}", result)
        searcher.on_trial_complete(f"t{i}", result)
    trials = searcher.study.trials
    # Each launched trial, asked or drawn, is a complete trial of the study with its value, and
    # nothing else is (the 25 screened-out candidates left no trial).
    assert [t.value for t in trials] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert {searcher.key_of(t.params) for t in trials} == set(searcher._by_key)
    assert {t.user_attrs["origin"] for t in trials} <= {"asked", "drawn", "neighbour"}


def _launched_convs(objectives):
    searcher = screening(objectives=objectives, size=8, asked=2, scorer=CountingScorer(), min_fit=4, seed=5)
    convs = []
    for i in range(16):
        n = Genotype.from_config(searcher.suggest(f"t{i}")).canonical().ops.count("nor_conv_3x3")
        convs.append(n)
        # Robust accuracy grows with the 3x3 convolutions, and so do the parameters: a trade-off.
        searcher.on_trial_complete(f"t{i}", {"robust_acc": 0.1 * n, "params": 1000.0 * n + 10.0, "epoch": 1})
    return convs


def test_several_objectives_spread_launches_over_the_front():
    single = _launched_convs(("robust_acc",))
    both = _launched_convs(("robust_acc", "params"))
    # One objective pushes towards more convolutions; hypervolume-improving launches on params
    # also try smaller networks than the one-objective search settles on, so the launches cover
    # the trade-off.
    assert np.mean(single) > np.mean(both)
    assert min(both) < min(single[4:]) and len(set(both)) >= 3


def test_ranker_predicts_size_objectives_linearly_from_the_size_proxy():
    from robnas.search._encoding import encode_config
    from robnas.search._ranker import SurrogateRanker
    from robnas.spaces import parse_objectives

    rng = np.random.default_rng(0)
    ranker = SurrogateRanker(parse_objectives("robust_acc,params"), proxy_names=("params",), min_fit=4)
    configs = [Genotype(tuple(OPS[i] for i in rng.integers(0, 5, size=6))).to_config() for i in range(30)]
    # The proxy's network and the trial's differ in size; both are linear in the cell's convolutions.
    proxy = [1000.0 + 90.0 * list(c.values()).count("nor_conv_3x3") + 10.0 * list(c.values()).count("nor_conv_1x1")
             for c in configs]
    truth = [50_000.0 + 36_000.0 * list(c.values()).count("nor_conv_3x3") + 4_000.0 * list(c.values()).count("nor_conv_1x1")
             for c in configs]
    for i in range(8):
        ranker.observe(str(i), {"params": proxy[i]}, encode_config(configs[i]), {"robust_acc": 0.5, "params": truth[i]})
    predicted = ranker.predict([{"params": p} for p in proxy[8:]], np.stack([encode_config(c) for c in configs[8:]]))
    assert ranker.is_fitted()
    assert predicted[:, 1] == pytest.approx(truth[8:], rel=1e-6)
