"""The surrogate ranker and the config encoding: known answers on hand-made tables."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from scipy.stats import kendalltau

from robnas.search._encoding import CELL_FEATURES, FEATURE_NAMES, cell_features, encode_config
from robnas.search._acquisition import front_reference, hypervolume_improvements
from robnas.search._ranker import SurrogateRanker, zero_shot_vote
from robnas.search._ranker_models import ENSEMBLE_MIN_ROWS, design
from robnas.spaces import Objective, parse_objectives
from robnas.spaces._genotype import OPS, Genotype

# Two isomorphic cells (dead ops differ) and a third, different one.
A = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
B = "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|none~2|"
C = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def feature(vector: np.ndarray, name: str) -> float:
    return float(vector[FEATURE_NAMES.index(name)])


# ------------------------------------------------------------------ encoding


def test_encoding_carries_the_robust_training_methods():
    plain = encode_config({"arch": C})
    assert feature(plain, "awp_gamma") == 0.0 and feature(plain, "weight_averaging=none") == 1.0
    assert feature(plain, "ema_decay") == 0.0 and feature(plain, "stop_on_overfit") == 0.0
    methods = encode_config({"arch": C, "awp_gamma": 0.01, "weight_averaging": "ema", "ema_decay": 0.99})
    assert feature(methods, "awp_gamma") == 0.01 and feature(methods, "weight_averaging=ema") == 1.0
    assert feature(methods, "ema_decay") == 0.99
    # The overfitting stop counts only where the check runs: FGSM-RS trials.
    assert feature(encode_config({"arch": C, "stop_on_overfit": True}), "stop_on_overfit") == 0.0
    assert feature(encode_config({"arch": C, "attack": "fgsm_rs", "stop_on_overfit": True}), "stop_on_overfit") == 1.0


def test_encoding_is_fixed_length_and_deterministic():
    config = {"arch": C, "width": 16, "sparsity": 0.5, "sparsity_schedule": "oneshot", "attack": "trades"}
    first, second = encode_config(config), encode_config(dict(config))
    assert first.shape == (len(FEATURE_NAMES),) == (58 + 84 + 9 + 5 + 22 + 2,)  # NB201 (+ path encoding), robust training, dynamic sparsity, resnet, family
    assert np.array_equal(first, second)
    assert feature(first, "log2_width") == 4.0
    assert feature(first, "sparsity_effective") == 0.5
    assert feature(first, "schedule=oneshot") == 1.0 and feature(first, "schedule=none") == 0.0
    assert feature(first, "attack=trades") == 1.0 and feature(first, "trades_beta") == 6.0
    # The digits default attack: PGD at eps 25.5/255, 7 steps of 2.5 * eps / 7.
    digits = encode_config({"arch": C})
    assert feature(digits, "eps") == 25.5 and feature(digits, "attack_steps") == 7.0
    assert feature(digits, "step_size") == pytest.approx(2.5 * 25.5 / 7)
    assert feature(digits, "trades_beta") == 0.0


def test_dynamic_sparsity_keys_are_encoded_only_when_they_act():
    rigl = {"arch": C, "sparsity": 0.9, "sparsity_schedule": "rigl", "sparsity_drop_fraction": 0.5,
            "sparsity_update_every": 8, "sup_tickets": True}
    vector = encode_config(rigl)
    assert feature(vector, "schedule=rigl") == 1.0 and feature(vector, "sparsity_drop_fraction") == 0.5
    assert feature(vector, "log2_update_every") == 3.0 and feature(vector, "sup_tickets") == 1.0
    assert not np.array_equal(vector, encode_config({**rigl, "sup_tickets": False}))
    assert not np.array_equal(vector, encode_config({**rigl, "sparsity_schedule": "set"}))
    oneshot = encode_config({"arch": C, "sparsity": 0.9, "sparsity_schedule": "oneshot", "sparsity_update_every": 8})
    assert feature(oneshot, "log2_update_every") == 0.0 and feature(oneshot, "sparsity_drop_fraction") == 0.0
    dense = encode_config({**rigl, "sparsity": 0.0})
    assert feature(dense, "sup_tickets") == 0.0 and feature(dense, "sparsity_drop_fraction") == 0.0


def test_dense_schedule_has_no_effective_sparsity():
    vector = encode_config({"arch": C, "sparsity": 0.8, "sparsity_schedule": "none"})
    assert feature(vector, "sparsity") == 0.8
    assert feature(vector, "sparsity_effective") == 0.0


def test_isomorphic_cells_share_their_encoding():
    assert np.array_equal(encode_config({"arch": A}), encode_config({"arch": B}))
    assert not np.array_equal(encode_config({"arch": A}), encode_config({"arch": C}))
    edges = Genotype.from_str(B).to_config()
    assert np.array_equal(encode_config({"arch": A}), encode_config({**edges, "score_weights": {"a": 1}}))


def test_cell_features_of_a_known_cell():
    values = dict(zip(CELL_FEATURES, cell_features(Genotype.from_str(C).ops)))
    assert values["op[edge_1_0]=nor_conv_3x3"] == 1.0
    assert sum(values[f"op[edge_1_0]={op}"] for op in OPS) == 1.0
    assert values["count[nor_conv_3x3]"] == 3.0 and values["count[skip_connect]"] == 2.0
    # Paths 0->3 (skip), 0->1->3 (conv, conv), 0->2->3 (conv, skip), 0->1->2->3 (conv, pool, skip).
    assert values["paths"] == 4.0
    assert values["max_convs"] == 2.0 and values["max_conv3x3"] == 2.0
    assert values["sum_convs"] == 4.0 and values["max_depth"] == 3.0
    assert values["conv_free_paths"] == 1.0
    # A disconnected cell has no path.
    empty = dict(zip(CELL_FEATURES, cell_features(("none",) * 6)))
    assert empty["paths"] == 0.0 and empty["max_depth"] == 0.0
    assert not any(v for n, v in empty.items() if n.startswith("path["))


def test_path_encoding_counts_each_op_sequence_from_input_to_output():
    from robnas.spaces._path_encoding import PATH_FEATURES, path_encoding

    assert len(PATH_FEATURES) == 4 + 16 + 64  # sequences of 1, 2 and 3 live ops
    values = dict(zip(PATH_FEATURES, path_encoding(Genotype.from_str(C).ops)))
    assert {n for n, v in values.items() if v} == {
        "path[skip_connect]", "path[nor_conv_3x3>nor_conv_3x3]", "path[nor_conv_3x3>skip_connect]",
        "path[nor_conv_3x3>avg_pool_3x3>skip_connect]",
    }
    # The two routes of length 2 carry the same sequence: counted twice.
    twin = ("nor_conv_1x1", "nor_conv_1x1", "none", "none", "skip_connect", "skip_connect")
    assert dict(zip(PATH_FEATURES, path_encoding(twin)))["path[nor_conv_1x1>skip_connect]"] == 2.0
    # Isomorphic cells (the intermediate nodes swapped) share the encoding.
    swapped = ("nor_conv_1x1", "nor_conv_3x3", "none", "none", "skip_connect", "avg_pool_3x3")
    mirror = ("nor_conv_3x3", "nor_conv_1x1", "none", "none", "avg_pool_3x3", "skip_connect")
    assert path_encoding(swapped) == path_encoding(mirror)


def test_encoding_rejects_unknown_keys():
    with pytest.raises(ValueError, match="widht"):
        encode_config({"arch": C, "widht": 8})


# ------------------------------------------------------------------ zero-shot vote


def test_vote_is_the_mean_rank_over_proxies():
    table = np.array([[1.0, 10.0], [2.0, 30.0], [3.0, 20.0]])
    # ranks / n: column 0 -> 1/3, 2/3, 1; column 1 -> 1/3, 1, 2/3
    assert np.allclose(zero_shot_vote(table), [1 / 3, 5 / 6, 5 / 6])


def test_vote_imputes_nan_by_the_column_median_and_averages_ties():
    table = np.array([[math.nan, 1.0], [1.0, 1.0], [3.0, 2.0]])
    # column 0 -> [2, 1, 3]; column 1 ties -> [1.5, 1.5, 3]
    assert np.allclose(zero_shot_vote(table), [(2 + 1.5) / 6, (1 + 1.5) / 6, 1.0])
    assert np.array_equal(zero_shot_vote(np.empty((2, 0))), [1.0, 1.0])


def test_vote_treats_infinite_scores_as_missing_and_an_empty_column_as_a_tie():
    table = np.array([[math.inf, math.nan], [1.0, math.nan], [3.0, math.nan]])
    # column 0 -> [2, 1, 3] (inf imputed by the median 2); column 1 all tied -> [2, 2, 2]
    assert np.allclose(zero_shot_vote(table), [(2 + 2) / 6, (1 + 2) / 6, (3 + 2) / 6])


def test_front_reference_is_the_typical_first_objective_and_just_below_the_worst_others():
    gain = np.array([[0.9, -100.0, 0.2], [0.5, -10.0, 0.6], [0.1, -50.0, math.nan]])
    reference = front_reference(gain, typical=np.array([0.2, 0.4, 0.6]))
    assert reference == pytest.approx([0.4, -100.0 - 0.9, 0.2 - 0.004])


def test_front_reference_of_learnt_objectives_is_the_typical_value_of_each():
    gain = np.array([[0.9, 0.3, -100.0], [0.5, 0.8, -10.0], [0.1, 0.5, -50.0]])
    typical = np.array([[0.2, 0.1, -20.0], [0.4, 0.3, -30.0], [0.6, 0.9, -40.0]])
    reference = front_reference(gain, typical=typical, learnt=np.array([True, True, False]))
    assert reference == pytest.approx([0.4, 0.3, -100.0 - 0.9])


def test_hypervolume_improvements_count_only_what_a_candidate_adds_beyond_the_reference():
    front = np.array([[2.0, 1.0], [1.0, 2.0]])  # gains; dominated area above (0, 0): 3
    candidates = np.array([[3.0, 3.0], [1.5, 1.5], [0.5, 0.5], [-1.0, 5.0], [math.nan, 9.0], [2.0, 1.0]])
    improvement = hypervolume_improvements(front, candidates, np.zeros(2))
    # (3, 3) dominates everything: 9 - 3; (1.5, 1.5) adds the square (1, 1)-(1.5, 1.5);
    # dominated, beyond the reference, nan or already on the front: nothing.
    assert improvement == pytest.approx([6.0, 0.25, 0.0, 0.0, 0.0, 0.0])
    assert hypervolume_improvements(np.empty((0, 2)), candidates[:2], np.zeros(2)) == pytest.approx([9.0, 2.25])


# ------------------------------------------------------------------ the ranker


def random_configs(n: int, seed: int) -> tuple[list[dict], np.ndarray]:
    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(n):
        ops = tuple(OPS[i] for i in rng.integers(0, len(OPS), size=6))
        configs.append({"arch": Genotype(ops).to_str(), "sparsity": float(rng.choice([0.0, 0.5, 0.9])),
                        "sparsity_schedule": "oneshot"})
    return configs, np.stack([encode_config(c) for c in configs])


def test_zero_shot_predictions_before_min_fit():
    ranker = SurrogateRanker(
        parse_objectives("robust_acc,sparsity,params"),
        proxy_names=("params", "nwot"), vote=("nwot",), min_fit=4,
    )
    configs, features = random_configs(3, seed=0)
    proxies = [{"params": 30.0, "nwot": 1.0}, {"params": 10.0, "nwot": 3.0}, {"params": 20.0, "nwot": 2.0}]
    predicted = ranker.predict(proxies, features)
    assert np.allclose(predicted[:, 0], [1 / 3, 1.0, 2 / 3])  # the vote of nwot
    assert np.array_equal(predicted[:, 1], [c["sparsity"] for c in configs])
    assert np.array_equal(predicted[:, 2], [30.0, 10.0, 20.0])
    # Three results are not enough to fit (min_fit=4): still zero-shot.
    for i in range(3):
        ranker.observe(f"k{i}", proxies[i], features[i], {"robust_acc": 0.5, "sparsity": 0.0, "params": 1.0})
    assert np.allclose(ranker.predict(proxies, features)[:, 0], [1 / 3, 1.0, 2 / 3])


def synthetic(n: int, seed: int):
    """Proxies that say nothing, and a target that depends on the cell's 3x3 convolutions."""
    configs, features = random_configs(n, seed)
    rng = np.random.default_rng(seed + 100)
    proxies = rng.normal(size=(n, 2))
    convs = features[:, FEATURE_NAMES.index("count[nor_conv_3x3]")]
    target = convs - 2.0 * features[:, FEATURE_NAMES.index("sparsity_effective")] + 0.1 * rng.normal(size=n)
    return proxies, features, target


