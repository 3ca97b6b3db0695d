"""``meco``: minimum eigenvalue of the channel correlation of feature maps (Jiang et al. 2023).
Higher = better.

For one image, the output ``(C, H, W)`` of a module is read as ``C`` channel vectors of
``H*W`` values; ``R`` is their Pearson correlation matrix ``(C, C)`` and the module adds
``min eig(R)`` (0 <= value <= 1; a constant channel has a zero row and column, as the
reference's ``nan -> 0``, so its module adds 0). MeCo sums this over the modules; the
reference code reads the first image of a batch only and hooks every module, containers
included. Here every *leaf* module with a 4-d output counts once (a container repeats its
last child's output), and the score is the mean of the per-image sums over the first
``images`` images of the batch (default ``IMAGES``), passed together: on NAS-RobBench-201
the mean over 4 images ranks robust accuracy better than one image, and as well as the mean
over 32 at an eighth of the cost (benchmarks/RESULTS.md). The model copy is in train mode
(BatchNorm on the statistics of those images), one forward pass, no gradients. Dimensionless. Labels are not used. Masked
weights are zeroed in the copy before the forward pass. ``nan`` if no module has a 4-d output.
"""

from __future__ import annotations

import torch
from torch import nn

from robnas.search.proxies._common import Masks, finite, hooked_forward, unpack, working_copy

__all__ = ["IMAGES", "score", "min_eigenvalues"]

#: Images of the batch that MeCo averages over.
IMAGES = 4


def min_eigenvalues(features: torch.Tensor) -> torch.Tensor:
    """``(N,)`` smallest eigenvalue of the channel correlation of each image of ``features``
    ``(N, C, H, W)``, in float64. A constant channel contributes a zero row and column; with
    ``H*W <= C`` every eigenvalue minimum is 0 (the matrix has rank < C), not computed."""
    n, c = features.shape[:2]
    rows = features.detach().reshape(n, c, -1).double()
    if rows.shape[2] <= c:
        # Centred, the C rows lie in a space of H*W - 1 dimensions: R is singular.
        return torch.zeros(n, dtype=torch.float64, device=features.device)
    rows = rows - rows.mean(dim=2, keepdim=True)
    norms = rows.norm(dim=2, keepdim=True)
    rows = torch.where(norms > 0, rows / norms.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
    return torch.linalg.eigvalsh(rows @ rows.transpose(1, 2))[:, 0]


def score(
    model: nn.Module, batch: object = None, *, masks: Masks | None = None, seed: int = 0, images: int = IMAGES
) -> float:
    """MeCo of the (masked) model: per image, the sum over leaf modules of ``min eig`` of the
    channel correlation of their output; the mean over the first ``images`` (>= 2) images of
    ``batch``."""
    x, _ = unpack(batch, labels=False)
    if isinstance(images, bool) or not isinstance(images, int) or images < 2:
        raise ValueError(f"images must be an integer >= 2, got {images!r}")
    x = x[:images]
    net, _ = working_copy(model, masks, train=True)
    total = torch.zeros(x.shape[0], dtype=torch.float64)
    seen = 0

    def on_output(module: nn.Module, inputs: tuple, output: object) -> None:
        nonlocal total, seen
        if torch.is_tensor(output) and output.dim() == 4:
            total = total + min_eigenvalues(output).cpu()
            seen += 1

    leaves = [m for m in net.modules() if next(m.children(), None) is None]
    hooked_forward(net, x, leaves, on_output, seed=seed)
    if seen == 0:
        return float("nan")
    return finite(total.mean())
