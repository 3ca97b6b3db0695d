from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from robnas.spaces._attack import ATTACK_METHODS, AttackConfig, attack_space
from robnas.spaces._robust_training import RobustTrainingConfig
from robnas.spaces._cell import cell_space
from robnas.spaces._compose import (
    CONFIG_FIELDS,
    CONFIG_KEYS,
    DATASET_DEFAULTS,
    DATASETS,
    DEFAULT_ARCH,
    SPACE_PARTS,
    TrialConfig,
    build_space,
    decode,
    encode,
)
from robnas.spaces._evaluation import EvalConfig
from robnas.spaces._genotype import EDGE_KEYS, OPS, Genotype
from robnas.spaces._macro import MacroConfig, macro_space
from robnas.spaces._sparsity import SPARSITY_GRANULARITIES, SparsityConfig, sparsity_space
from robnas.spaces._training import TrainingConfig

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def sample(space: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {key: domain.sample(random_state=rng) for key, domain in space.items()}


# --- search spaces -------------------------------------------------------------------------


def test_cell_space_has_one_choice_of_all_ops_per_edge():
    space = cell_space()
    assert tuple(space) == EDGE_KEYS
    assert all(domain.categories == list(OPS) for domain in space.values())
    restricted = cell_space(ops=("skip_connect", "nor_conv_3x3"))
    assert restricted["edge_3_2"].categories == ["skip_connect", "nor_conv_3x3"]
    with pytest.raises(ValueError, match="'conv'"):
        cell_space(ops=("none", "conv"))


def test_default_space_parts_and_their_domains():
    space = build_space()
    assert tuple(space) == (*EDGE_KEYS, "width", "cells_per_stage", "sparsity", "sparsity_schedule",
                            "sparsity_granularity", "sup_tickets", "attack")
    assert set(space) <= set(CONFIG_KEYS)
    assert space["width"].categories == [8, 16]
    assert space["cells_per_stage"].categories == [1, 2]
    assert space["sparsity"].categories == [0.0, 0.5, 0.8, 0.9]
    assert space["sparsity_schedule"].categories == ["oneshot", "gradual", "set", "rigl"]
    assert space["sparsity_granularity"].categories == list(SPARSITY_GRANULARITIES)
    assert space["sup_tickets"].categories == [False, True]
    assert space["attack"].categories == ["pgd", "fgsm_rs", "trades"]
    # budgets are searched only when asked for; otherwise each method's default applies
    assert build_space(("attack",))["attack"].categories == ["pgd", "fgsm_rs", "trades"]
    assert "eps" not in space and "step_size" not in space
    assert decode({"attack": "fgsm_rs"}).attack.step_size is None


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("dataset", ["digits", "cifar10", "mnist"])
def test_sampled_configs_decode_and_round_trip(seed, dataset):
    space = build_space(dataset=dataset)
    config = sample(space, seed)
    trial = decode({**config, "dataset": dataset})
    assert trial.genotype == Genotype.from_config(config)
    assert trial.macro.width == config["width"]
    assert trial.sparsity.target == config["sparsity"]
    assert trial.attack.method == config["attack"]
    assert trial.attack.eps == DATASET_DEFAULTS[dataset]["eps"]
    assert decode(encode(trial)) == trial


def test_attack_space_depends_on_dataset():
    cifar = decode({"dataset": "cifar10", "attack": "pgd"}).attack
    assert (cifar.eps, cifar.steps, cifar.step_size) == (8.0, 7, 2.0)
    wider = attack_space(dataset="cifar10", eps=(4, 8), methods=("pgd",))
    assert wider["eps"].categories == [4.0, 8.0]
    assert wider["attack"].categories == ["pgd"]
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        attack_space(dataset="imagenet")
    with pytest.raises(ValueError, match="AttackConfig.method"):
        attack_space(methods=("cw",))
    with pytest.raises(ValueError, match="AttackConfig.steps must be >= 1"):
        attack_space(steps=(0,))


def test_sparsity_space_choice_or_range():
    uniform = sparsity_space(target_range=(0.5, 0.95))["sparsity"]
    assert (uniform.lower, uniform.upper) == (0.5, 0.95)
    values = [uniform.sample(random_state=np.random.default_rng(s)) for s in range(20)]
    assert all(0.5 <= v <= 0.95 for v in values)
    assert sparsity_space(targets=(0.9,))["sparsity"].categories == [0.9]
    with pytest.raises(ValueError, match=r"SparsityConfig.target must be in \[0, 0.99\]"):
        sparsity_space(targets=(0.5, 1.0))
    with pytest.raises(ValueError, match="not both"):
        sparsity_space(targets=(0.5,), target_range=(0.1, 0.2))
    with pytest.raises(ValueError, match="low < high"):
        sparsity_space(target_range=(0.5, 0.5))
    with pytest.raises(ValueError, match="'dense'"):
        sparsity_space(schedules=("dense",))


def test_macro_space_validates_choices():
    assert macro_space(widths=(np.int64(4),))["width"].categories == [4]
    with pytest.raises(ValueError, match="MacroConfig.width must be >= 1"):
        macro_space(widths=(0, 8))
    with pytest.raises(ValueError, match="non-empty"):
        macro_space(widths=())
    with pytest.raises(ValueError, match="non-empty"):
        macro_space(cells_per_stage=3)  # type: ignore[arg-type]


def test_build_space_parts_by_name():
    assert list(build_space("cell, macro")) == [*EDGE_KEYS, "width", "cells_per_stage"]
    assert list(build_space(["attack"], dataset="svhn")) == ["attack"]
    with pytest.raises(ValueError, match="unknown space part.*'cells'.*allowed: cell, macro, sparsity, attack"):
        build_space("cells")
    with pytest.raises(ValueError, match="more than once"):
        build_space("cell,cell")
    with pytest.raises(ValueError, match="at least one"):
        build_space("")
    with pytest.raises(ValueError, match="unknown dataset"):
        build_space(dataset="imagenet")
    assert isinstance(SPACE_PARTS, dict)


def test_build_space_accepts_registered_parts(monkeypatch):
    from ray import tune

    monkeypatch.setitem(SPACE_PARTS, "training", lambda *, dataset: {"lr": tune.choice([0.01, 0.05])})
    assert list(build_space("macro,training")) == ["width", "cells_per_stage", "lr"]
    monkeypatch.setitem(SPACE_PARTS, "clash", lambda *, dataset: {"width": tune.choice([4])})
    with pytest.raises(ValueError, match="redefines key.*width"):
        build_space("macro,clash")


# --- decode / encode -----------------------------------------------------------------------


def test_empty_config_is_the_default_trial():
    trial = decode({})
    assert trial == TrialConfig()
    assert trial.genotype.to_str() == DEFAULT_ARCH
    assert trial.macro == MacroConfig(width=8, cells_per_stage=1)
    assert decode({"dataset": "cifar10"}).macro == MacroConfig(width=16, cells_per_stage=5)
    assert trial.sparsity == SparsityConfig(0.0, "none", "unstructured")
    assert trial.training == TrainingConfig("digits", None, 4, 64, 0.05, 0.9, 5e-4, 0)


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "svhn", "npz"])
def test_cifar_like_defaults_follow_nas_robbench(dataset):
    trial = decode({"dataset": dataset})
    assert (trial.attack.eps, trial.attack.steps, trial.attack.step_size) == (8.0, 7, 2.0)
    # Evaluation: PGD-20 with step 2.5 * eps / 20 = 1/255 at eps 8/255.
    assert (trial.evaluation.eps, trial.evaluation.steps, trial.evaluation.step_size) == (8.0, 20, 1.0)
    assert trial.evaluation.max_images == 1000
    assert (trial.training.batch_size, trial.training.lr, trial.training.max_epochs) == (256, 0.05, 50)
    assert (trial.macro.width, trial.macro.cells_per_stage) == (16, 5)
    assert trial.training.augment is (dataset != "npz")  # a user's npz is never flipped unasked


