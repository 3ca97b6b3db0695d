"""One FGSM step from a clean batch, for the robustness-aware proxies.

``x_adv = clip(x + eps * sign(dL/dx), 0, 1)`` with ``L`` the mean cross-entropy of the
(masked) model on ``(x, y)``; ``eps`` is a fraction of the [0, 1] image range (8/255 for
the usual CIFAR budget). No random start, so the step is deterministic. The gradient is
taken on a train-mode copy (BatchNorm uses batch statistics), the same function the
data-dependent proxies score; the caller's model is not touched. A model whose output
does not depend on its input gets ``x`` back unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robnas.search.proxies._common import Batch, Masks, logits_of, seeded, unpack, working_copy

__all__ = ["fgsm_batch", "check_eps"]


def check_eps(eps: object) -> float:
    """``eps`` as a float in (0, 1]; ``ValueError`` otherwise."""
    try:
        value = float(eps)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 < value <= 1.0:
        raise ValueError(
            f"eps must be a fraction of the image range in (0, 1] (e.g. 8/255), got {eps!r}"
        )
    return value


def fgsm_batch(
    model: nn.Module, batch: object, *, eps: float, masks: Masks | None = None, seed: int = 0
) -> Batch:
    """``(x_adv, y)``: one FGSM step of size ``eps`` (fraction of 1) from ``batch = (x, y)``."""
    eps = check_eps(eps)
    x, y = unpack(batch)
    net, _ = working_copy(model, masks, train=True)
    x_in = x.detach().clone().requires_grad_(True)
    with seeded(seed):
        loss = F.cross_entropy(logits_of(net(x_in)), y)
    (grad,) = torch.autograd.grad(loss, x_in, allow_unused=True)
    if grad is None:  # the output does not depend on the input: no direction to step in
        return x.detach().clone(), y
    x_adv = (x.detach() + eps * grad.sign()).clamp_(0.0, 1.0)
    return x_adv, y
