"""SET, RigL and Chase-style channel updates, and Sup-tickets, on tiny hand-checkable networks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robnas.spaces import decode
from robnas.spaces._sparsity import SparsityConfig
from robnas.trainables._counting import count_macs
from robnas.trainables._drop_grow import drop_and_grow, random_keep
from robnas.trainables._dynamic_sparsity import DynamicSparsity, cosine_drop_fraction
from robnas.trainables._pruning import MaskSet
from robnas.trainables._sup_tickets import SupTickets


def _model(seed: int = 0) -> nn.Module:
    """Conv 4x3x3x3 (108 weights), BN, Linear 10x4 (40 weights), Linear 10x10 (100 weights)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 10)),
    )


def _dynamic(schedule="rigl", granularity="unstructured", target=0.5, seed=0, total_steps=100, **kw):
    config = SparsityConfig(target=target, schedule=schedule, granularity=granularity, **kw)
    return DynamicSparsity(config, total_steps=total_steps, seed=seed, lr=0.1)


def _layer_counts(masks: MaskSet) -> list[int]:
    return [int(m.sum()) for m in masks.masks.values()]


def test_drop_and_grow_moves_the_smallest_kept_units_to_the_largest_grow_scores():
    keep = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.bool)
    magnitude = torch.tensor([4.0, 1.0, 3.0, 2.0, 0, 0, 0, 0])
    grow = torch.tensor([0.0, 9.0, 0.0, 0.0, 5.0, 1.0, 7.0, 2.0])
    new_keep, new_units = drop_and_grow(keep, magnitude, grow, 0.5)
    # floor(0.5 * 4) = 2 dropped: units 1 and 3 (|w| 1 and 2); grown: unit 1 (9, just dropped) and 6 (7).
    assert new_keep.tolist() == [True, True, True, False, False, False, True, False]
    assert new_units.tolist() == [False] * 6 + [True, False]  # unit 1 was kept before: not new
    assert drop_and_grow(keep, magnitude, grow, 0.2)[0].tolist() == keep.tolist()  # floor(0.8) = 0


def test_random_keep_drops_round_sparsity_units_and_keeps_one():
    g = torch.Generator().manual_seed(0)
    assert int((~random_keep(10, 0.35, g)).sum()) == 4  # round(3.5) = 4
    assert int(random_keep(3, 0.99, g).sum()) == 1


def test_cosine_drop_fraction_is_rigls_decay_to_zero_at_the_end_step():
    assert cosine_drop_fraction(0.3, 0, 75) == pytest.approx(0.3)
    assert cosine_drop_fraction(0.3, 25, 100) == pytest.approx(0.15 * (1 + math.cos(math.pi / 4)))
    assert cosine_drop_fraction(0.3, 50, 100) == pytest.approx(0.15)
    assert cosine_drop_fraction(0.3, 100, 100) == pytest.approx(0.0)
    assert cosine_drop_fraction(0.3, 130, 100) == pytest.approx(0.0)


def test_updates_every_interval_until_three_quarters_of_training():
    dyn = _dynamic(update_every=10, total_steps=100)
    steps = [s for s in range(100) if dyn.update_fraction(s) > 0]
    assert steps == [10, 20, 30, 40, 50, 60, 70]  # end_step 75; never at step 0
    assert dyn.update_fraction(50) == pytest.approx(cosine_drop_fraction(0.3, 50, 75))


def test_start_is_random_at_the_target_in_every_layer():
    model = _model()
    masks = MaskSet.for_model(model)
    _dynamic(target=0.5).start(model, masks)
    assert _layer_counts(masks) == [54, 20, 50]
    for mask, weight in masks._weights(model):
        assert torch.equal(weight != 0, mask)