def test_refit_on_labelled_results_improves_the_ranking():
    proxies, features, target = synthetic(260, seed=1)
    ranker = SurrogateRanker([Objective("robust_acc", "max")], proxy_names=("p0", "p1"), vote=("p0", "p1"), seed=0)
    test = slice(60, None)
    before = kendalltau(ranker.predict(proxies[test], features[test])[:, 0], target[test])[0]
    for i in range(60):
        ranker.observe(f"k{i}", proxies[i], features[i], {"robust_acc": target[i]})
    after = kendalltau(ranker.predict(proxies[test], features[test])[:, 0], target[test])[0]
    assert abs(before) < 0.15
    assert after > 0.7


def test_ranker_is_deterministic_and_refits_after_unpickling():
    proxies, features, target = synthetic(80, seed=2)

    def trained():
        ranker = SurrogateRanker([Objective("robust_acc", "max")], proxy_names=("p0", "p1"), seed=5)
        for i in range(40):
            ranker.observe(f"k{i}", proxies[i], features[i], {"robust_acc": target[i]}, fidelity=0.5)
        return ranker

    first, second = trained(), trained()
    expected = first.predict(proxies[40:], features[40:])
    assert np.array_equal(expected, second.predict(proxies[40:], features[40:]))
    copy = pickle.loads(pickle.dumps(first))
    assert copy._models is None
    assert np.array_equal(expected, copy.predict(proxies[40:], features[40:]))