@pytest.mark.parametrize(("dataset", "eps", "steps"), [("mnist", 76.5, 20), ("fashion_mnist", 25.5, 20), ("digits", 25.5, 10)])
def test_digit_evaluation_is_ce_plus_margin_pgd_with_cosine_steps_from_two_eps(dataset, eps, steps):
    evaluation = decode({"dataset": dataset}).evaluation
    assert (evaluation.eps, evaluation.steps, evaluation.restarts) == (eps, steps, 1)
    assert (evaluation.loss, evaluation.schedule, evaluation.step_size) == ("ce+margin", "cosine", 2 * eps)


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "svhn", "npz"])
def test_cifar_like_evaluation_is_nas_robbench_pgd20_on_cross_entropy_with_a_constant_step(dataset):
    evaluation = decode({"dataset": dataset}).evaluation
    assert (evaluation.loss, evaluation.schedule, evaluation.step_size) == ("ce", "constant", 2.5 * 8.0 / 20)


def test_mnist_and_digits_defaults_follow_madrys_step_rule():
    mnist = decode({"dataset": "mnist"})
    assert (mnist.attack.eps, mnist.attack.steps) == (76.5, 10)
    assert mnist.attack.step_size == pytest.approx(2.5 * 76.5 / 10)
    assert decode({"dataset": "fashion_mnist"}).attack.eps == 25.5
    digits = decode({"dataset": "digits"})
    assert (digits.attack.eps, digits.attack.steps) == (25.5, 7)
    assert digits.attack.step_size == pytest.approx(2.5 * 25.5 / 7)
    assert (digits.evaluation.eps, digits.evaluation.steps) == (25.5, 10)
    assert (digits.evaluation.max_images, digits.evaluation.seed) == (0, 0)


