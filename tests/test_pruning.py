from __future__ import annotations

import pytest
import torch
from torch import nn

from robnas.trainables._pruning import MaskSet, measured_sparsity, scheduled_sparsity


def _init(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return model


def _model(seed: int = 0) -> nn.Module:
    """Conv 4x3x3x3 (108 weights), BN, Linear 10x4 (40 weights), Linear 10x10 (100 weights)."""
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 10)),
    )
    return _init(model, seed)


def _zeros(w: torch.Tensor) -> int:
    return int((w == 0).sum())


def test_for_model_masks_conv_and_linear_weights_in_module_order():
    model = _model()
    masks = MaskSet.for_model(model)
    assert list(masks.masks) == ["0.weight", "5.0.weight", "5.2.weight"]
    assert all(m.dtype == torch.bool and m.all() for m in masks.masks.values())
    assert masks.masks["0.weight"].shape == (4, 3, 3, 3)
    assert masks.sparsity == 0.0
    assert list(MaskSet.for_model(nn.Linear(3, 2)).masks) == ["weight"]


def test_unstructured_prunes_exact_counts_of_smallest_magnitudes():
    model = _model()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    masks = MaskSet.for_model(model)
    masks.prune_to(model, 0.3)
    conv, fc1, fc2 = model[0].weight, model[5][0].weight, model[5][2].weight
    assert (_zeros(conv), _zeros(fc1), _zeros(fc2)) == (32, 12, 30)  # round(32.4), round(12), round(30)
    for name, w in (("0.weight", conv), ("5.2.weight", fc2)):
        pruned = w == 0
        assert before[name][pruned].abs().max() < before[name][~pruned].abs().min()
        assert torch.equal(w[~pruned], before[name][~pruned])
        assert torch.equal(pruned, ~masks.masks[name])
    assert torch.equal(model[5][2].bias, before["5.2.bias"])
    assert torch.equal(model[1].weight, before["1.weight"])
    assert measured_sparsity(model) == pytest.approx((32 + 12 + 30) / 248)
    assert masks.sparsity == pytest.approx((32 + 12 + 30) / 248)


def test_masks_only_grow_and_keep_one_weight_per_layer():
    model = _model()
    masks = MaskSet.for_model(model)
    masks.prune_to(model, 0.3)
    first = ~masks.masks["5.2.weight"]
    with torch.no_grad():  # pruned weights come back large, as if trained without apply()
        model[5][2].weight[first] = 100.0
    masks.prune_to(model, 0.5)
    second = ~masks.masks["5.2.weight"]
    assert int(second.sum()) == 50 and bool(second[first].all())
    masks.prune_to(model, 0.2)  # a lower target never regrows weights
    assert torch.equal(~masks.masks["5.2.weight"], second)
    masks.prune_to(model, 1.0)
    assert [int(m.sum()) for m in masks.masks.values()] == [1, 1, 1]


def test_channel_granularity_prunes_whole_filters_with_smallest_l1_norm():
    model = _model()
    scale = torch.tensor([3.0, 1.0, 4.0, 2.0])  # filter L1 order: 1 < 3 < 0 < 2
    with torch.no_grad():
        model[0].weight.copy_(scale.view(4, 1, 1, 1) * torch.ones(4, 3, 3, 3))
        model[0].weight[:, 0].neg_()
    masks = MaskSet.for_model(model, granularity="channel")
    masks.prune_to(model, 0.5)
    zero_filters = (model[0].weight == 0).flatten(1).all(dim=1)
    assert zero_filters.tolist() == [False, True, False, True]
    assert (model[0].weight[[0, 2]] != 0).all()
    # Linear layers lose whole output rows: 0.5 * 10 = 5 rows of each.
    for layer in (model[5][0], model[5][2]):
        rows = (layer.weight == 0).all(dim=1)
        assert int(rows.sum()) == 5 and _zeros(layer.weight) == 5 * layer.weight.shape[1]
    masks.prune_to(model, 0.3)  # round(1.2) = 1 < 2 pruned already: nothing changes
    assert (model[0].weight == 0).flatten(1).all(dim=1).tolist() == [False, True, False, True]
    masks.prune_to(model, 1.0)
    assert int((model[0].weight != 0).flatten(1).any(dim=1).sum()) == 1


