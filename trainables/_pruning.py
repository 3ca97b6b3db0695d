"""Magnitude-pruning masks and sparsity schedules.

Prunable parameters are the weights of every layer of a ``PRUNABLE_LAYERS`` type in a model (not
biases, not batch norm), named as in ``model.named_parameters()`` and kept in the order of
``model.named_modules()``. Sparsity is the fraction of prunable weights that are zero, in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real

import torch
from torch import Tensor, nn

from robnas.spaces._sparsity import SPARSITY_GRANULARITIES as GRANULARITIES
from robnas.spaces._sparsity import SPARSITY_SCHEDULES as SCHEDULES

#: Layers whose weights count as prunable, here and in the zero-cost proxies
#: (``robnas.search.proxies``). Convolutions of any dimension and linear layers: the layers
#: magnitude pruning and pruning-at-init scores (SNIP, GraSP, SynFlow) work on, with output
#: channels along dim 0 for ``channel`` granularity. NB201 networks hold only Conv2d and Linear,
#: so for them this is the narrower set; proxies also score user models with 1-D or 3-D
#: convolutions, and masks and proxies must agree on which weights exist.
PRUNABLE_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_weights(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, weight)`` of every ``PRUNABLE_LAYERS`` layer, in ``named_modules()`` order."""
    return [
        (f"{name}.weight" if name else "weight", module.weight)
        for name, module in model.named_modules()
        if isinstance(module, PRUNABLE_LAYERS)
    ]


def measured_sparsity(model: nn.Module) -> float:
    """Fraction of prunable weights that are exactly zero (measured on the weights, not masks)."""
    weights = [w for _, w in prunable_weights(model)]
    total = sum(w.numel() for w in weights)
    if total == 0:
        return 0.0
    zeros = sum(int((w.detach() == 0).sum()) for w in weights)
    return zeros / total


def _check_sparsity(sparsity: float) -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, Real) or not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be a number in [0, 1], got {sparsity!r}")
    return float(sparsity)