def test_observe_keeps_the_latest_finite_result_per_configuration():
    ranker = SurrogateRanker(parse_objectives("clean_acc,robust_acc"), proxy_names=("p",))
    features = encode_config({"arch": C})
    ranker.observe("a", {"p": 1.0}, features, {"clean_acc": 0.2, "robust_acc": math.nan}, fidelity=0.25)
    ranker.observe("a", {"p": 1.0}, features, {"clean_acc": 0.4, "robust_acc": 0.1}, fidelity=0.5)
    ranker.observe("b", {"p": 2.0}, features, {"epoch": 3, "robust_acc": math.nan})  # nothing usable
    assert ranker.num_labelled == 1
    _, _, values, fidelity = ranker._rows["a"]
    assert values == {"clean_acc": 0.4, "robust_acc": 0.1} and fidelity == 0.5


def test_ranker_rejects_bad_arguments():
    with pytest.raises(ValueError, match="non-empty"):
        SurrogateRanker((), proxy_names=("p",))
    with pytest.raises(ValueError, match="'up'"):
        SurrogateRanker(["a:up"], proxy_names=("p",))
    with pytest.raises(ValueError, match="must not repeat"):
        SurrogateRanker([Objective("a", "max"), Objective("a", "min")], proxy_names=("p",))
    with pytest.raises(ValueError, match="min_fit"):
        SurrogateRanker([Objective("a", "max")], proxy_names=("p",), min_fit=1)
    with pytest.raises(ValueError, match="forest"):
        SurrogateRanker([Objective("a", "max")], proxy_names=("p",), model="forest")


