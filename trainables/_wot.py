"""Weighted optimisation trajectories (WOT), Huang et al. 2023, "Enhancing adversarial training
via reweighting optimization trajectory" (reference code: github.com/TienjinHuang/WOT,
``CODE_WOT/train_cifar.py``).

Training records its trajectory in ``segments`` pieces: every ``gap`` optimiser steps, the
change of every parameter since the last record (``delta_j``, j < segments). Once all pieces
are in, the weights are rewritten as ``origin + sum_j alpha[j, block] * delta_j``, ``origin``
the weights the trajectory started from and ``alpha`` in [0, 1] one weight per piece and per
block of the network, fitted by gradient descent on the adversarial (PGD) cross-entropy of
held-out images; batch-norm statistics are re-estimated on the training images for the new
weights, and training goes on from them (the trajectory starts again there).

As in the reference (its shipped commands): 10 passes over the held-out images, step 0.1 with
momentum 0.9 (reset every pass), clamped to [0, 1], the network in eval mode while fitting;
the optimiser's momentum is reset after a reweighting (``--reinitialize 1``). ``alpha`` starts
at one, the current weights (the reference's ``--initialize_type one``; its commands start at
zero, the trajectory's origin, but with 10 fitting steps on one batch instead of its ~80
momentum steps on 1,000 images, alpha then stays near zero and each reweighting throws the
epoch's progress away: digits networks fell to chance). Departures, for trials of a few epochs: one reweighting per epoch by
default (``gap`` = a ``segments``-th of an epoch; the reference: 4 pieces of 400 steps, every
~3 SVHN epochs); the held-out images are one training batch, not 1,000 images, so each pass is
one fitting step and momentum has no effect; blocks are the network's top-level modules (stem,
each cell, head layers), the reference's six PreActResNet groups' counterpart; a block's
weight takes one step per batch with the gradient summed over its tensors (the reference steps
once per tensor, carrying momentum between them); batch-norm statistics come from one pass
over the training images (the reference: 400 batches).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robnas.spaces._attack import budget_fraction

from ._pgd import attack_mode, pgd

__all__ = ["WotTrajectory", "adversarial_fit_loss", "parameter_blocks", "reestimate_batch_norm"]

#: Fitting: passes over the held-out images and step size of ``alpha`` (the reference's values;
#: its momentum, 0.9, is reset every pass, and a pass here is one batch).
FIT_PASSES, FIT_LR = 10, 0.1


def parameter_blocks(model: nn.Module) -> list[int]:
    """Block index of every parameter (``model.parameters()`` order): one block per top-level
    module, and per element of a top-level module list (``cells.0``, ``cells.1``, ...)."""
    keys: dict[str, int] = {}
    blocks = []
    for name, _ in model.named_parameters():
        parts = name.split(".")
        key = ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]
        blocks.append(keys.setdefault(key, len(keys)))
    return blocks


def adversarial_fit_loss(model: nn.Module, x: Tensor, y: Tensor, attack: Any, *, seed: int) -> Callable[[int], Tensor]:
    """The loss WOT fits on: ``fit_loss(p)`` is the cross-entropy of PGD examples of ``x``
    (N, C, H, W), labels ``y`` (N,), in eval mode (the reference fits before its epoch 150 so).

    PGD takes ``attack``'s eps and steps and its step size (2.5 * eps / steps for FGSM-RS's own),
    with a random start drawn from a CPU generator seeded with ``seed + p``.
    """
    eps = budget_fraction(attack.eps, name="attack.eps")
    step = 2.5 * eps / attack.steps if attack.step_size is None else budget_fraction(attack.step_size)

    def fit_loss(fit_pass: int) -> Tensor:
        generator = torch.Generator().manual_seed(seed + fit_pass)
        x_adv = pgd(model, x, y, eps=eps, step_size=step, steps=attack.steps, random_start=True,
                    generator=generator)
        with attack_mode(model):
            return F.cross_entropy(model(x_adv), y)

    return fit_loss


@torch.no_grad()
def reestimate_batch_norm(model: nn.Module, x: Tensor, batch_size: int) -> None:
    """Reset every batch norm's running statistics and average them over ``x`` (N, C, H, W) in
    batches of ``batch_size``, the model in train mode; modes and momenta are restored."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    modes = [(m, m.training) for m in model.modules()]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.train()
    try:
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size])
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        for m, training in modes:
            m.training = training


