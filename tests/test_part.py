"""Pixel-reweighted adversarial training: CAM, per-pixel budgets, the attack inside them (PGD,
FGSM-RS and TRADES)."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from robnas.spaces import decode
from robnas.trainables import TrialRunner
from robnas.spaces._attack import budget_fraction
from robnas.trainables._part import class_activation_map, part_examples, part_training_examples, pixel_budget
from robnas.trainables._trades import trades_examples


def test_the_budget_is_eps_on_the_top_region_and_eps_low_elsewhere():
    cam = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    budget = pixel_budget(cam, eps=0.1, eps_low=0.05)
    # Image 0: (1 - 0.25) > std 0.5 marks the hot pixel only; image 1 is flat: nothing is important.
    assert budget.shape == (2, 1, 2, 2)
    assert torch.allclose(budget[0, 0], torch.tensor([[0.1, 0.05], [0.05, 0.05]]))
    assert budget[1].eq(0.05).all()


def test_the_map_of_an_identity_stage_is_the_normalised_image():
    stage = nn.ReLU()
    head = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    model = nn.Sequential(stage, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    cam = class_activation_map(model, stage, x)  # class 0 wins; its gradient is 1/16 everywhere
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    expected = ((x - low) / (x.amax(dim=(1, 2, 3), keepdim=True) - low)).squeeze(1)
    assert torch.allclose(cam, expected, atol=1e-6)
    assert all(p.grad is None for p in model.parameters())


def test_the_attack_uses_each_pixels_whole_budget_and_never_more():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x = torch.full((5, 1, 2, 2), 0.5)
    y = torch.zeros(5, dtype=torch.long)
    budget = torch.tensor([[0.1, 0.05], [0.05, 0.05]]).expand(5, 1, 2, 2)
    x_adv = part_examples(model, x, y, budget, eps=0.1, step_size=0.1, steps=3,
                          generator=torch.Generator().manual_seed(0))
    # A linear model's gradient sign never changes: every pixel ends on its budget's edge.
    assert torch.allclose((x_adv - x).abs(), budget, atol=1e-7)
    assert ((x_adv - x).abs() <= budget + 1e-7).all()


def test_a_part_trial_trains_plainly_during_its_warm_up_then_differs():
    common = {"width": 4, "cells_per_stage": 1, "max_epochs": 4, "attack_steps": 2, "eval_steps": 2}
    plain, part = TrialRunner(decode(common)), TrialRunner(decode({**common, "part": True}))
    first = [plain.run_epoch(), part.run_epoch()]  # epoch 1 of 4: the warm-up
    assert first[0]["train_loss"] == first[1]["train_loss"]
    second = [plain.run_epoch(), part.run_epoch()]
    assert second[0]["train_loss"] != second[1]["train_loss"]


def test_trades_with_part_attacks_inside_the_per_pixel_budget():
    runner = TrialRunner(decode({"width": 4, "cells_per_stage": 1, "attack": "trades", "part": True,
                                 "max_epochs": 1, "attack_steps": 2, "eval_steps": 1, "eval_images": 10}))
    runner.run_epoch()  # a trained network's maps are not flat
    x, y = runner.x_train[:16], runner.y_train[:16]
    attack = dataclasses.replace(runner.config.attack, steps=10)  # enough steps to reach the budget
    eps = budget_fraction(attack.eps)
    low = runner.config.robust.part_eps_low * eps
    cam = class_activation_map(runner.forward_model, runner.model.lastact, x)
    budget = pixel_budget(cam, eps=eps, eps_low=low)
    assert (budget <= eps).all()
    # The CAM's top region (its hottest pixel of every non-flat map) keeps the whole eps.
    flat = cam.flatten(1)
    hot = flat.argmax(dim=1)
    assert torch.equal(budget.flatten(1)[torch.arange(16), hot][flat.amax(1) > flat.mean(1)].unique(),
                       torch.tensor([eps], dtype=budget.dtype))
    x_adv = part_training_examples(runner.forward_model, runner.model.lastact, x, y, attack,
                                   eps_low=runner.config.robust.part_eps_low, generator=torch.Generator().manual_seed(3))
    step = (x_adv - x).abs()
    assert (step <= budget + 1e-6).all() and (step <= eps + 1e-6).all()
    important = budget.expand_as(step) == eps
    assert step[important].max() > low + 1e-6 and step[~important].max() <= low + 1e-6
    # TRADES' own KL attack, with the budget in place of eps.
    expected = trades_examples(runner.forward_model, x, eps=eps, step_size=budget_fraction(attack.step_size),
                               steps=attack.steps, budget=budget, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x_adv, expected)


def test_part_is_a_no_op_with_clean_training():
    common = {"width": 4, "cells_per_stage": 1, "max_epochs": 1, "attack": "none"}
    rows = [TrialRunner(decode({**common, "part": part})).run_epoch() for part in (False, True)]
    assert rows[0]["train_loss"] == rows[1]["train_loss"]