def test_ranker_objectives_carry_their_directions():
    ranker = SurrogateRanker(["robust_acc", Objective("params", "min"), "macs:max"], proxy_names=("p",))
    assert ranker.objectives == (Objective("robust_acc", "max"), Objective("params", "min"), Objective("macs", "max"))
    assert ranker.names == ("robust_acc", "params", "macs")
    assert ranker.directions == ("max", "min", "max")


def test_zero_shot_vote_of_a_minimised_objective_is_negated():
    ranker = SurrogateRanker([Objective("loss", "min"), Objective("acc", "max")], proxy_names=("p",))
    predicted = ranker.predict(np.array([[1.0], [3.0], [2.0]]), np.zeros((3, 4)))
    assert np.allclose(predicted[:, 1], [1 / 3, 1.0, 2 / 3]) and np.array_equal(predicted[:, 0], -predicted[:, 1])
    assert ranker.predict(np.empty((0, 1)), np.empty((0, 4))).shape == (0, 2)


@pytest.mark.parametrize("model", ["trees", "ensemble"])
def test_each_fitted_objective_is_a_pipeline_that_selects_its_columns(model):
    from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    n = 12 if model == "trees" else ENSEMBLE_MIN_ROWS  # the ensemble needs that many results
    configs, features = random_configs(n, seed=4)
    ranker = SurrogateRanker(
        parse_objectives("robust_acc,params"), proxy_names=("params", "p"), min_fit=4, seed=3, model=model
    )
    for i in range(n):
        row = [1.0 + features[i, FEATURE_NAMES.index("count[nor_conv_3x3]")], math.nan if i % 3 else float(i)]
        ranker.observe(f"k{i}", np.array(row), features[i], {"robust_acc": float(i), "params": 2.0 * row[0]})
    assert ranker.is_fitted()
    trees, linear = ranker._models["robust_acc"], ranker._models["params"]
    members = [trees[-1]] if model == "trees" else list(trees[-1].estimators_)
    assert isinstance(members[0], ExtraTreesRegressor) and members[0].random_state == 3 and members[0].n_jobs == 1
    if model == "ensemble":
        assert isinstance(members[1], GradientBoostingRegressor) and members[1].random_state == 3
        inputs = trees[:-1].transform(design(np.ones((2, 2)), features[:2], np.ones(2)))
        # The ensemble's prediction is the mean of its members' (their spread: a disagreement measure).
        assert np.allclose(trees[-1].predict(inputs), trees[-1].transform(inputs).mean(axis=1))
    assert isinstance(linear[-1], LinearRegression)
    # Proxies, then the config (extra trees alone: without its one-hot ops and path encoding), then the fidelity.
    kept = sum(not n.startswith(("op[", "path[")) for n in FEATURE_NAMES) if model == "trees" else len(FEATURE_NAMES)
    assert members[0].n_features_in_ == 2 + kept + 1
    # A missing proxy becomes the median of the labelled rows (0, 3, 6, ...).
    imputer = trees.named_steps["select"].named_transformers_["proxies"]
    assert imputer.statistics_[1] == pytest.approx(np.median(np.arange(0, n, 3)))
    size = 1.0 + features[0, FEATURE_NAMES.index("count[nor_conv_3x3]")]
    assert ranker.predict(np.array([[size, math.nan]]), features[:1])[0, 1] == pytest.approx(2.0 * size)