class WotTrajectory:
    """The trajectory record of one trial and its reweighting.

    Args:
        model: the trained network.
        segments: pieces of trajectory per reweighting (the reference's 4).
        gap: optimiser steps per piece (>= 1).
    """

    def __init__(self, model: nn.Module, *, segments: int = 4, gap: int) -> None:
        if segments < 1 or gap < 1:
            raise ValueError(f"segments and gap must be >= 1, got {segments} and {gap}")
        self.segments, self.gap = segments, gap
        self.blocks = parameter_blocks(model)
        self.n_blocks = max(self.blocks, default=-1) + 1
        self.steps = 0
        self.origin: list[Tensor] | None = None
        self.previous: list[Tensor] | None = None
        self.deltas: list[list[Tensor]] = []
        #: The last fitted weights, shape (segments, blocks); ``None`` before the first fit.
        self.alphas: Tensor | None = None

    def record(self, model: nn.Module) -> bool:
        """Note the weights after an optimiser step; ``True`` when the trajectory is complete
        (``segments`` pieces) and :meth:`reweight` is due. The first step's weights are the origin."""
        self.steps += 1
        now = [p.detach().clone() for p in model.parameters()]
        if self.origin is None:
            self.origin, self.previous = now, [p.clone() for p in now]
            return False
        if self.steps % self.gap == 0:
            self.deltas.append([p - q for p, q in zip(now, self.previous)])
            self.previous = now
        return len(self.deltas) == self.segments

    @torch.no_grad()
    def _set(self, model: nn.Module, alphas: Tensor) -> None:
        for i, (param, origin) in enumerate(zip(model.parameters(), self.origin)):
            value = origin.clone()
            for j, delta in enumerate(self.deltas):
                value.add_(delta[i], alpha=float(alphas[j, self.blocks[i]]))
            param.copy_(value)

    def reweight(self, model: nn.Module, fit_loss: Callable[[int], Tensor]) -> Tensor:
        """Fit ``alpha`` (segments, blocks), set ``model``'s parameters to the reweighted
        trajectory and start a new one there; returns ``alpha``.

        ``fit_loss(p)``: the scalar loss of pass ``p`` computed with ``model`` (the adversarial
        cross-entropy of the held-out images); its parameter gradients drive ``alpha``.
        Parameters' ``.grad`` are not touched. Batch-norm statistics are the caller's to redo.
        """
        if self.origin is None or len(self.deltas) != self.segments:
            raise RuntimeError("the trajectory is not complete")
        params = list(model.parameters())
        alphas = torch.ones(self.segments, self.n_blocks, dtype=torch.float64)
        self._set(model, alphas)
        for p in range(FIT_PASSES):
            grads = torch.autograd.grad(fit_loss(p), params, allow_unused=True)
            step = torch.zeros_like(alphas)
            for i, grad in enumerate(grads):
                if grad is not None:
                    for j, delta in enumerate(self.deltas):
                        step[j, self.blocks[i]] += float((delta[i] * grad).sum())
            alphas = (alphas - FIT_LR * step).clamp_(0.0, 1.0)
            self._set(model, alphas)
        self.alphas = alphas
        self.origin = [p.detach().clone() for p in params]
        self.previous = [p.clone() for p in self.origin]
        self.deltas = []
        return alphas

    def restart(self, model: nn.Module) -> None:
        """Start the trajectory again at ``model``'s current weights (after batch-norm or
        pruning changed them)."""
        self.origin = [p.detach().clone() for p in model.parameters()]
        self.previous = [p.clone() for p in self.origin]

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "origin": self.origin, "previous": self.previous,
                "deltas": self.deltas, "alphas": self.alphas}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.origin = _tensors(state["origin"])
        self.previous = _tensors(state["previous"])
        self.deltas = [list(d) for d in state["deltas"]]
        self.alphas = state["alphas"]


def _tensors(value: Sequence[Tensor] | None) -> list[Tensor] | None:
    return None if value is None else list(value)
