"""Weighted optimisation trajectories: the record, the fit by hand, batch-norm re-estimation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robnas.spaces import decode
from robnas.trainables import TrialRunner
from robnas.trainables._wot import WotTrajectory, parameter_blocks, reestimate_batch_norm


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(1, 1, bias=False)
        self.cells = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 1)])
        self.head = nn.Linear(1, 1)


def test_blocks_are_top_level_modules_and_list_elements():
    assert parameter_blocks(Net()) == [0, 1, 1, 2, 2, 3, 3]


def set_weight(layer: nn.Linear, value: float) -> None:
    with torch.no_grad():
        layer.weight.fill_(value)


def test_the_record_keeps_one_change_per_gap_from_the_first_step():
    layer = nn.Linear(1, 1, bias=False)
    trajectory = WotTrajectory(layer, segments=2, gap=2)
    done = []
    for value in (1.0, 3.0, 4.0, 8.0):  # the weights after steps 1 to 4
        set_weight(layer, value)
        done.append(trajectory.record(layer))
    assert done == [False, False, False, True]
    assert trajectory.origin[0].item() == 1.0
    assert [d[0].item() for d in trajectory.deltas] == [2.0, 5.0]  # 3 - 1, then 8 - 3


def test_the_fit_descends_the_held_out_loss_by_hand():
    layer = nn.Linear(1, 1, bias=False)
    trajectory = WotTrajectory(layer, segments=1, gap=1)
    set_weight(layer, 0.0)
    trajectory.record(layer)  # origin 0
    set_weight(layer, 1.0)
    assert trajectory.record(layer)  # one piece: +1
    alphas = trajectory.reweight(layer, lambda fit_pass: ((layer.weight - 0.5) ** 2).sum())
    # alpha <- alpha - 0.1 * 2 (alpha - 0.5), from 1, ten times: 0.5 + 0.5 * 0.8 ** 10.
    assert alphas.shape == (1, 1)
    assert alphas.item() == pytest.approx(0.5 + 0.5 * 0.8**10)
    assert layer.weight.item() == pytest.approx(alphas.item())
    assert trajectory.deltas == [] and trajectory.origin[0].item() == pytest.approx(alphas.item())
    assert layer.weight.grad is None


@pytest.mark.parametrize(("slope", "expected"), [(-100.0, 1.0), (100.0, 0.0)])
def test_the_weights_stay_within_zero_and_one(slope, expected):
    layer = nn.Linear(1, 1, bias=False)
    trajectory = WotTrajectory(layer, segments=1, gap=1)
    set_weight(layer, 0.0)
    trajectory.record(layer)
    set_weight(layer, 1.0)
    trajectory.record(layer)
    assert trajectory.reweight(layer, lambda p: slope * layer.weight.sum()).item() == expected


def test_batch_norm_statistics_are_averaged_over_the_images():
    norm = nn.BatchNorm1d(1)
    x = torch.tensor([[1.0], [3.0], [5.0], [7.0]])
    norm.eval()
    reestimate_batch_norm(norm, x, batch_size=2)
    assert norm.running_mean.item() == pytest.approx(4.0) and not norm.training
    assert norm.momentum == 0.1


def test_a_wot_trial_holds_out_its_fitting_batch_and_reweights():
    config = decode({"width": 4, "cells_per_stage": 1, "max_epochs": 1, "attack_steps": 2, "eval_steps": 2,
                     "weight_averaging": "wot"})
    runner = TrialRunner(config)
    assert len(runner.x_fit) == 64 and len(runner.x_train) == 1257 - 64
    assert runner.wot.gap == runner.steps_per_epoch // 4
    row = runner.run_epoch()
    alphas = runner.wot.alphas
    assert alphas is not None and alphas.shape == (4, runner.wot.n_blocks)
    assert bool(((alphas >= 0) & (alphas <= 1)).all())
    assert 0.0 <= row["robust_acc"] <= row["clean_acc"] <= 1.0