def test_every_dataset_has_a_complete_defaults_row():
    assert set(DATASET_DEFAULTS) == set(DATASETS)
    for dataset in DATASETS:
        assert set(DATASET_DEFAULTS[dataset]) <= set(CONFIG_KEYS)
        assert decode({"dataset": dataset}).training.dataset == dataset


def test_given_values_override_dataset_defaults():
    trial = decode({"dataset": "cifar10", "eps": 4, "eval_images": 0, "batch_size": 64, "data_dir": "/data"})
    assert (trial.attack.eps, trial.attack.step_size) == (4.0, 2.0)
    assert trial.evaluation.max_images == 0
    assert trial.training.batch_size == 64
    assert trial.training.data_dir == "/data"


def test_fgsm_rs_keeps_its_own_step_unless_one_is_given():
    trial = decode({"attack": "fgsm_rs", "dataset": "cifar10"})
    assert trial.attack.step_size is None
    assert decode(encode(trial)) == trial
    assert decode({"attack": "fgsm_rs", "step_size": 10}).attack.step_size == 10.0
    assert decode({"attack": "pgd", "dataset": "cifar10"}).attack.step_size == 2.0
    with pytest.raises(ValueError, match="'step_size'.*None only with method 'fgsm_rs', got 'pgd'"):
        decode({"attack": "pgd", "step_size": None})


def test_cell_from_arch_or_edge_keys():
    genotype = Genotype.from_str(ARCH)
    assert decode({"arch": ARCH}).genotype == genotype
    assert decode(genotype.to_config()).genotype == genotype


