"""Exponential moving average (EMA) of a network's weights, as Rebuffi et al. 2021 ("Fixing
data augmentation to improve adversarial robustness") evaluate adversarially trained networks.

After every optimiser step, ``avg = d * avg + (1 - d) * w`` for every parameter, with the decay
warmed up as ``d = min(decay, (1 + t) / (10 + t))`` after ``t`` earlier updates (the warm-up of
TensorFlow's ``ExponentialMovingAverage`` and of the PyTorch reference of Rebuffi et al.'s
setting, imrahulr/adversarial_robustness_pytorch ``ema_update``); buffers (batch-norm running
statistics) are copied from the trained network, not averaged, as that reference does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["EmaWeights", "ema_decay_at"]


def ema_decay_at(decay: float, updates: int) -> float:
    """The decay of the update that follows ``updates`` earlier ones: ``min(decay, (1+t)/(10+t))``."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class EmaWeights:
    """The moving average of ``model``'s weights, held in a copy of ``model`` (``.model``).

    Args:
        model: the trained network; the copy starts at its current weights.
        decay: the decay per update, in [0, 1) (Rebuffi et al.: 0.999).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self.model = copy.deepcopy(model)
        for param in self.model.parameters():
            param.requires_grad_(False)
        #: Updates taken so far (the ``t`` of the warm-up).
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights; copy its buffers."""
        d = ema_decay_at(self.decay, self.updates)
        for avg, param in zip(self.model.parameters(), model.parameters()):
            avg.mul_(d).add_(param.detach(), alpha=1.0 - d)
        for avg, buffer in zip(self.model.buffers(), model.buffers()):
            avg.copy_(buffer)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