def test_rigl_regrows_exactly_the_top_gradient_zero_weights():
    model = _model()
    masks = MaskSet.for_model(model)
    dyn = _dynamic("rigl", target=0.5)
    dyn.start(model, masks)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 5, 5)).sum().backward()
    optimizer.step()  # momentum buffers exist
    masks.apply(model)
    g = torch.Generator().manual_seed(1)
    for _, weight in masks.named_weights(model):
        weight.grad = torch.randn(weight.shape, generator=g)  # distinct dense gradients
    before = {name: (masks.masks[name].clone(), w.detach().clone()) for name, w in masks.named_weights(model)}
    dyn.update_masks(model, masks, optimizer, 0.3)
    for name, weight in masks.named_weights(model):
        old_mask, old_w = before[name]
        kept = int(old_mask.sum())
        moved = int(0.3 * kept)
        magnitude = old_w.abs().flatten().masked_fill(~old_mask.flatten(), -1)
        survivors = torch.zeros(old_w.numel(), dtype=torch.bool)
        survivors[torch.argsort(magnitude, descending=True, stable=True)[: kept - moved]] = True
        grad = weight.grad.abs().flatten().masked_fill(survivors, -1)
        expected = survivors.clone()
        expected[torch.topk(grad, moved).indices] = True
        assert torch.equal(masks.masks[name].flatten(), expected), name
        assert int(masks.masks[name].sum()) == kept  # the layer's sparsity is unchanged
        new = (expected & ~old_mask.flatten()).view_as(weight)
        assert new.any() and (weight[new] == 0).all()  # grown weights start at zero
        assert (optimizer.state[weight]["momentum_buffer"][new] == 0).all()
        still = (expected & old_mask.flatten()).view_as(weight)
        assert torch.equal(weight[still], old_w[still])  # kept weights keep their values
        assert (weight[~masks.masks[name]] == 0).all()


def test_rigl_treats_a_weight_the_loss_does_not_reach_as_zero_gradient():
    model = _model()
    masks = MaskSet.for_model(model)
    dyn = _dynamic("rigl", target=0.5)
    dyn.start(model, masks)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = _layer_counts(masks)
    dyn.update_masks(model, masks, optimizer, 0.3)  # no backward: every .grad is None
    assert _layer_counts(masks) == before


def _train(dyn: DynamicSparsity, steps: int, seed: int = 0) -> tuple[nn.Module, MaskSet, list[float]]:
    """``steps`` SGD steps on random data, each through ``dyn``; the masks' sparsity after each."""
    model = _model(seed)
    masks = MaskSet.for_model(model, dyn.config.granularity)
    dyn.start(model, masks)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    counts, start = [], _layer_counts(masks)
    for _ in range(steps):
        x, y = torch.randn(8, 3, 5, 5, generator=g), torch.randint(0, 10, (8,), generator=g)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        dyn.step(model, masks, optimizer)
        masks.apply(model)
        dyn.finish_step(model, masks)
        counts.append(_layer_counts(masks))
    assert all(c == start for c in counts)  # exact sparsity after every step and update
    return model, masks, [masks.sparsity]


@pytest.mark.parametrize("schedule", ["set", "rigl"])
@pytest.mark.parametrize("granularity", ["unstructured", "channel"])
def test_sparsity_is_exact_after_every_update(schedule, granularity):
    dyn = _dynamic(schedule, granularity, target=0.5, update_every=2, total_steps=20)
    model, masks, _ = _train(dyn, 20)
    start = MaskSet.for_model(_model(), granularity)
    _dynamic(schedule, granularity, target=0.5).start(_model(), start)
    assert not all(torch.equal(masks.masks[n], start.masks[n]) for n in masks.masks)  # masks moved
    for mask, weight in masks._weights(model):
        assert (weight[~mask] == 0).all()


def test_set_is_seeded_same_seed_same_masks():
    run = lambda seed: _train(_dynamic("set", update_every=2, total_steps=20, seed=seed), 20)[1]  # noqa: E731
    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks)
    assert not all(torch.equal(a.masks[n], c.masks[n]) for n in a.masks)


def test_set_regrows_uniformly_among_the_units_not_kept():
    """Drop 5 of 10 kept units of 100, 2,000 times: each of the 95 units not surviving the drop
    (the 5 dropped ones included) is grown about 2000 * 5 / 95 = 105 times (a seeded draw)."""
    layer = nn.Linear(100, 1, bias=False)
    dyn = _dynamic("set", target=0.9, seed=3)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    counts = torch.zeros(100)
    keep = torch.zeros(1, 100, dtype=torch.bool)
    keep[0, :10] = True
    survivors = torch.zeros(1, 100, dtype=torch.bool)
    survivors[0, 5:10] = True  # the largest of the kept |w| (weights 1..100)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(1.0, 101.0))
    for _ in range(2000):
        masks = MaskSet({"weight": keep})
        dyn.update_masks(layer, masks, optimizer, 0.5)
        counts += (masks.masks["weight"] & ~survivors)[0].float()
        with torch.no_grad():
            layer.weight.copy_(torch.arange(1.0, 101.0))
    candidates = torch.cat([counts[:5], counts[10:]])
    assert candidates.sum() == 2000 * 5 and counts[5:10].sum() == 0
    assert 60 < candidates.min() and candidates.max() < 160


