"""The evaluation attack's ``apgd`` step schedule: APGD's adaptive step (Croce & Hein, ICML 2020).

Same contract and cost as :func:`robnas.trainables._pgd_eval.pgd_broken` with the ``constant``
schedule: ``steps`` forward-backward passes and one forward pass, worst case over the start
point and every iterate. What changes is how each iterate follows from the last (L-inf, as in
``pyautoattack``'s ``APGDAttack``):

- the first step is ``step_size`` (APGD: 2 eps) times the gradient's sign; later steps mix the
  signed step and the last move with momentum 0.75;
- at checkpoints (every ``max(int(0.22 n), 1)`` steps, shrinking by ``max(int(0.03 n), 1)`` to
  at least ``max(int(0.06 n), 1)``; ``n`` the steps of one loss) each image whose loss rose in at
  most 75 % of the steps since the last checkpoint, or whose step was not halved last time and
  whose best loss did not improve, halves its step and goes back to its best iterate.

Each loss of ``step_losses`` (``ce+margin``: cross-entropy, then the margin) runs as its own APGD
segment from where the last one ended, with a fresh step and fresh loss records (the two losses
have different scales).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._pgd import input_gradient, project

__all__ = ["MOMENTUM", "apgd_broken", "checkpoint_steps"]

#: Weight of the new signed step against the last move (APGD's ``a``; 1 for the first step).
MOMENTUM = 0.75
#: A segment halves an image's step where its loss rose in at most this share of the steps.
RISE_SHARE = 0.75


def _cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def _margin(logits: Tensor, y: Tensor) -> Tensor:
    true = logits.gather(1, y.unsqueeze(1)).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.amax(dim=1) - true


#: Loss name -> per-image loss (N,) of logits (N, classes) and labels (N,).
PER_IMAGE = {"ce": _cross_entropy, "margin": _margin}


def checkpoint_steps(n: int) -> list[int]:
    """Steps (1-based counts of iterates after the start) at which a segment of ``n`` steps
    checks its step sizes: gaps of ``max(int(0.22 n), 1)``, each next gap shorter by
    ``max(int(0.03 n), 1)`` down to ``max(int(0.06 n), 1)`` (APGD's ``n_iter_2``, ``size_decr``,
    ``n_iter_min``)."""
    gap, shrink, least = max(int(0.22 * n), 1), max(int(0.03 * n), 1), max(int(0.06 * n), 1)
    checks, at = [], gap
    while at < n:
        checks.append(at)
        gap = max(gap - shrink, least)
        at += gap
    return checks


def _forward_backward(model: nn.Module, x_adv: Tensor, y: Tensor, loss: str) -> tuple[Tensor, Tensor, Tensor]:
    """``(input gradient of the summed loss, detached logits (N, classes), per-image loss (N,))``."""
    x_adv = x_adv.detach().requires_grad_(True)
    logits = model(x_adv)
    per_image = PER_IMAGE[loss](logits, y)
    return input_gradient(per_image.sum(), x_adv), logits.detach(), per_image.detach()


def apgd_broken(model: nn.Module, x: Tensor, y: Tensor, start: Tensor, *, eps: float, step_size: float,
                losses: list[str]) -> Tensor:
    """Bool tensor (N,): True where an iterate of the APGD-style ascent from ``start`` is
    misclassified. ``losses``: the loss of each step (``step_losses``); eps and ``step_size``
    (the first step of each segment) are fractions of 1. Call inside ``attack_mode(model)``."""
    x, x_adv = x.detach(), start.detach()
    broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    segments = [(name, losses.count(name)) for name in dict.fromkeys(losses)]
    shape = (len(x),) + (1,) * (x.dim() - 1)
    for name, n in segments:
        grad, logits, loss = _forward_backward(model, x_adv, y, name)
        broken |= logits.argmax(dim=1) != y
        step = torch.full(shape, float(step_size), dtype=x.dtype, device=x.device)
        best_loss, x_best, grad_best = loss.clone(), x_adv.clone(), grad.clone()
        rises = torch.zeros(len(x), device=x.device)
        best_at_check, halved_at_check = best_loss.clone(), torch.ones(len(x), dtype=torch.bool, device=x.device)
        checks, since_check, x_last = checkpoint_steps(n), 0, x_adv
        for i in range(1, n + 1):
            signed = project(x_adv + step * grad.sign(), x, eps)
            weight = 1.0 if i == 1 else MOMENTUM
            x_next = project(x_adv + weight * (signed - x_adv) + (1.0 - weight) * (x_adv - x_last), x, eps)
            x_last, x_adv = x_adv, x_next
            if i == n:  # the segment's last iterate: the next segment's (or the final) pass checks it
                break
            previous = loss
            grad, logits, loss = _forward_backward(model, x_adv, y, name)
            broken |= logits.argmax(dim=1) != y
            rises += (loss > previous).float()
            since_check += 1
            better = loss > best_loss
            best_loss = torch.where(better, loss, best_loss)
            x_best[better], grad_best[better] = x_adv[better], grad[better]
            if i in checks:
                halve = (rises <= RISE_SHARE * since_check) | (~halved_at_check & (best_at_check >= best_loss))
                step[halve] /= 2.0
                x_adv, grad = torch.where(halve.view(shape), x_best, x_adv), torch.where(halve.view(shape), grad_best, grad)
                halved_at_check, best_at_check = halve, best_loss.clone()
                rises.zero_()
                since_check = 0
    with torch.no_grad():
        broken |= model(x_adv).argmax(dim=1) != y
    return broken
