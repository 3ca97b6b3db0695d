"""TRADES training loss, Zhang et al. 2019, "Theoretically principled trade-off between
robustness and accuracy".

Same calling contract as ``pgd`` (see ``_pgd``) for the inner maximisation: eval mode, input
gradients only, randomness from the explicit generator. The returned loss is computed in the
caller's mode (train mode during training) and carries the graph for ``loss.backward()``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._pgd import attack_mode, check_attack_args, input_gradient, project, require_generator


def trades_loss(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float = 8 / 255,
    step_size: float = 2 / 255,
    steps: int = 10,
    beta: float = 6.0,
    generator: torch.Generator,
) -> Tensor:
    """``CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x'))``, KL averaged over the batch.

    ``x'`` maximises the KL term (:func:`trades_examples`). Defaults are the paper's CIFAR-10
    setting (eps 0.031 ~ 8/255, step 0.007 ~ 2/255, 10 steps, beta 6). Returns a scalar.
    """
    x_adv = trades_examples(model, x, eps=eps, step_size=step_size, steps=steps, generator=generator)
    return trades_objective(model, x, x_adv, y, beta=beta)


def trades_examples(
    model: nn.Module,
    x: Tensor,
    *,
    eps: float = 8 / 255,
    step_size: float = 2 / 255,
    steps: int = 10,
    budget: Tensor | None = None,
    generator: torch.Generator,
) -> Tensor:
    """TRADES's inner maximisation: detached ``x'``, shape of ``x``, that maximises the KL term.

    Start ``x + 0.001 * N(0, 1)``, then ``steps`` signed-gradient steps of ``step_size``
    projected onto the eps-ball and [0, 1]. ``budget``: per-pixel radii, fractions of 1, shape
    broadcastable to ``x`` (PART's (N, 1, H, W)), each at most ``eps``, used instead of ``eps``
    in every projection (the start's included).
    """
    check_attack_args("trades_loss", eps=eps, step_size=step_size, steps=steps)
    generator = require_generator(generator, "trades_loss")
    x = x.detach()
    radius = eps if budget is None else budget.to(x.dtype).clamp(0.0, eps)
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
    x_adv = project(x + 0.001 * noise.to(x.device), x, radius)
    with attack_mode(model):
        with torch.no_grad():
            p_clean = F.softmax(model(x), dim=1)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            kl = F.kl_div(F.log_softmax(model(x_adv), dim=1), p_clean, reduction="sum")
            grad = input_gradient(kl, x_adv)
            x_adv = project(x_adv.detach() + step_size * grad.sign(), x, radius)
    return x_adv.detach()


def trades_objective(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, *, beta: float = 6.0) -> Tensor:
    """The TRADES loss of clean ``x`` and its examples ``x_adv`` in the model's current mode:
    ``CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x_adv))`` (KL averaged over the batch)."""
    logits_clean = model(x)
    logits_adv = model(x_adv)
    loss_clean = F.cross_entropy(logits_clean, y)
    loss_robust = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits_clean, dim=1),
                           reduction="batchmean")
    return loss_clean + beta * loss_robust
