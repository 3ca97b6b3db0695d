"""``params``: number of unpruned parameters (a count, not millions). Higher = better.

The sign follows NASLib, where model size correlates positively with accuracy on NB201.
Every parameter entry counts except pruned ones: entries with mask 0 in ``masks``
(parameter name -> 0/1 tensor), and entries of Conv/Linear weights that are exactly zero
(a pruned model's weights). Other exact zeros, such as BatchNorm shifts and biases
initialised to zero, still count, so a dense network scores its full size. Shared
parameters count once. Data-independent: ``batch`` is ignored.
"""

from __future__ import annotations

import torch
from torch import nn

from robnas.search.proxies._common import Masks, check_masks, prunable

__all__ = ["score"]


def score(model: nn.Module, batch: object = None, *, masks: Masks | None = None) -> float:
    """Unpruned parameters of ``model`` after ``masks``; the model is not modified."""
    checked = check_masks(model, masks)
    weights = {name for name, _ in prunable(model)}
    total = 0
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in checked:
                kept = checked[name] * (param != 0) if name in weights else checked[name]
                total += int(torch.count_nonzero(kept))
            elif name in weights:
                total += int(torch.count_nonzero(param))
            else:
                total += param.numel()
    return float(total)
