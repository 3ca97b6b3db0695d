"""Robust-training methods inside a trial: AWP, averaged weights, the overfitting stop, and
their keys in spaces, records and the front."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from robnas.analysis._front import analyze_trials, exclusion_reasons
from robnas.spaces import Objective, build_space, decode
from robnas.spaces._effective import effective_key
from robnas.trainables import TrialRunner
from robnas.trainables import _overfit
from robnas.trainables._adversarial import evaluate_robustness
from robnas.trainables._epochs import TrialEpochs
from robnas.trainables._precision import PrecisionForward

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"


def tiny(**overrides):
    return decode({"arch": ARCH, "width": 4, "cells_per_stage": 1, "max_epochs": 2, "attack_steps": 2,
                   "eval_steps": 3, "eval_images": 120, **overrides})


def weights(runner):
    return [p.detach().clone() for p in runner.model.parameters()]


def test_awp_changes_the_training_and_gamma_zero_is_plain_training():
    plain, zero, awp = TrialRunner(tiny()), TrialRunner(tiny(awp_gamma=0.0)), TrialRunner(tiny(awp_gamma=0.01))
    for runner in (plain, zero, awp):
        runner.run_epoch()
    assert all(torch.equal(a, b) for a, b in zip(weights(plain), weights(zero)))
    assert not all(torch.equal(a, b) for a, b in zip(weights(plain), weights(awp)))


def test_evaluation_uses_the_averaged_weights():
    runner = TrialRunner(tiny(weight_averaging="ema", ema_decay=0.9))
    row = runner.run_epoch()
    assert runner.averaged.updates == runner.steps_per_epoch
    averaged = list(runner.averaged.model.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(averaged, runner.model.parameters()))
    forward = PrecisionForward(runner.averaged.model, precision="fp32", memory_format="contiguous", device_type="cpu")
    expected = evaluate_robustness(forward, runner.x_val, runner.y_val, runner.config.evaluation)
    assert (row["clean_acc"], row["robust_acc"]) == expected
    # Without averaging, the trained weights are evaluated and no copy is kept.
    assert TrialRunner(tiny()).averaged is None


def test_fgsm_rs_trials_report_the_check_and_others_do_not():
    row = TrialRunner(tiny(attack="fgsm_rs", max_epochs=1)).run_epoch()
    assert row["catastrophic_overfit"] is False
    assert 0.0 <= row["probe_pgd_acc"] <= row["probe_fgsm_acc"] + 1.0
    assert "catastrophic_overfit" not in TrialRunner(tiny(max_epochs=1)).run_epoch()


@pytest.mark.parametrize("stop", [True, False])
def test_a_trial_told_to_stop_on_overfitting_stops_after_reporting_it(stop, monkeypatch):
    monkeypatch.setattr(_overfit, "is_catastrophic", lambda before, after: True)
    rows = list(TrialEpochs(TrialRunner(tiny(attack="fgsm_rs", stop_on_overfit=stop, max_epochs=2))))
    assert [row["catastrophic_overfit"] for row in rows] == ([True] if stop else [True, True])
    assert rows[-1].get("stopped_on_overfit", False) is stop


def test_an_overfitted_trial_never_enters_the_front():
    trials = pd.DataFrame({
        "trial_id": ["a", "b", "c"], "status": ["TERMINATED"] * 3, "epoch": [2, 2, 1],
        "complete": [True, True, False], "stopped_early": [False, False, False], "diverged": [False] * 3,
        "catastrophic_overfit": [None, True, True], "clean_acc": [0.5, 0.9, 0.9], "robust_acc": [0.3, 0.9, 0.9],
        "duplicate_of": [""] * 3, "started_at": [0.0, 1.0, 2.0], "finished_at": [3.0, 4.0, 5.0],
        "wall_time_s": [3.0, 4.0, 5.0], "search_time_s": [3.0, 4.0, 5.0], "error": [""] * 3,
    })
    objectives = [Objective("clean_acc", "max"), Objective("robust_acc", "max")]
    assert exclusion_reasons(trials, objectives, max_epochs=2).tolist() == ["", "catastrophic overfit",
                                                                             "catastrophic overfit"]
    result = analyze_trials(trials, objectives, max_epochs=2)
    assert list(result.front["trial_id"]) == ["a"] and result.summary["n_catastrophic_overfit"] == 2


def test_the_training_space_part_and_the_network_key():
    space = build_space("cell,attack,training")
    assert {"awp_gamma", "weight_averaging", "part", "stop_on_overfit"} <= set(space)
    assert sorted(space["awp_gamma"].categories) == [0.0, 0.005, 0.01]
    assert sorted(space["weight_averaging"].categories) == ["ema", "none", "wot"]
    assert space["part"].categories == [False, True] and space["stop_on_overfit"].categories == [False, True]
    for method in ("pgd", "fgsm_rs", "trades", "none"):  # every attack takes every method key
        decode({"attack": method, "part": True, "stop_on_overfit": True, "awp_gamma": 0.01})
    # Keys that cannot change the training do not make another network.
    assert effective_key({"ema_decay": 0.9}) == effective_key({})
    assert effective_key({"stop_on_overfit": True}) == effective_key({})
    assert effective_key({"attack": "trades", "stop_on_overfit": True}) == effective_key({"attack": "trades"})
    assert effective_key({"attack": "none", "part": True}) == effective_key({"attack": "none"})
    assert effective_key({"attack": "trades", "part": True}) != effective_key({"attack": "trades"})
    assert effective_key({"attack": "fgsm_rs", "stop_on_overfit": True}) != effective_key({"attack": "fgsm_rs"})
    assert effective_key({"weight_averaging": "ema", "ema_decay": 0.9}) != effective_key({"weight_averaging": "ema"})
    assert effective_key({"awp_gamma": 0.01}) != effective_key({})
    with pytest.raises(ValueError, match="'ema_decay'"):
        decode({"ema_decay": 1.0})
