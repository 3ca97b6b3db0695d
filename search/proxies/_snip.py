"""``snip``: connection sensitivity (Lee et al. 2019) as a NAS proxy. Higher = better.

As NASLib ``measures/snip.py``: ``sum |theta * dL/dtheta|`` over the weights of every
Conv/Linear layer, ``L`` the mean cross-entropy of the batch ``(x, y)``. The model copy is
in train mode (BatchNorm uses batch statistics), as NASLib scores a freshly built network.
Units: loss units (nats). Pruned weights are zero, so they contribute 0 (with or without
``masks``; with masks they are zeroed first).
"""

from __future__ import annotations

from torch import nn

from robnas.search.proxies._common import Masks, finite, weight_gradients

__all__ = ["score"]


def score(model: nn.Module, batch: object = None, *, masks: Masks | None = None, seed: int = 0) -> float:
    """SNIP saliency of the (masked) model on ``batch = (x, y)``."""
    _, weights, grads, _ = weight_gradients(model, batch, masks, seed)
    total = sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads) if g is not None)
    return finite(total)
