"""Sup-tickets (Yin et al. 2022, "Superposing Many Tickets into One"): cyclic phases of dynamic
sparse training whose sparse networks (tickets) are averaged into one at the same sparsity.

The last ``total_steps - start`` optimiser steps are split into ``CYCLES`` cycles. Each cycle
starts with a mask re-exploration (a drop-and-grow update at the initial drop fraction; see
``DynamicSparsity``) and runs a learning rate falling linearly from ``lr / 2`` to ``lr / 1000``
(the paper's 0.05 and 0.0001 for its learning rate 0.1); its network at the lowest rate is a
ticket. Tickets enter a cumulative average of the whole state dict (CAA, batch-norm statistics
included, as the paper's default without BN recalibration); after the last cycle the average,
pruned back to the target by magnitude, is the trial's network.

Departures, for short trials: the cyclic phase is the last 25 % of the steps (where RigL's
updates end) instead of the paper's 20 % of epochs in cycles of 8 epochs, with 4 cycles; a
cycle's rate falls once instead of the paper's triangular cycle; the average is pruned per
layer to the target (as ``MaskSet.prune_to``), not by one global magnitude threshold, so that
every layer keeps the sparsity the other schedules give it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robnas.trainables._pruning import MaskSet

__all__ = ["CYCLES", "SupTickets"]

#: Cycles (tickets) of the cyclic phase.
CYCLES = 4


class SupTickets:
    """The cycles of steps ``[start, total_steps)`` and the running average of their tickets."""

    def __init__(self, *, start: int, total_steps: int, lr: float) -> None:
        self.start = start
        self.total_steps = total_steps
        self.lr_high, self.lr_low = lr / 2, lr / 1000
        cyclic = total_steps - start
        cycles = min(CYCLES, cyclic)
        length = cyclic // cycles if cycles else 0
        #: First step of each cycle; the last cycle also takes the remainder.
        self.cycle_starts: tuple[int, ...] = tuple(start + i * length for i in range(cycles))
        #: Steps done when each cycle ends (a ticket is taken).
        self.cycle_ends: tuple[int, ...] = (*self.cycle_starts[1:], total_steps) if cycles else ()
        self.tickets = 0
        self.average: dict[str, torch.Tensor] = {}

    def lr_at(self, step: int) -> float:
        """Learning rate of ``step`` (0-based) in the cyclic phase: linear from ``lr / 2`` at a
        cycle's first step to ``lr / 1000`` at its last."""
        begin = max(s for s in self.cycle_starts if s <= step)
        end = min(e for e in self.cycle_ends if e > step)
        t = (step - begin) / (end - 1 - begin) if end - 1 > begin else 1.0
        return self.lr_high + (self.lr_low - self.lr_high) * t

    @torch.no_grad()
    def add(self, model: nn.Module) -> None:
        """Average the network's state dict into the tickets: ``avg += (ticket - avg) / n``.
        Integer buffers (batch counts) take the newest ticket's value."""
        self.tickets += 1
        for name, value in model.state_dict().items():
            if not value.is_floating_point() or name not in self.average:
                self.average[name] = value.detach().clone()
            else:
                self.average[name] += (value - self.average[name]) / self.tickets

    @torch.no_grad()
    def superpose_into(self, model: nn.Module, masks: MaskSet, target: float) -> None:
        """Load the averaged tickets into ``model`` and prune them back to ``target`` by magnitude
        (per layer, ``masks``' granularity; with ``channel``, linear layers by weight, as the
        dynamic schedules move them); ``masks`` become the superposed network's."""
        model.load_state_dict(self.average)
        full = MaskSet.for_model(model, masks.granularity)
        by_weight = "unstructured" if masks.granularity == "channel" else masks.granularity
        parts = [MaskSet({n: m for n, m in full.masks.items() if m.dim() > 2}, masks.granularity),
                 MaskSet({n: m for n, m in full.masks.items() if m.dim() <= 2}, by_weight)]
        for part in parts:
            part.prune_to(model, target)
        masks.load_state_dict({**parts[0].state_dict(), **parts[1].state_dict()})

    def state_dict(self) -> dict[str, Any]:
        return {"tickets": self.tickets, "average": {k: v.clone() for k, v in self.average.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tickets = int(state["tickets"])
        self.average = {k: v.clone() for k, v in state["average"].items()}