def scheduled_sparsity(schedule: str, target: float, epoch: int, max_epochs: int) -> float:
    """Sparsity to prune to at the START of ``epoch`` (0-based) of a run of ``max_epochs`` epochs.

    ``"none"``: 0. ``"oneshot"``, ``"set"``, ``"rigl"``: ``target`` from epoch 0 (pruning at
    initialisation; the dynamic schedules then move the kept weights, see ``_dynamic_sparsity``).
    ``"gradual"``: the cubic schedule of Zhu & Gupta 2017 with time in epochs,
    ``s_t = target * (1 - (1 - t / n) ** 3)`` with ``t = min(epoch, n)`` and ``n = max_epochs - 1``,
    so epoch 0 trains dense and the last epoch trains at ``target``. A one-epoch run (``n = 0``)
    is all last epoch: it trains at ``target``, as ``"oneshot"``.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown sparsity schedule {schedule!r}; allowed: {', '.join(SCHEDULES)}")
    target = _check_sparsity(target)
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, Integral) or max_epochs < 1:
        raise ValueError(f"max_epochs must be an integer >= 1, got {max_epochs!r}")
    if isinstance(epoch, bool) or not isinstance(epoch, Integral) or epoch < 0:
        raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
    if schedule == "none":
        return 0.0
    if schedule != "gradual" or max_epochs == 1:
        return target
    n = max_epochs - 1
    t = min(epoch, n)
    return target * (1.0 - (1.0 - t / n) ** 3)


class MaskSet:
    """One boolean keep-mask per prunable weight (``True`` = kept), keyed by parameter name.

    Masks have the weight's shape; with ``granularity="channel"`` they keep or drop whole output
    channels (convolution filters, Linear output rows). ``prune_to`` only shrinks them: a pruned
    weight never returns, unless a dynamic schedule (``DynamicSparsity``) grows it back.
    """

    def __init__(self, masks: Mapping[str, Tensor], granularity: str = "unstructured") -> None:
        if granularity not in GRANULARITIES:
            raise ValueError(
                f"unknown granularity {granularity!r}; allowed: {', '.join(GRANULARITIES)}"
            )
        self.granularity = granularity
        self.masks: dict[str, Tensor] = {name: mask.to(torch.bool) for name, mask in masks.items()}

    @classmethod
    def for_model(cls, model: nn.Module, granularity: str = "unstructured") -> MaskSet:
        """All-ones masks for every prunable weight of ``model``."""
        masks = {name: torch.ones_like(w, dtype=torch.bool) for name, w in prunable_weights(model)}
        return cls(masks, granularity)

    @property
    def sparsity(self) -> float:
        """Fraction of masked-out entries over all masks (the masks' sparsity, not the weights')."""
        total = sum(m.numel() for m in self.masks.values())
        return 0.0 if total == 0 else sum(int((~m).sum()) for m in self.masks.values()) / total

    def _weights(self, model: nn.Module) -> list[tuple[Tensor, nn.Parameter]]:
        return [(self.masks[name], weight) for name, weight in self.named_weights(model)]

    def named_weights(self, model: nn.Module) -> list[tuple[str, nn.Parameter]]:
        """``(name, weight)`` of ``model`` for every mask, in the masks' order."""
        try:
            return [(name, model.get_parameter(name)) for name in self.masks]
        except AttributeError as err:
            raise ValueError(f"model does not match the masks: {err}") from None

    @torch.no_grad()
    def prune_to(self, model: nn.Module, sparsity: float) -> None:
        """Prune every layer to ``sparsity`` by weight magnitude, then zero the pruned weights.

        Per layer, ``k = round(sparsity * units)`` units are pruned (halves round up), with
        ``units`` = weights (unstructured, smallest ``|w|``) or output channels (channel,
        smallest L1 norm). At least one unit per layer survives. Units pruned earlier stay
        pruned and count towards ``k``; ties go to the lower index.
        """
        sparsity = _check_sparsity(sparsity)
        for name, (mask, weight) in zip(list(self.masks), self._weights(model)):
            channel = self.granularity == "channel"
            if channel:
                scores = weight.detach().abs().flatten(1).sum(dim=1)
                keep = mask.flatten(1).any(dim=1)
            else:
                scores = weight.detach().abs().flatten()
                keep = mask.flatten()
            units = scores.numel()
            k = min(math.floor(sparsity * units + 0.5), units - 1)
            order = torch.argsort(scores.masked_fill(~keep, -1.0), stable=True)
            keep = keep.clone()
            keep[order[:k]] = False
            if channel:
                keep = keep.view(-1, *([1] * (weight.dim() - 1))).expand_as(weight)
            self.masks[name] = keep.reshape(weight.shape).clone()
        self.apply(model)

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        """Zero the pruned weights in place (call after every optimiser step)."""
        for mask, weight in self._weights(model):
            weight.mul_(mask)

    def state_dict(self) -> dict[str, Tensor]:
        """Masks as plain boolean tensors (``torch.load(..., weights_only=True)`` reads them)."""
        return {name: mask.clone() for name, mask in self.masks.items()}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Replace the masks with ``state`` (same names and shapes as the current masks)."""
        if set(state) != set(self.masks):
            missing = sorted(set(self.masks) - set(state))
            unknown = sorted(set(state) - set(self.masks))
            raise ValueError(f"mask names differ: missing {missing}, unknown {unknown}")
        for name, mask in self.masks.items():
            if tuple(state[name].shape) != tuple(mask.shape):
                shape = tuple(state[name].shape)
                raise ValueError(f"mask {name!r} has shape {shape}, expected {tuple(mask.shape)}")
        self.masks = {name: state[name].to(device=mask.device, dtype=torch.bool)
                      for name, mask in self.masks.items()}