def test_channel_updates_move_whole_channels_and_macs_count_the_kept_channels():
    model = _model()
    masks = MaskSet.for_model(model, "channel")
    dyn = _dynamic("rigl", "channel", target=0.5)
    dyn.start(model, masks)
    conv = masks.masks["0.weight"]
    assert conv.flatten(1).all(dim=1).sum() == 2 and not (conv.flatten(1).any(1) ^ conv.flatten(1).all(1)).any()
    # Linear layers move single weights: every class keeps an output.
    assert [int(masks.masks[n].sum()) for n in ("5.0.weight", "5.2.weight")] == [20, 50]
    dense = count_macs(model, (3, 5, 5))
    assert dense == 25 * 108 + 40 + 100
    # Conv: 25 positions x 27 weights per channel, 2 of 4 channels; linear rows with a weight left count whole.
    rows = [int(masks.masks[n].any(dim=1).sum()) for n in ("5.0.weight", "5.2.weight")]
    assert count_macs(model, (3, 5, 5), live_channels=True) == 25 * 2 * 27 + rows[0] * 4 + rows[1] * 10


def test_grown_channels_start_at_the_default_initialisation_not_zero():
    model = _model()
    masks = MaskSet.for_model(model, "channel")
    dyn = _dynamic("set", "channel", target=0.5)
    dyn.start(model, masks)
    old = masks.masks["0.weight"].clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    dyn.update_masks(model, masks, optimizer, 0.5)
    new = masks.masks["0.weight"] & ~old
    assert new.any()
    grown = model[0].weight[new]
    assert (grown != 0).all() and grown.abs().max() <= 1 / math.sqrt(27)


def test_sup_tickets_cycles_learning_rate_and_average():
    tickets = SupTickets(start=60, total_steps=80, lr=0.1)
    assert tickets.cycle_starts == (60, 65, 70, 75) and tickets.cycle_ends == (65, 70, 75, 80)
    assert tickets.lr_at(60) == pytest.approx(0.05) and tickets.lr_at(64) == pytest.approx(0.0001)
    assert tickets.lr_at(62) == pytest.approx((0.05 + 0.0001) / 2)
    short = SupTickets(start=6, total_steps=8, lr=0.1)  # 2 steps: 2 cycles of one step
    assert short.cycle_starts == (6, 7) and short.cycle_ends == (7, 8)

    model = nn.Linear(4, 1, bias=False)
    for value in (1.0, 2.0, 6.0):
        with torch.no_grad():
            model.weight.fill_(value)
        tickets.add(model)
    assert torch.allclose(tickets.average["weight"], torch.full((1, 4), 3.0))
    with torch.no_grad():
        tickets.average["weight"] = torch.tensor([[1.0, -4.0, 2.0, 3.0]])
    masks = MaskSet.for_model(model)
    tickets.superpose_into(model, masks, 0.5)  # the same budget: 2 of 4 weights, the largest
    assert model.weight.tolist() == [[0.0, -4.0, 0.0, 3.0]]
    assert masks.masks["weight"].tolist() == [[False, True, False, True]]


def test_sup_tickets_re_explore_at_every_cycle_start():
    dyn = _dynamic("rigl", update_every=10, total_steps=100, sup_tickets=True)
    steps = [s for s in range(100) if dyn.update_fraction(s) > 0]
    assert steps == [10, 20, 30, 40, 50, 60, 70, 75, 81, 87, 93]
    assert dyn.update_fraction(81) == pytest.approx(0.3)


@pytest.mark.parametrize("granularity", ["unstructured", "channel"])
def test_sup_tickets_end_with_the_superposed_network_at_the_target(granularity):
    dyn = _dynamic("rigl", granularity, target=0.5, update_every=2, total_steps=12, sup_tickets=True)
    model, masks, _ = _train(dyn, 12)
    assert dyn.tickets.tickets == 3  # 3 cyclic steps (9, 10, 11): 3 one-step cycles
    assert _layer_counts(masks) == [54, 20, 50]
    for mask, weight in masks._weights(model):
        assert (weight[~mask] == 0).all()


def test_target_zero_is_the_dense_network_for_every_schedule():
    for schedule in ("oneshot", "gradual", "set", "rigl"):
        trial = decode({"sparsity": 0.0, "sparsity_schedule": schedule})
        assert not trial.sparsity.active and not trial.sparsity.dynamic
    assert not decode({"sparsity": 0.0, "sparsity_schedule": "rigl", "sup_tickets": True}).sparsity.dynamic
    with pytest.raises(ValueError, match="dynamic sparse training needs"):
        DynamicSparsity(SparsityConfig(0.0, "rigl"), total_steps=10, seed=0, lr=0.1)
