"""Dynamic sparse training: SET and RigL mask updates, by weight or by channel (Chase-style).

A trial with schedule ``set`` or ``rigl`` starts from a random sparse network at the target
sparsity and, every ``update_every`` optimiser steps until ``END_OF_UPDATES`` of training, moves
a fraction of each layer's kept units (:mod:`robnas.trainables._drop_grow`):

* drop: the kept units with the smallest magnitude (``|w|``; a channel's L1 norm);
* grow, ``set`` (Mocanu et al. 2018): units drawn uniformly at random;
  ``rigl`` (Evci et al. 2020): the units with the largest dense gradient ``|g|`` (a channel's
  L1 norm of ``|g|``) of the step's training loss (the adversarial loss under adversarial training).

The fraction is RigL's cosine decay, ``drop_fraction * (1 + cos(pi * t / T_end)) / 2`` at step
``t``. Grown units start at zero (weights; channels: see below) with zero momentum; a unit
dropped and grown back in one update keeps its value. RigL's update takes the place of that
step's optimiser step; here the step is taken and the update follows, with the same gradient
(the one at the weights before the step) and the magnitudes after it: at digits' interval of 5
steps, skipping would drop a fifth of the optimiser steps before 75 % of training, against
RigL's 1 % at its interval of 100.

Departures from the papers, kept so that every schedule of a search differs only in how it moves
the mask: the sparsity of each layer is the target (as ``MaskSet.prune_to`` distributes it: every
layer at the target, at least one unit kept), not RigL's ERK default; SET uses RigL's cosine-decayed
drop fraction and interval (as RigL's own SET baseline does) instead of a fixed zeta per epoch.
``granularity="channel"`` moves whole output channels, the unit Chase (Yin et al. 2023) prunes
by its unmasked mean magnitude; Chase's gradual channel removal on top of unstructured updates
is not reproduced: here the channel count is fixed at the target from the start. Channels move
in convolutions only: a linear layer (the classifier) moves single weights, so that no class
loses its output (``channel_units``). A grown channel
starts at PyTorch's default initialisation (uniform in +-1/sqrt(fan_in), drawn from the trial's
generator), not at zero: in a ReLU-Conv-BN op an all-zero channel makes its batch norm output
the constant shift, and the next ReLU passes no gradient back while that shift is <= 0, so a
zero channel would never train. For the same reason RigL's channel growth often meets ties of
zero gradient, which go to the lower channel index.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from robnas.spaces._sparsity import SparsityConfig
from robnas.trainables._drop_grow import drop_and_grow, random_keep, unit_scores
from robnas.trainables._pruning import MaskSet
from robnas.trainables._sup_tickets import SupTickets

__all__ = ["END_OF_UPDATES", "SEED_OFFSET", "DynamicSparsity", "channel_units", "cosine_drop_fraction",
           "random_start"]

#: Fraction of the optimiser steps after which the cosine-decayed updates stop (RigL's
#: ``end_step``: 75 % of training).
END_OF_UPDATES = 0.75
#: The random draws of a trial with seed ``s`` (its start and SET's growth) use seed ``s + SEED_OFFSET``.
SEED_OFFSET = 2


def cosine_drop_fraction(initial: float, step: int, end_step: int) -> float:
    """RigL's drop fraction at ``step``: ``initial * (1 + cos(pi * min(step, end) / end)) / 2``."""
    if end_step <= 0:
        return 0.0
    return initial * 0.5 * (1.0 + math.cos(math.pi * min(step, end_step) / end_step))


def channel_units(granularity: str, weight: torch.Tensor) -> bool:
    """Whether a layer's units are its output channels: ``channel`` granularity and a
    convolution (a linear layer's weights move one by one)."""
    return granularity == "channel" and weight.dim() > 2


@torch.no_grad()
def random_start(model: nn.Module, masks: MaskSet, target: float, generator: torch.Generator) -> None:
    """Random keep-masks at sparsity ``target`` in every layer (by ``masks``' granularity), pruned
    weights zeroed: SET's and RigL's sparse start."""
    for name, weight in masks.named_weights(model):
        channel = channel_units(masks.granularity, weight)
        keep = random_keep(weight.shape[0] if channel else weight.numel(), target, generator)
        masks.masks[name] = _expand(keep.to(weight.device), weight, channel)
    masks.apply(model)


def _expand(keep: torch.Tensor, weight: torch.Tensor, channel: bool) -> torch.Tensor:
    """A per-unit keep vector as a weight-shaped mask."""
    if channel:
        keep = keep.view(-1, *([1] * (weight.dim() - 1))).expand_as(weight)
    return keep.reshape(weight.shape).clone()


