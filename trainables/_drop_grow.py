"""One drop-and-grow step of dynamic sparse training on one layer's keep-mask.

A *unit* is one weight (``unstructured``) or one output channel along dim 0 (``channel``). Each
function works on flat per-unit vectors of length ``units``: the keep-mask (bool), the drop
scores (weight magnitudes) and the grow scores (``|dense gradient|`` for RigL, uniform random
draws for SET). The drop and grow rules are RigL's (``rigl/sparse_optimizers.py``,
``SparseRigLOptimizer.generic_mask_update``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["drop_and_grow", "random_keep", "unit_scores"]


def unit_scores(values: Tensor, channel: bool) -> Tensor:
    """``values`` (a weight-shaped tensor of non-negative scores) per unit, float32 ``(units,)``:
    itself flattened, or summed over each output channel (the L1 norm of ``|w|`` or ``|grad|``).

    Per channel the sum ranks as Chase's unmasked mean magnitude does: within a layer every
    kept channel has the same number of weights, so mean and sum order channels alike.
    """
    values = values.detach().float()
    return values.flatten(1).sum(dim=1) if channel else values.flatten()


def random_keep(units: int, sparsity: float, generator: torch.Generator) -> Tensor:
    """A random keep-mask ``(units,)`` with ``round(sparsity * units)`` units dropped (halves up),
    at least one unit kept: the random sparse start of SET and RigL, drawn on the CPU."""
    dropped = min(math.floor(sparsity * units + 0.5), units - 1)
    order = torch.randperm(units, generator=generator)
    keep = torch.ones(units, dtype=torch.bool)
    keep[order[:dropped]] = False
    return keep


def drop_and_grow(keep: Tensor, drop_scores: Tensor, grow_scores: Tensor, fraction: float) -> tuple[Tensor, Tensor]:
    """The new keep-mask ``(units,)`` and the units grown that were not kept before.

    Of the ``n = keep.sum()`` kept units, ``floor(fraction * n)`` with the smallest
    ``drop_scores`` are dropped; as many are grown, those with the largest ``grow_scores``
    among the units not kept after the drop (so a unit just dropped may come back, as in RigL).
    The number of kept units never changes. Ties go to the lower index.
    """
    kept = int(keep.sum())
    moved = int(fraction * kept)
    if moved == 0:
        return keep.clone(), torch.zeros_like(keep)
    units = keep.numel()
    # Drop: keep the kept - moved largest magnitudes among the kept units.
    drop_order = torch.argsort(drop_scores.masked_fill(~keep, -math.inf), descending=True, stable=True)
    survivors = torch.zeros(units, dtype=torch.bool, device=keep.device)
    survivors[drop_order[: kept - moved]] = True
    # Grow: the moved largest grow scores among the units not surviving.
    grow_order = torch.argsort(grow_scores.masked_fill(survivors, -math.inf), descending=True, stable=True)
    grown = torch.zeros(units, dtype=torch.bool, device=keep.device)
    grown[grow_order[:moved]] = True
    return survivors | grown, grown & ~keep
