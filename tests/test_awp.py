"""Adversarial weight perturbation: sizes per layer, which weights move, exact restore."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robnas.trainables._awp import awp_perturbation, perturbed_weights, weight_perturbation


def small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(8, 1, 6, 6, generator=g), torch.randint(0, 4, (8,), generator=g)


def test_a_linear_layer_moves_by_gamma_times_its_norm_along_the_gradient():
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 4.0]]))  # norm 5
    x = torch.tensor([[1.0, 0.0]])
    delta = weight_perturbation(layer, lambda: layer(x).sum(), 0.1)  # gradient (1, 0)
    assert torch.allclose(delta["weight"], torch.tensor([[0.5, 0.0]]))


def test_each_layer_is_perturbed_by_gamma_times_its_own_norm_and_only_weights_move():
    model, (x, y) = small_net(), batch()
    assert [name for name, _ in perturbed_weights(model)] == ["0.weight", "4.weight"]
    delta = weight_perturbation(model, lambda: F.cross_entropy(model(x), y), 0.01)
    for name, w in perturbed_weights(model):
        assert delta[name].norm().item() == pytest.approx(0.01 * w.norm().item(), rel=1e-5)
    before = copy.deepcopy(model.state_dict())
    with awp_perturbation(model, lambda: F.cross_entropy(model(x), y), 0.01):
        inside = model.state_dict()
        for name, value in before.items():
            moved = not torch.equal(inside[name], value)
            assert moved == (name in ("0.weight", "4.weight")), name  # no bias, BN or running stat
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())  # bit-identical


def test_the_perturbation_ascends_the_loss_and_leaves_gradients_and_statistics_alone():
    model, (x, y) = small_net(), batch()
    model.train()
    loss = lambda: F.cross_entropy(model(x), y)  # noqa: E731
    with torch.no_grad():
        plain = loss().item()
    stats = model[1].running_mean.clone()
    with awp_perturbation(model, loss, 0.05):
        assert model[1].running_mean.equal(stats)  # the perturbation's forward pass left no trace
        assert all(p.grad is None for p in model.parameters())
        with torch.no_grad():
            assert loss().item() > plain


def test_the_step_is_a_plain_step_from_the_original_weights_with_the_perturbed_gradient():
    model, (x, y) = small_net(), batch()
    twin = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loss = lambda net: F.cross_entropy(net(x), y)  # noqa: E731

    with awp_perturbation(model, lambda: loss(model), 0.01):
        optimizer.zero_grad()
        loss(model).backward()
    optimizer.step()

    # By hand: the same perturbation on a copy, its gradients, a step of the unperturbed twin.
    delta = weight_perturbation(twin, lambda: loss(twin), 0.01)
    moved = copy.deepcopy(twin)
    with torch.no_grad():
        for name, w in perturbed_weights(moved):
            w.add_(delta[name])
    loss(moved).backward()
    for p, q in zip(twin.parameters(), moved.parameters()):
        p.grad = q.grad.clone()
    twin_optimizer.step()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        assert torch.equal(p, q), name


def test_pruned_weights_stay_zero_and_gamma_zero_does_nothing():
    model, (x, y) = small_net(), batch()
    keep = {"0.weight": torch.rand(model[0].weight.shape) > 0.5}
    with torch.no_grad():
        model[0].weight.mul_(keep["0.weight"])
    delta = weight_perturbation(model, lambda: F.cross_entropy(model(x), y), 0.01, keep=keep)
    assert torch.all(delta["0.weight"][~keep["0.weight"]] == 0)
    assert delta["0.weight"].norm().item() == pytest.approx(0.01 * model[0].weight.norm().item(), rel=1e-5)
    calls = []
    with awp_perturbation(model, lambda: calls.append(1), 0.0):
        pass
    assert calls == []
