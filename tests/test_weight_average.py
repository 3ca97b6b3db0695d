"""Exponential moving average of the weights: the warmed-up decay, by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robnas.trainables._weight_average import EmaWeights, ema_decay_at


def test_the_decay_warms_up_to_its_value():
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 10) == pytest.approx(11 / 20)
    assert ema_decay_at(0.5, 10) == 0.5
    assert ema_decay_at(0.999, 10**6) == 0.999


def test_the_average_follows_the_weights_by_hand_and_copies_buffers():
    net = nn.BatchNorm1d(1)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema = EmaWeights(net, decay=0.5)
    for value in (11.0, 21.0):
        with torch.no_grad():
            net.weight.fill_(value)
            net.running_mean.fill_(value)
        ema.update(net)
    # d = 0.1: 0.1 * 1 + 0.9 * 11 = 10; then d = min(0.5, 2/11): 2/11 * 10 + 9/11 * 21 = 19.
    assert ema.model.weight.item() == pytest.approx(19.0)
    assert ema.model.running_mean.item() == 21.0  # copied, not averaged
    assert ema.updates == 2 and not ema.model.weight.requires_grad
    restored = EmaWeights(net, decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 2 and restored.model.weight.item() == ema.model.weight.item()
    with pytest.raises(ValueError, match="decay"):
        EmaWeights(net, decay=1.0)