def test_numpy_scalars_are_accepted_as_plain_values():
    trial = decode({
        "width": np.int64(8), "sparsity": np.float64(0.5), "eps": np.float32(16.0), "attack_steps": 3.0,
        "attack": np.str_("trades"), "eval_images": np.int32(100),
    })
    assert trial.macro.width == 8 and type(trial.macro.width) is int
    assert trial.sparsity.target == 0.5 and type(trial.sparsity.target) is float
    assert type(trial.attack.eps) is float and trial.attack.steps == 3 and type(trial.attack.steps) is int
    assert trial.attack.method == "trades" and type(trial.attack.method) is str
    assert trial.evaluation.max_images == 100


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"widht": 8}, "unknown config key.*'widht'"),
        ({"sparsity": 1.0}, r"'sparsity'.*SparsityConfig.target must be in \[0, 0.99\], got 1.0"),
        ({"sparsity": -0.1}, "'sparsity'"),
        ({"eps": -1}, r"'eps'.*AttackConfig.eps must be in \[0, 255\], got -1.0"),
        ({"eval_eps": 300}, "'eval_eps'.*EvalConfig.eps"),
        ({"attack_steps": 0}, "'attack_steps'.*must be >= 1, got 0"),
        ({"attack_steps": 2.5}, "'attack_steps'.*must be an integer, got 2.5"),
        ({"attack_steps": "7"}, "'attack_steps'.*must be an integer, got '7' \\(str\\)"),
        ({"step_size": 0}, r"'step_size'.*must be in \(0, 255\]"),
        ({"trades_beta": -1}, "'trades_beta'"),
        ({"width": True}, "'width'.*MacroConfig.width must be an integer, got True \\(bool\\)"),
        ({"cells_per_stage": 0}, "'cells_per_stage'"),
        ({"lr": 0}, r"'lr'.*must be in \(0, inf\), got 0.0"),
        ({"lr": "0.1"}, "'lr'.*must be a number"),
        ({"lr": float("nan")}, "'lr'.*finite"),
        ({"momentum": 1.0}, "'momentum'"),
        ({"max_epochs": 0}, "'max_epochs'"),
        ({"batch_size": np.int64(0)}, "'batch_size'"),
        ({"eval_images": -1}, "'eval_images'.*EvalConfig.max_images"),
        ({"eval_seed": -1}, "'eval_seed'"),
        ({"eval_restarts": 0}, "'eval_restarts'.*EvalConfig.restarts must be >= 1, got 0"),
        ({"eval_restarts": -1}, "'eval_restarts'.*EvalConfig.restarts must be >= 1, got -1"),
        ({"eval_restarts": "x"}, "'eval_restarts'.*must be an integer, got 'x' \\(str\\)"),
        ({"eval_restarts": True}, "'eval_restarts'.*must be an integer, got True \\(bool\\)"),
        ({"eval_loss": "cw"}, "'eval_loss'.*EvalConfig.loss must be one of 'ce', 'margin', 'ce\\+margin', got 'cw'"),
        ({"eval_loss": 0}, "'eval_loss'.*EvalConfig.loss must be one of .*, got 0"),
        ({"seed": False}, "'seed'"),
        ({"attack": "cw"}, "'attack'.*one of 'pgd', 'fgsm_rs', 'trades', 'none', got 'cw'"),
        ({"sparsity_schedule": "linear"}, "'sparsity_schedule'"),
        ({"sparsity_granularity": "block"}, "'sparsity_granularity'"),
        ({"sparsity_schedule": "snip"}, "'sparsity_schedule'.*'none', 'oneshot', 'gradual', 'set', 'rigl', got 'snip'"),
        ({"sparsity_drop_fraction": 0.0}, r"'sparsity_drop_fraction'.*must be in \(0, 1\), got 0.0"),
        ({"sparsity_drop_fraction": 1.0}, r"'sparsity_drop_fraction'.*must be in \(0, 1\), got 1.0"),
        ({"sparsity_update_every": 0}, "'sparsity_update_every'.*must be >= 1, got 0"),
        ({"sparsity_update_every": 2.5}, "'sparsity_update_every'.*must be an integer"),
        ({"sup_tickets": 1}, "'sup_tickets'.*must be true or false"),
        ({"dataset": "imagenet"}, "'dataset'.*'digits', 'cifar10'"),
        ({"data_dir": 5}, "'data_dir'"),
        ({"arch": ARCH.replace("avg_pool_3x3", "max_pool_3x3")}, "unknown op 'max_pool_3x3'"),
        ({"edge_1_0": "none", "edge_2_0": "none"}, "lacks edge key.*edge_2_1"),
        ({"arch": ARCH, "edge_1_0": "none"}, "either as 'arch' or as the edge keys"),
        ({**Genotype.from_str(ARCH).to_config(), "edge_3_2": "conv"}, "unknown op 'conv' on edge_3_2"),
    ],
)
def test_decode_rejects_bad_configs(config, message):
    with pytest.raises(ValueError, match=message):
        decode(config)


def test_decode_rejects_non_mappings_and_skips_ignored_keys():
    with pytest.raises(ValueError, match="mapping"):
        decode([("width", 8)])  # type: ignore[arg-type]
    trial = decode({"width": 8, "score_weights": {"robust_acc": 1.0}}, ignore=("score_weights",))
    assert trial.macro.width == 8
    assert decode({"width": -1}, ignore={"width"}).macro.width == 8
    with pytest.raises(ValueError, match="collection of key names"):
        decode({}, ignore="score_weights")  # type: ignore[arg-type]


def test_encode_is_flat_and_inverted_by_decode():
    trial = decode({
        "arch": ARCH, "width": 8, "cells_per_stage": 2, "sparsity": 0.8, "sparsity_schedule": "gradual",
        "sparsity_granularity": "channel", "attack": "fgsm_rs", "eps": 8, "attack_steps": 1, "step_size": 10,
        "trades_beta": 1.0, "eval_eps": 8, "eval_steps": 20, "eval_step_size": 0.8, "eval_seed": 3,
        "eval_images": 500, "eval_restarts": 3, "eval_loss": "margin", "dataset": "cifar10", "data_dir": "/tmp/data", "max_epochs": 5,
        "batch_size": 32, "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, "seed": 7,
    })
    flat = encode(trial)
    assert tuple(flat) == ("arch", "width", "cells_per_stage", *CONFIG_FIELDS)
    assert flat["arch"] == ARCH and flat["eval_seed"] == 3 and flat["sparsity_granularity"] == "channel"
    assert flat["eval_restarts"] == 3 and trial.evaluation.restarts == 3
    assert flat["eval_loss"] == "margin" and trial.evaluation.loss == "margin"
    assert decode(flat) == trial
    assert decode(encode(TrialConfig())) == TrialConfig()
    with pytest.raises(ValueError, match="TrialConfig"):
        encode(flat)  # type: ignore[arg-type]


