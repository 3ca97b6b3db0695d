"""``fisher``: channel saliency from the empirical Fisher (Turner et al. 2020). Higher = better.

As NASLib ``measures/fisher.py``: at the output ``a`` of every Conv/Linear layer (before
BatchNorm and activation, where NASLib places its hooked identity), with ``g = dL/da``,

    fisher_k = 0.5 * mean_n ( sum_spatial a[n, k] * g[n, k] )^2       per output channel k,

and, as NASLib broadcasts each channel's value to every weight of that channel before
summing, the score is ``sum_k fisher_k * (number of weights of channel k)``. ``L`` is the
mean cross-entropy of ``(x, y)``; the model copy is in train mode (BatchNorm uses batch
statistics). Units: squared loss units. With ``masks`` a channel counts only its unpruned
weights, so a fully pruned channel contributes 0. A layer called several times adds up.
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


def _channel_fisher(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``0.5 * mean_n (sum_spatial act * grad)^2`` per channel: ``(N, K, ...) -> (K,)``."""
    per_sample = act * grad
    if per_sample.dim() > 2:
        per_sample = per_sample.flatten(2).sum(2)
    return per_sample.pow(2).mean(0).mul(0.5)


def score(model: nn.Module, batch: object = None, *, masks: Masks | None = None, seed: int = 0) -> float:
    """Fisher saliency of the (masked) model on ``batch = (x, y)``."""
    x, y = unpack(batch)
    net, checked = working_copy(model, masks, train=True)
    modules = dict(net.named_modules())
    totals: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str):
        def on_output(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if not output.requires_grad:
                return
            act = output.detach()

            def on_grad(grad: torch.Tensor) -> None:
                value = _channel_fisher(act, grad.detach())
                totals[name] = totals[name] + value if name in totals else value

            output.register_hook(on_grad)

        return on_output

    for name, _ in prunable(net):
        module_name = name[: -len(".weight")] if name.endswith(".weight") else ""
        handles.append(modules[module_name].register_forward_hook(make_hook(name)))
    try:
        with seeded(seed):
            loss = F.cross_entropy(logits_of(net(x)), y)
        loss.backward()
    finally:
        for handle in handles:
            handle.remove()
    total = 0.0
    weights = dict(prunable(net))
    for name, per_channel in totals.items():
        weight = weights[name]
        kept = checked[name] if name in checked else torch.ones_like(weight)
        per_channel_weights = kept.flatten(1).sum(1) if kept.dim() > 1 else kept
        total += float((per_channel * per_channel_weights).sum())
    return finite(total)
