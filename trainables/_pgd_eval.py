"""The evaluation PGD: which images some iterate of an L-inf PGD attack misclassifies.

The training attack (``robnas.trainables._pgd.pgd``) returns only its last iterate. To measure
robustness, an image counts as broken as soon as any iterate, from the start point to the last,
is misclassified: every ascent step already computes the logits of its iterate to get the
gradient, so only the last iterate costs one more forward pass. Same calling contract as
``pgd`` (images in [0, 1], eps and step_size as fractions of 1, eval mode, no parameter grads).

The ascent follows one of ``EVAL_LOSSES``: ``ce`` (cross-entropy, as ``pgd``), ``margin`` (the
untargeted margin of Carlini & Wagner, ``max_{j != y} z_j - z_y`` on the logits ``z``: the
unscaled numerator of Croce & Hein's DLR loss), or ``ce+margin`` (the first half of the steps
on cross-entropy, the rest on the margin from where they ended). Every choice costs ``steps``
forward-backward passes and one forward pass.

The step sizes follow one of ``EVAL_SCHEDULES``: ``constant`` (``step_size`` every step),
``cosine`` (``step_size * (1 + cos(pi t / steps)) / 2`` at step t = 0 .. steps - 1) or ``apgd``
(APGD's momentum and step halving, first step ``step_size``; :mod:`._apgd_eval`). Same cost.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from robnas.spaces._evaluation import EVAL_LOSSES, EVAL_SCHEDULES

from ._apgd_eval import apgd_broken
from ._pgd import ascent_step, attack_mode, check_attack_args, cross_entropy_sum

__all__ = ["margin_loss", "pgd_broken", "step_losses", "step_sizes"]


def margin_loss(logits: Tensor, y: Tensor) -> Tensor:
    """``sum_i (max_{j != y_i} z_ij - z_i,y_i)`` over the batch, ``z = logits`` (N, classes >= 2).

    Positive exactly for the images the logits misclassify (ties aside); its ascent pushes the
    strongest other class up and the true class down, whatever the softmax's saturation.
    """
    true = logits.gather(1, y.unsqueeze(1)).squeeze(1)
    others = logits.masked_fill(nn.functional.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return (others.amax(dim=1) - true).sum()


_LOSSES = {"ce": cross_entropy_sum, "margin": margin_loss}


def step_losses(loss: str, steps: int) -> list[str]:
    """The loss (``"ce"`` or ``"margin"``) of each of ``steps`` ascent steps under ``loss``, one of
    ``EVAL_LOSSES``: ``ce+margin`` takes ``steps - steps // 2`` cross-entropy steps, then
    ``steps // 2`` margin steps (one step: cross-entropy)."""
    if loss not in EVAL_LOSSES:
        raise ValueError(f"unknown evaluation loss {loss!r}; allowed: {', '.join(EVAL_LOSSES)}")
    if loss != "ce+margin":
        return [loss] * steps
    return ["ce"] * (steps - steps // 2) + ["margin"] * (steps // 2)


def step_sizes(schedule: str, step_size: float, steps: int) -> list[float]:
    """The size of each of ``steps`` steps under the ``constant`` or ``cosine`` schedule."""
    if schedule == "cosine":
        return [step_size * (1.0 + math.cos(math.pi * t / steps)) / 2.0 for t in range(steps)]
    return [step_size] * steps


def pgd_broken(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    start: Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    loss: str = "ce",
    schedule: str = "constant",
) -> Tensor:
    """Bool tensor (N,): True where PGD from ``start`` misclassifies an iterate of that image.

    ``start``: the first iterate, shape of ``x`` (e.g. ``x`` plus uniform noise, clamped to
    [0, 1]); it is checked too, as are the ``steps`` iterates after it. With ``loss="ce"`` the
    iterates are those of ``pgd`` with the same start; ``loss`` chooses the ascent's loss per
    step (:func:`step_losses`) and ``schedule``, one of ``EVAL_SCHEDULES``, the step sizes.
    The loss is summed over the batch, so each image's verdict depends on that image only
    (eval-mode batch norm).
    """
    check_attack_args("pgd_broken", eps=eps, step_size=step_size, steps=steps)
    losses = step_losses(loss, steps)
    if schedule not in EVAL_SCHEDULES:
        raise ValueError(f"unknown evaluation step schedule {schedule!r}; allowed: {', '.join(EVAL_SCHEDULES)}")
    if start.shape != x.shape:
        raise ValueError(f"start must have the shape of x {tuple(x.shape)}, got {tuple(start.shape)}")
    x = x.detach()
    x_adv = start.detach()
    if schedule == "apgd":
        with attack_mode(model):
            return apgd_broken(model, x, y, x_adv, eps=eps, step_size=step_size, losses=losses)
    broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    with attack_mode(model):
        for name, size in zip(losses, step_sizes(schedule, step_size, steps)):
            x_adv, logits = ascent_step(model, x_adv, x, y, eps=eps, step_size=size, loss=_LOSSES[name])
            broken |= logits.argmax(dim=1) != y
        with torch.no_grad():
            broken |= model(x_adv).argmax(dim=1) != y
    return broken