class DynamicSparsity:
    """Mask updates of one trial, over ``total_steps`` optimiser steps.

    Call :meth:`start` once on the fresh network, :meth:`step` in place of ``optimizer.step()``
    after each backward pass (it steps, then updates the masks when due), and :meth:`finish_step` after the step (and the learning-rate
    schedule's step). ``state_dict()`` holds the step counter, the generator of the random draws
    (seeded with ``seed``) and the Sup-tickets average, for an exact resume.
    """

    def __init__(self, config: SparsityConfig, *, total_steps: int, seed: int, lr: float) -> None:
        if not config.dynamic:
            raise ValueError(f"dynamic sparse training needs an active set or rigl schedule, got {config}")
        self.config = config
        self.total_steps = total_steps
        self.end_step = math.floor(END_OF_UPDATES * total_steps)
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        #: Optimiser steps taken so far (mask-update steps included): the global step.
        self.steps_done = 0
        self.tickets = (
            SupTickets(start=self.end_step, total_steps=total_steps, lr=lr) if config.sup_tickets else None
        )

    @property
    def channel(self) -> bool:
        """Whether whole channels move (in the convolutions)."""
        return self.config.granularity == "channel"

    def update_fraction(self, step: int) -> float:
        """The drop fraction of a mask update at ``step`` (0-based), 0 when ``step`` updates nothing."""
        every = self.config.update_every
        if 0 < step < self.end_step and step % every == 0:
            return cosine_drop_fraction(self.config.drop_fraction, step, self.end_step)
        if self.tickets is not None and step in self.tickets.cycle_starts:
            return self.config.drop_fraction  # Sup-tickets: re-explore at every cycle's start
        return 0.0

    def start(self, model: nn.Module, masks: MaskSet) -> None:
        """The random sparse start (:func:`random_start`) from this trial's generator."""
        random_start(model, masks, self.config.target, self.generator)

    def step(self, model: nn.Module, masks: MaskSet, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()`` (at the Sup-tickets cyclic learning rate in its cycles), then the
        mask update at update steps, by the gradients the step used."""
        if self.tickets is not None and self.steps_done >= self.tickets.start:
            for group in optimizer.param_groups:
                group["lr"] = self.tickets.lr_at(self.steps_done)
        optimizer.step()
        fraction = self.update_fraction(self.steps_done)
        if fraction > 0:
            self.update_masks(model, masks, optimizer, fraction)

    def finish_step(self, model: nn.Module, masks: MaskSet) -> None:
        """Count the step; at a Sup-tickets cycle's end, superpose its ticket."""
        self.steps_done += 1
        if self.tickets is not None and self.steps_done in self.tickets.cycle_ends:
            self.tickets.add(model)
            if self.steps_done == self.total_steps:  # the trial ends with the superposed network
                self.tickets.superpose_into(model, masks, self.config.target)

    @torch.no_grad()
    def update_masks(self, model: nn.Module, masks: MaskSet, optimizer: torch.optim.Optimizer,
                     fraction: float) -> None:
        """Drop ``fraction`` of each layer's kept units and grow as many (RigL: by the gradients
        in ``.grad``, left by the step's backward pass; SET: at random); zero grown weights and
        their momentum (grown channels: freshly initialised), and the dropped weights."""
        rigl = self.config.schedule == "rigl"
        for name, weight in masks.named_weights(model):
            mask = masks.masks[name]
            channel = channel_units(self.config.granularity, weight)
            keep = mask.flatten(1).any(dim=1) if channel else mask.flatten()
            drop_scores = unit_scores(weight.abs(), channel)
            if rigl:  # a weight the loss does not reach (a dead edge of the cell) has gradient 0
                grad = torch.zeros_like(weight) if weight.grad is None else weight.grad
                grow_scores = unit_scores(grad.abs(), channel)
            else:
                grow_scores = torch.rand(keep.numel(), generator=self.generator).to(keep.device)
            new_keep, new_units = drop_and_grow(keep, drop_scores, grow_scores, fraction)
            masks.masks[name] = _expand(new_keep, weight, channel)
            new = _expand(new_units, weight, channel)
            weight.masked_fill_(new, 0.0)
            if channel and new_units.any():
                bound = 1.0 / math.sqrt(weight[0].numel())
                fresh = torch.rand(weight.shape, generator=self.generator).to(weight.device, weight.dtype)
                weight.add_(new * (2.0 * fresh - 1.0) * bound)
            momentum = optimizer.state.get(weight, {}).get("momentum_buffer")
            if momentum is not None:
                momentum.masked_fill_(new, 0.0)
        masks.apply(model)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"steps_done": self.steps_done, "generator": self.generator.get_state()}
        if self.tickets is not None:
            state["tickets"] = self.tickets.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps_done = int(state["steps_done"])
        self.generator.set_state(state["generator"].cpu())
        if self.tickets is not None:
            self.tickets.load_state_dict(state["tickets"])
