"""``grad_norm``: summed gradient norms (Abdelfattah et al. 2021). Higher = better.

As NASLib ``measures/grad_norm.py``: ``sum_l ||dL/dW_l||_2`` over the weight ``W_l`` of
every Conv/Linear layer (Frobenius norm per layer, then summed), ``L`` the mean
cross-entropy of the batch ``(x, y)``; the model copy is in train mode (BatchNorm uses
batch statistics). Units: loss units per weight unit. Gradients of weights with mask 0
are zeroed before the norm (pruned weights cannot move); without ``masks`` every weight
counts, including weights that happen to be zero.
"""

from __future__ import annotations

import torch
from torch import nn

from robnas.search.proxies._common import Masks, finite, masked_grads, weight_gradients

__all__ = ["score"]


def score(model: nn.Module, batch: object = None, *, masks: Masks | None = None, seed: int = 0) -> float:
    """Sum over Conv/Linear layers of the L2 norm of the weight gradient on ``batch``."""
    names, weights, grads, checked = weight_gradients(model, batch, masks, seed)
    grads = masked_grads(grads, names, checked, weights)
    return finite(sum(float(torch.linalg.vector_norm(g)) for g in grads))
