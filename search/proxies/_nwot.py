"""``nwot``: NAS without training (Mellor et al. 2021, v2). Higher = better.

As NASLib ``measures/nwot.py``: for every ``nn.ReLU`` module call, the binary code
``c = (activation > 0)`` of each sample (flattened, ``(N, D)``) adds
``c @ c.T + (1 - c) @ (1 - c).T`` (``D`` minus the Hamming distances) to an ``N x N``
matrix ``K``; the score is ``log|det K|`` (natural log, from ``slogdet``). Only ReLU
*modules* are seen (``F.relu`` calls are not). The model copy is in train mode (BatchNorm
uses batch statistics), as NASLib. Units: nats. ``nan`` if ``K`` is singular (two samples
with identical codes everywhere) or the model has no ReLU module. Labels are not used.
Masked weights are zeroed in the copy before the forward pass.
"""

from __future__ import annotations

import torch
from torch import nn

from robnas.search.proxies._common import Masks, finite, hooked_forward, unpack, working_copy

__all__ = ["score", "kernel"]


def kernel(model: nn.Module, x: torch.Tensor, *, masks: Masks | None = None, seed: int = 0) -> torch.Tensor:
    """The float64 ``N x N`` code-agreement matrix ``K`` of the (masked) model on ``x``."""
    net, _ = working_copy(model, masks, train=True)
    n = x.shape[0]
    K = torch.zeros((n, n), dtype=torch.float64)

    def on_output(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal K
        codes = output.detach().reshape(n, -1) > 0
        d = codes.shape[1]
        # Exact in float32 while counts stay below 2**24.
        codes = codes.to(torch.float32 if d < 2**24 else torch.float64)
        agree = (codes @ codes.T).double().cpu()
        ones = codes.sum(1).double().cpu()
        # c c^T + (1 - c)(1 - c)^T = 2 c c^T - r 1^T - 1 r^T + d, r the row sums of c.
        K = K + 2.0 * agree - ones[:, None] - ones[None, :] + d

    hooked_forward(net, x, [m for m in net.modules() if isinstance(m, nn.ReLU)], on_output, seed=seed)
    return K


def score(model: nn.Module, batch: object = None, *, masks: Masks | None = None, seed: int = 0) -> float:
    """NWOT score ``log|det K|`` of the (masked) model on the inputs of ``batch``."""
    x, _ = unpack(batch, labels=False)
    K = kernel(model, x, masks=masks, seed=seed)
    sign, logdet = torch.linalg.slogdet(K)
    if float(sign) == 0.0:
        return float("nan")
    return finite(logdet)
