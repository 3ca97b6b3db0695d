"""Adversarial weight perturbation (AWP), Wu, Xia & Wang 2020, "Adversarial weight perturbation
helps robust generalization" (reference code: github.com/csdongxian/AWP, ``utils_awp.py``).

Before each weight update the weights are moved, layer by layer, up the gradient of the
training loss on the batch's adversarial examples, by ``gamma`` times the layer's own norm; the
update's gradient is taken at the moved weights, and the update is applied to the original ones.

As in the reference code: only weights of two or more dimensions (convolutions, linear layers)
are perturbed, not biases or batch-norm parameters; the perturbation is one normalised gradient
step, computed in train mode; the norm is per weight tensor (Frobenius). Departures: the
reference moves a copy of the network with an SGD step (lr 0.01) and normalises that step,
which is the same direction; batch-norm running statistics are left as they were before the
perturbation's forward pass (the reference's copy discards its own the same way); and the
original weights are restored by copy before the optimiser step (the reference subtracts the
perturbation after it), so the update is exactly the plain step from the original weights with
the perturbed gradient, weight decay included on the original weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import Tensor, nn

__all__ = ["awp_perturbation", "perturbed_weights", "weight_perturbation"]

#: Added to a gradient's norm before dividing by it (the reference code's ``EPS``).
_EPS = 1e-20


def perturbed_weights(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of every weight AWP perturbs: trainable parameters named ``weight``
    with two or more dimensions (convolution and linear weights)."""
    return [
        (name, param) for name, param in model.named_parameters()
        if param.requires_grad and param.dim() > 1 and name.rsplit(".", 1)[-1] == "weight"
    ]


def weight_perturbation(
    model: nn.Module, loss: Callable[[], Tensor], gamma: float, *, keep: Mapping[str, Tensor] | None = None
) -> dict[str, Tensor]:
    """Per perturbed weight (:func:`perturbed_weights`): ``gamma * ||w|| * g / (||g|| + 1e-20)``,
    ``g`` the gradient of ``loss()`` (a scalar computed from ``model``) with respect to ``w``.

    ``keep``: weight name -> boolean mask of the weights a pruned network keeps; ``g`` is zero
    elsewhere, so pruned weights stay zero under the perturbation.

    No parameter's ``.grad`` changes; buffers (batch-norm statistics) are restored after
    ``loss()`` ran. A weight the loss does not reach gets a zero perturbation.
    """
    weights = perturbed_weights(model)
    buffers = [(buffer, buffer.clone()) for buffer in model.buffers()]
    try:
        value = loss()
        grads = torch.autograd.grad(value, [w for _, w in weights], allow_unused=True)
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
    perturbation = {}
    with torch.no_grad():
        for (name, w), g in zip(weights, grads):
            if g is not None and keep is not None and name in keep:
                g = g * keep[name]
            if g is None:
                perturbation[name] = torch.zeros_like(w)
            else:
                perturbation[name] = g * (gamma * w.norm() / (g.norm() + _EPS))
    return perturbation


@contextmanager
def awp_perturbation(
    model: nn.Module, loss: Callable[[], Tensor], gamma: float, *, keep: Mapping[str, Tensor] | None = None
) -> Iterator[None]:
    """Within the block, ``model``'s weights carry the :func:`weight_perturbation` of ``loss``
    (``keep`` as there); on exit every perturbed weight is set back to its exact original
    value. ``gamma == 0`` does nothing."""
    if gamma == 0.0:
        yield
        return
    perturbation = weight_perturbation(model, loss, gamma, keep=keep)
    params = dict(perturbed_weights(model))
    originals = {name: params[name].detach().clone() for name in perturbation}
    with torch.no_grad():
        for name, delta in perturbation.items():
            params[name].add_(delta)
    try:
        yield
    finally:
        with torch.no_grad():
            for name, original in originals.items():
                params[name].copy_(original)
