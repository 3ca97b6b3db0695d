"""``snip``: connection sensitivity (Lee et al. 2019) as a NAS proxy. Higher = better.

As NASLib ``measures/snip.py``: ``sum |theta * dL/dtheta|`` over the weights of every
Conv/Linear layer, ``L`` the mean cross-entropy of the batch ``(x, y)``. The model copy is
in train mode (BatchNorm uses batch statistics), as NASLib scores a freshly built network.
Units: loss units (nats). Pruned weights are zero, so they contribute 0 (with or without
``masks``; with masks they are zeroed first).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robnas.search.proxies._common import (
    Masks,
    finite,
    logits_of,
    prunable,
    seeded,
    unpack,
    working_copy,
)

__all__ = ["score"]


def score(model: nn.Module, batch: object = None, *, masks: Masks | None = None, seed: int = 0) -> float:
    """SNIP saliency of the (masked) model on ``batch = (x, y)``."""
    x, y = unpack(batch)
    net, _ = working_copy(model, masks, train=True)
    weights = prunable(net)
    with seeded(seed):
        loss = F.cross_entropy(logits_of(net(x)), y)
    grads = torch.autograd.grad(loss, [w for _, w in weights], allow_unused=True)
    total = sum(float((w.detach() * g).abs().sum()) for (_, w), g in zip(weights, grads) if g is not None)
    return finite(total)