def test_config_keys_table_covers_every_dataclass_field():
    sections = {"sparsity": SparsityConfig, "attack": AttackConfig,
                "evaluation": EvalConfig, "training": TrainingConfig, "robust": RobustTrainingConfig}
    targets = {(dest.section, dest.field) for dest in CONFIG_FIELDS.values()}
    expected = {(name, f.name) for name, cls in sections.items() for f in dataclasses.fields(cls)}
    assert targets == expected
    assert CONFIG_KEYS[:7] == ("arch", *EDGE_KEYS)


# --- dataclasses ---------------------------------------------------------------------------


def test_configs_are_frozen_and_validate_directly():
    config = AttackConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.eps = 1.0  # type: ignore[misc]
    assert AttackConfig(method="none", eps=0).eps == 0.0
    assert set(ATTACK_METHODS) == {"pgd", "fgsm_rs", "trades", "none"}
    with pytest.raises(ValueError, match="EvalConfig.steps must be an integer"):
        EvalConfig(steps=1.5)
    with pytest.raises(ValueError, match="TrainingConfig.weight_decay"):
        TrainingConfig(weight_decay=-1e-4)
    with pytest.raises(ValueError, match="MacroConfig.cells_per_stage"):
        MacroConfig(cells_per_stage=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="TrialConfig.network must be one of NB201Arch, ResNetArch"):
        TrialConfig(network={"width": 8})
    assert TrainingConfig(data_dir=Path("/x")).data_dir == "/x"


def test_sparsity_space_searches_the_dynamic_sparsity_keys_when_given_choices():
    space = sparsity_space(schedules=("set", "rigl"), drop_fractions=(0.1, 0.3), update_every=(5, 20),
                           sup_tickets=(False, True))
    assert space["sparsity_drop_fraction"].categories == [0.1, 0.3]
    assert space["sparsity_update_every"].categories == [5, 20]
    assert space["sup_tickets"].categories == [False, True]
    assert sparsity_space()["sup_tickets"].categories == [False, True]
    assert sparsity_space()["sparsity_schedule"].categories == ["oneshot", "gradual", "set", "rigl"]
    assert sparsity_space(schedules=("oneshot", "rigl"), sup_tickets=(True,))["sup_tickets"].categories == [True]
    # Without a dynamic schedule the dynamic keys are no-ops, as ema_decay is without EMA.
    static = decode({"sparsity": 0.5, "sparsity_schedule": "gradual", "sup_tickets": True, "sparsity_update_every": 3})
    assert static.sparsity.sup_tickets and not static.sparsity.dynamic
    assert decode({"sup_tickets": True}).sparsity.sup_tickets
    with pytest.raises(ValueError, match=r"drop_fraction must be in \(0, 1\)"):
        sparsity_space(drop_fractions=(0.3, 1.5))
    with pytest.raises(ValueError, match="update_every must be >= 1"):
        sparsity_space(update_every=(0,))
    trial = decode({"sparsity": 0.9, "sparsity_schedule": "rigl", "sup_tickets": True})
    assert (trial.sparsity.drop_fraction, trial.sparsity.update_every, trial.sparsity.sup_tickets) == (0.3, 5, True)
    assert decode({"dataset": "cifar10"}).sparsity.update_every == 100  # RigL's interval
    assert encode(trial)["sup_tickets"] is True and decode(encode(trial)) == trial


def test_sparsity_is_active_only_with_a_target_and_a_schedule():
    assert not SparsityConfig().active
    assert not SparsityConfig(target=0.9, schedule="none").active
    assert not SparsityConfig(target=0.0, schedule="oneshot").active
    assert SparsityConfig(target=0.5, schedule="gradual", granularity="channel").active
    assert math.isclose(SparsityConfig(target=np.float64(0.99)).target, 0.99)