def test_the_ensemble_is_the_extra_trees_alone_below_its_minimum_of_results():
    configs, features = random_configs(ENSEMBLE_MIN_ROWS, seed=2)
    ensemble = SurrogateRanker([Objective("robust_acc", "max")], proxy_names=("p",), seed=1)
    trees = SurrogateRanker([Objective("robust_acc", "max")], proxy_names=("p",), seed=1, model="trees")
    for i in range(ENSEMBLE_MIN_ROWS - 1):
        for ranker in (ensemble, trees):
            ranker.observe(f"k{i}", np.array([float(i)]), features[i], {"robust_acc": float(i % 7)})
    candidates = np.arange(len(features), dtype=float)[:, np.newaxis]
    assert np.array_equal(ensemble.predict(candidates, features), trees.predict(candidates, features))
    ensemble.observe("last", np.array([1.0]), features[-1], {"robust_acc": 3.0})
    assert type(ensemble._fitted()["robust_acc"][-1]).__name__ == "VotingRegressor"


def test_the_objectives_with_zero_shot_rules_are_trial_objectives():
    from robnas.search._ranker_models import SIZE_PROXIES, SPARSITY
    from robnas.spaces import TRIAL_OBJECTIVES

    assert {SPARSITY, *SIZE_PROXIES} <= set(TRIAL_OBJECTIVES)
    assert all(TRIAL_OBJECTIVES[name] == "min" for name in SIZE_PROXIES)


def test_a_ranker_pickled_with_modes_is_restored_with_objectives():
    ranker = SurrogateRanker(parse_objectives("robust_acc,params"), proxy_names=("p",))
    old = dict(ranker.__getstate__(), objectives=("robust_acc", "params"), modes=("max", "min"))
    restored = SurrogateRanker.__new__(SurrogateRanker)
    restored.__setstate__(old)
    assert restored.objectives == ranker.objectives and not hasattr(restored, "modes")
    # Pickled before the ensemble existed: the extra trees alone, as then.
    del old["model"]
    restored.__setstate__(old)
    assert restored.model == "trees"
