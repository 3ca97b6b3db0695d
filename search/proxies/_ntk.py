"""Empirical neural tangent kernel (NTK) of a model on a small batch.

``J[n] = d(sum_c f_c(x_n)) / d(theta)``: per-sample gradient of the *summed logits* w.r.t.
every parameter (as TE-NAS, Chen et al. 2021), and ``NTK = J @ J.T`` (``n x n``, float64).
The model copy is in eval mode, so each sample's output depends on that sample only (at
initialisation BatchNorm then uses its running statistics, mean 0 and variance 1).
Per-sample gradients come from ``torch.func`` (``functional_call`` + ``vmap`` + ``grad``);
models ``vmap`` cannot trace fall back to one backward pass per sample (same values).
Columns of pruned parameters (mask 0) are zeroed: pruned weights are not trainable.
Memory: ``n * n_parameters`` floats for ``J``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from robnas.search.proxies._common import Masks, logits_of, working_copy

__all__ = ["MAX_SAMPLES", "select_samples", "ntk_matrix", "ntk_eigenvalues", "cond_score", "min_eig_score"]

MAX_SAMPLES = 64
_EPS = torch.finfo(torch.float64).eps


def select_samples(x: torch.Tensor, max_samples: int, seed: int) -> torch.Tensor:
    """``x`` itself if it has at most ``max_samples`` rows, else a seeded random subset (in order)."""
    valid = isinstance(max_samples, int) and not isinstance(max_samples, bool)
    if not (valid and 2 <= max_samples <= MAX_SAMPLES):
        raise ValueError(f"max_samples must be an int in [2, {MAX_SAMPLES}], got {max_samples!r}")
    if x.shape[0] <= max_samples:
        return x
    generator = torch.Generator().manual_seed(seed)
    keep = torch.randperm(x.shape[0], generator=generator)[:max_samples].sort().values
    return x[keep.to(x.device)]


def _jacobian_vmap(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    params = {name: p.detach() for name, p in net.named_parameters()}
    buffers = dict(net.named_buffers())

    def summed_logits(p: dict[str, torch.Tensor], sample: torch.Tensor) -> torch.Tensor:
        return logits_of(functional_call(net, (p, buffers), (sample.unsqueeze(0),))).sum()

    return vmap(grad(summed_logits), in_dims=(None, 0))(params, x)


def _jacobian_loop(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    names, params = zip(*net.named_parameters())
    rows: list[list[torch.Tensor]] = [[] for _ in names]
    for i in range(x.shape[0]):
        out = logits_of(net(x[i : i + 1])).sum()
        grads = torch.autograd.grad(out, params, allow_unused=True)
        for row, g, p in zip(rows, grads, params):
            row.append(torch.zeros_like(p) if g is None else g.detach())
    return {name: torch.stack(row) for name, row in zip(names, rows)}


def ntk_matrix(model: nn.Module, x: torch.Tensor, *, masks: Masks | None = None) -> torch.Tensor:
    """The float64 ``(n, n)`` empirical NTK of the summed logits on the rows of ``x``."""
    net, checked = working_copy(model, masks, train=False)
    try:
        jac = _jacobian_vmap(net, x)
    except (RuntimeError, NotImplementedError):
        jac = _jacobian_loop(net, x)
    n = x.shape[0]
    ntk = torch.zeros((n, n), dtype=torch.float64, device=x.device)
    for name, rows in jac.items():
        if name in checked:
            rows = rows * checked[name]
        flat = rows.reshape(n, -1).double()
        ntk += flat @ flat.T
    return ntk


def ntk_eigenvalues(
    model: nn.Module, x: torch.Tensor, *, masks: Masks | None = None, max_samples: int = 32, seed: int = 0
) -> torch.Tensor:
    """Ascending eigenvalues of the NTK on (a seeded subset of at most ``max_samples`` of) ``x``."""
    ntk = ntk_matrix(model, select_samples(x, max_samples, seed), masks=masks)
    return torch.linalg.eigvalsh(ntk).cpu()


def _smallest(ev: torch.Tensor) -> float:
    """The smallest eigenvalue, or ``nan`` if the NTK is singular at float64 precision.

    Singular: ``ev_min <= n * eps * ev_max`` (numpy's ``matrix_rank`` tolerance).
    """
    lo, hi = float(ev[0]), float(ev[-1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= ev.numel() * _EPS * hi or lo <= 0.0:
        return float("nan")
    return lo


def cond_score(ev: torch.Tensor) -> float:
    """``-ln(ev_max / ev_min)`` of ascending eigenvalues ``ev``; ``nan`` if singular."""
    lo = _smallest(ev)
    return -(math.log(float(ev[-1])) - math.log(lo)) if math.isfinite(lo) else float("nan")


def min_eig_score(ev: torch.Tensor) -> float:
    """``ln(ev_min)`` of ascending eigenvalues ``ev``; ``nan`` if singular."""
    lo = _smallest(ev)
    return math.log(lo) if math.isfinite(lo) else float("nan")
