"""Parameter and multiply-accumulate (MAC) counts of a model, dense or non-zero only."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["count_parameters", "count_macs"]


def _effective_parameters(model: nn.Module) -> list[torch.Tensor]:
    """Each parameter once; for ``torch.nn.utils.prune`` pairs, the masked tensor in use."""
    seen: set[int] = set()
    tensors: list[torch.Tensor] = []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            masked = None
            if name.endswith("_orig"):
                masked = getattr(module, name[: -len("_orig")], None)
            tensors.append(masked if isinstance(masked, torch.Tensor) else param)
    return tensors


def count_parameters(model: nn.Module, *, nonzero: bool = False) -> int:
    """Number of parameters of ``model`` (shared tensors counted once).

    With ``nonzero=True``, count only entries that are not exactly zero (after pruning
    masks created by ``torch.nn.utils.prune``, if any).
    """
    tensors = _effective_parameters(model)
    if nonzero:
        return sum(int(torch.count_nonzero(t.detach())) for t in tensors)
    return sum(t.numel() for t in tensors)


def _input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(operator.index(s) for s in input_shape)
    except TypeError:
        shape = ()
    if not shape or any(s < 1 for s in shape):
        raise ValueError(
            "input_shape must be a non-empty sequence of positive ints (C, H, W), "
            f"got {input_shape!r}"
        )
    return shape


def count_macs(model: nn.Module, input_shape: Sequence[int], *, nonzero: bool = False,
               live_channels: bool = False) -> int:
    """Multiply-accumulates of ``Conv2d`` and ``Linear`` layers for one input of ``input_shape``.

    A layer costs ``(output positions) x (weights)``, i.e.
    ``H_out * W_out * C_out * C_in/groups * kh * kw`` for a convolution and ``in * out`` for
    a linear layer. With ``nonzero=True`` only non-zero weights count (sparse MACs of a
    pruned model). With ``live_channels=True`` an output channel whose weights are all zero
    costs nothing and every other channel counts in full: the MACs of the network with the
    channels removed by channel pruning cut out. Biases, normalisation, pooling and activations
    are not counted.

    Runs one forward pass of a zeros batch of one, in eval mode and without gradients, on the
    model's device and dtype; every module's train/eval mode is restored afterwards.
    """
    shape = _input_shape(input_shape)
    reference = next(model.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None else torch.float32
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        weight = module.weight
        if nonzero:
            weights = int(torch.count_nonzero(weight))
        elif live_channels:
            live = int(weight.detach().flatten(1).ne(0).any(dim=1).sum())
            weights = live * weight[0].numel()
        else:
            weights = weight.numel()
        out_channels = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        positions = output.numel() // out_channels  # batch of one
        total += positions * weights

    modes = [(module, module.training) for module in model.modules()]
    handles = [
        module.register_forward_hook(hook)
        for module in model.modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
    ]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *shape), device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
    return total
