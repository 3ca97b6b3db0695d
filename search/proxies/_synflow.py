"""``synflow``: synaptic flow (Tanaka et al. 2020) as a NAS proxy. Higher = better.

As Abdelfattah et al. 2021 and NASLib ``measures/synflow.py``: on a float64 copy of the
model, every parameter is replaced by its absolute value, BatchNorm layers are bypassed
(NASLib's ``bn=False`` copy; the copy is in eval mode so nothing else is stochastic), one
all-ones input of the per-sample input shape is passed, ``R = sum(output)`` is
back-propagated, and the score is ``sum |theta * dR/dtheta|`` over the weights of every
Conv/Linear layer (biases are made positive but not scored).

Numerics: computed in float64 (no log space); the raw value is returned. It is large for
deep networks (NASLib's published NB201 values are ``ln(score)`` of up to ~115, i.e.
``score`` ~ 1e50), far below float64's 1.8e308. ``log=True`` returns NASLib's transform
``sign(s) * ln|s|`` (0 stays 0) instead. A score that overflows float64 is ``nan``.

Masks: weights with mask 0 are set to zero first, so they and everything flowing only
through them contribute 0 (a weight that is exactly zero contributes 0 even without masks).
Data-independent: only the input shape is taken from ``batch`` (or ``input_shape``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from robnas.search.proxies._common import (
    Masks,
    bypass_batchnorm,
    finite,
    input_shape_of,
    logits_of,
    prunable,
    working_copy,
)

__all__ = ["score", "log_form"]


def score(
    model: nn.Module,
    batch: object = None,
    *,
    input_shape: Sequence[int] | None = None,
    masks: Masks | None = None,
    log: bool = False,
) -> float:
    """Synflow of the (masked) model in float64; ``log=True`` for ``sign * ln|score|``."""
    shape = input_shape_of(batch, input_shape)
    net, _ = working_copy(model, masks, train=False, dtype=torch.float64)
    bypass_batchnorm(net)
    with torch.no_grad():
        for param in net.parameters():
            param.abs_()
    weights = prunable(net)
    device = next(net.parameters()).device
    output = logits_of(net(torch.ones((1, *shape), dtype=torch.float64, device=device)))
    grads = torch.autograd.grad(output.sum(), [w for _, w in weights], allow_unused=True)
    total = finite(
        sum(float((w.detach() * g).abs().sum()) for (_, w), g in zip(weights, grads) if g is not None)
    )
    return log_form(total) if log else total


def log_form(value: float) -> float:
    """NASLib's ``sign(value) * ln|value|``; 0 and ``nan`` stay as they are."""
    if math.isfinite(value) and value != 0.0:
        return math.copysign(math.log(abs(value)), value)
    return value
