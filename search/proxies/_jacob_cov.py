"""``jacob_cov``: Jacobian covariance (Mellor et al. 2021, v1). Higher = better.

As NASLib ``measures/jacov.py``: ``J[n] = d(sum of all logits)/dx[n]`` for every sample of
the batch (flattened to ``(N, C*H*W)``), ``R = corrcoef(J)`` (``N x N``, rows are samples),
eigenvalues ``ev`` of ``R`` and

    jacob_cov = -sum( log(ev + k) + 1 / (ev + k) ),   k = 1e-5   (natural log).

The maximum is reached when the samples' Jacobians are uncorrelated. The model copy is in
train mode (BatchNorm uses batch statistics), as NASLib. Dimensionless. ``nan`` when a
row of ``J`` is constant (its correlation is undefined). Labels are not used. Masked
weights are zeroed in the copy before the forward pass.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from robnas.search.proxies._common import Masks, finite, logits_of, seeded, unpack, working_copy

__all__ = ["score", "K"]

K = 1e-5


def score(model: nn.Module, batch: object = None, *, masks: Masks | None = None, seed: int = 0) -> float:
    """Jacobian-covariance score of the (masked) model on the inputs of ``batch``."""
    x, _ = unpack(batch, labels=False)
    net, _ = working_copy(model, masks, train=True)
    x = x.detach().clone().requires_grad_(True)
    with seeded(seed):
        output = logits_of(net(x))
    (jacobian,) = torch.autograd.grad(output.sum(), x, allow_unused=True)
    if jacobian is None:
        return float("nan")
    rows = jacobian.reshape(jacobian.shape[0], -1).double().cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(rows)
    if not np.all(np.isfinite(corr)):
        return float("nan")
    ev = np.linalg.eigvalsh(corr)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = -np.sum(np.log(ev + K) + 1.0 / (ev + K))
    return finite(value)
