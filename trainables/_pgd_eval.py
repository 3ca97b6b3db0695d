"""The evaluation PGD: which images some iterate of an L-inf PGD attack misclassifies.

The training attack (``robnas.trainables._pgd.pgd``) returns only its last iterate. To measure
robustness, an image counts as broken as soon as any iterate, from the start point to the last,
is misclassified: every ascent step already computes the logits of its iterate to get the
gradient, so only the last iterate costs one more forward pass. Same calling contract as
``pgd`` (images in [0, 1], eps and step_size as fractions of 1, eval mode, no parameter grads).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._pgd import ascent_step, attack_mode, check_attack_args

__all__ = ["pgd_broken"]


def pgd_broken(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    start: Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
) -> Tensor:
    """Bool tensor (N,): True where PGD from ``start`` misclassifies an iterate of that image.

    ``start``: the first iterate, shape of ``x`` (e.g. ``x`` plus uniform noise, clamped to
    [0, 1]); it is checked too, as are the ``steps`` iterates after it. The iterates are those
    of ``pgd`` with the same start; the loss is summed over the batch, so each image's verdict
    depends on that image only (eval-mode batch norm).
    """
    check_attack_args("pgd_broken", eps=eps, step_size=step_size, steps=steps)
    if start.shape != x.shape:
        raise ValueError(f"start must have the shape of x {tuple(x.shape)}, got {tuple(start.shape)}")
    x = x.detach()
    x_adv = start.detach()
    broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    with attack_mode(model):
        for _ in range(steps):
            x_adv, logits = ascent_step(model, x_adv, x, y, eps=eps, step_size=step_size)
            broken |= logits.argmax(dim=1) != y
        with torch.no_grad():
            broken |= model(x_adv).argmax(dim=1) != y
    return broken
