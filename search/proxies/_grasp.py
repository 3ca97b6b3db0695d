"""``grasp``: gradient signal preservation (Wang et al. 2020) as a NAS proxy. Higher = better.

As NASLib ``measures/grasp.py`` (temperature 1, one iteration): with ``g = dL/dW`` and
``Hg`` the Hessian-gradient product over the weights ``W`` of all Conv/Linear layers,

    grasp = sum over weights of ( -theta * Hg ).

Sign convention: NASLib's. Wang et al. prune the weights with the *largest* ``theta * Hg``,
and NASLib adds the minus sign because accuracy correlates negatively with ``sum theta*Hg``,
so higher = better here too. ``L`` is the mean cross-entropy of ``(x, y)``; the model copy
is in train mode (BatchNorm uses batch statistics). Units: loss units. With ``masks``,
``g`` is masked before the Hessian product (pruned weights cannot move) and pruned weights
(zero) contribute 0.
"""

from __future__ import annotations

import torch
from torch import nn

from robnas.search.proxies._common import Masks, finite, masked_grads, weight_gradients

__all__ = ["score"]


def score(model: nn.Module, batch: object = None, *, masks: Masks | None = None, seed: int = 0) -> float:
    """GraSP score ``sum(-theta * H g)`` of the (masked) model on ``batch = (x, y)``."""
    names, weights, first, checked = weight_gradients(model, batch, masks, seed, create_graph=True)
    g = [grad.detach() for grad in masked_grads(first, names, checked, weights)]
    z = sum((gi * fi).sum() for gi, fi in zip(g, first) if fi is not None)
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return 0.0  # no weight reaches the loss: the Hessian product is zero
    hg = torch.autograd.grad(z, weights, allow_unused=True)
    hg = masked_grads(hg, names, checked, weights)
    return finite(sum(float((-w.detach() * h).sum()) for w, h in zip(weights, hg)))