def test_pruned_weights_stay_zero_through_sgd_with_momentum_and_weight_decay():
    model = _model()
    masks = MaskSet.for_model(model)
    masks.prune_to(model, 0.5)
    pruned = {name: ~m for name, m in masks.masks.items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.rand((8, 3, 5, 5), generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
        assert any((model.get_parameter(n)[p] != 0).any() for n, p in pruned.items())
        masks.apply(model)
        for name, p in pruned.items():
            w = model.get_parameter(name)
            assert (w[p] == 0).all() and (w[~p] != 0).all()
    assert measured_sparsity(model) == pytest.approx((54 + 20 + 50) / 248)


def test_state_dict_round_trips_through_torch_save(tmp_path):
    model = _model()
    masks = MaskSet.for_model(model, granularity="channel")
    masks.prune_to(model, 0.5)
    torch.save(masks.state_dict(), tmp_path / "masks.pt")
    state = torch.load(tmp_path / "masks.pt", weights_only=True)
    fresh_model = _model(seed=1)
    restored = MaskSet.for_model(fresh_model, granularity="channel")
    restored.load_state_dict(state)
    assert list(restored.masks) == list(masks.masks)
    assert all(torch.equal(restored.masks[n], masks.masks[n]) for n in masks.masks)
    restored.apply(fresh_model)
    assert measured_sparsity(fresh_model) == measured_sparsity(model)
    with pytest.raises(ValueError, match="missing"):
        restored.load_state_dict({"0.weight": state["0.weight"]})
    with pytest.raises(ValueError, match="shape"):
        restored.load_state_dict({**state, "0.weight": torch.ones(2, 2, dtype=torch.bool)})


def test_gradual_schedule_follows_the_cubic_formula():
    values = [scheduled_sparsity("gradual", 0.8, t, 5) for t in range(5)]
    # 0.8 * (1 - (1 - t/4)^3) for t = 0..4
    assert values == pytest.approx([0.0, 0.4625, 0.7, 0.7875, 0.8])
    assert scheduled_sparsity("gradual", 0.8, 9, 5) == pytest.approx(0.8)
    assert scheduled_sparsity("gradual", 0.8, 0, 1) == 0.8
    assert scheduled_sparsity("gradual", 0.5, 1, 2) == 0.5


def test_none_and_oneshot_schedules():
    assert [scheduled_sparsity("none", 0.9, t, 3) for t in range(3)] == [0.0, 0.0, 0.0]
    assert [scheduled_sparsity("oneshot", 0.9, t, 3) for t in range(3)] == [0.9, 0.9, 0.9]


def test_bad_arguments_raise_value_errors_naming_them():
    model = _model()
    with pytest.raises(ValueError, match="'filter'.*unstructured, channel"):
        MaskSet.for_model(model, granularity="filter")
    with pytest.raises(ValueError, match="sparsity"):
        MaskSet.for_model(model).prune_to(model, 1.5)
    with pytest.raises(ValueError, match="'cubic'.*none, oneshot, gradual"):
        scheduled_sparsity("cubic", 0.5, 0, 3)
    with pytest.raises(ValueError, match="max_epochs"):
        scheduled_sparsity("gradual", 0.5, 0, 0)
    with pytest.raises(ValueError, match="epoch"):
        scheduled_sparsity("gradual", 0.5, -1, 3)
    with pytest.raises(ValueError, match="does not match"):
        MaskSet.for_model(model).apply(nn.Linear(2, 2))


def test_measured_sparsity_counts_only_conv_and_linear_weights():
    model = _model()
    with torch.no_grad():
        model[0].weight[0].zero_()  # 27 of 248 prunable weights
        model[0].bias.zero_()
        model[1].weight.zero_()
    assert measured_sparsity(model) == pytest.approx(27 / 248)
    assert measured_sparsity(nn.ReLU()) == 0.0
