"""Helpers shared by the zero-cost proxies: batches, masks, working copies, seeding.

Every proxy scores a private ``copy.deepcopy`` of the model, so the caller's parameters,
buffers (BN running statistics), ``.grad`` fields and train/eval mode are never touched;
only inside ``in_place(model)`` do the proxies work on ``model`` itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import math
import operator
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from robnas.trainables._pruning import PRUNABLE_LAYERS

Batch = tuple[torch.Tensor, torch.Tensor]
Masks = Mapping[str, torch.Tensor]

_IN_PLACE: contextvars.ContextVar[nn.Module | None] = contextvars.ContextVar("in_place", default=None)


def finite(value: float) -> float:
    """``value`` as a Python float, or ``nan`` if it is not finite.

    ``nan`` is the one sentinel of the package for "no score" (overflow, singular matrix,
    no gradient path): rankers impute it; an infinite value would break them.
    """
    value = float(value)
    return value if math.isfinite(value) else float("nan")


def unpack(batch: object, *, labels: bool = True) -> Batch:
    """Check that ``batch`` is ``(x, y)``: ``x`` float ``(N, ...)`` with ``N >= 2``, ``y`` long ``(N,)``."""
    if not isinstance(batch, Sequence) or len(batch) != 2:
        raise ValueError(f"batch must be a pair (x, y) of tensors, got {type(batch).__name__}")
    x, y = batch
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise ValueError("batch x must be a floating-point tensor of shape (N, ...)")
    if x.shape[0] < 2:
        raise ValueError(f"batch must hold at least 2 samples, got {x.shape[0]}")
    if labels and (
        not isinstance(y, torch.Tensor) or y.dtype != torch.long or tuple(y.shape) != (x.shape[0],)
    ):
        raise ValueError(f"batch y must be an int64 tensor of shape ({x.shape[0]},)")
    return x, y


def input_shape_of(batch: object, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    """The per-sample input shape ``(C, H, W)``: from ``input_shape`` or else from ``batch``."""
    if input_shape is not None:
        try:
            shape = tuple(operator.index(s) for s in input_shape)
        except TypeError:
            shape = ()
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"input_shape must be a sequence of positive ints, got {input_shape!r}")
        return shape
    if batch is None:
        raise ValueError("pass a batch (x, y) or input_shape=(C, H, W) to know the input size")
    x, _ = unpack(batch, labels=False)
    return tuple(x.shape[1:])


def logits_of(output: object) -> torch.Tensor:
    """The logits of a forward pass: the tensor itself, or the last item of a tuple output."""
    if isinstance(output, (tuple, list)):
        output = output[-1]
    if not isinstance(output, torch.Tensor):
        raise ValueError(f"model must return a tensor of logits, got {type(output).__name__}")
    return output


def check_masks(model: nn.Module, masks: Masks | None) -> dict[str, torch.Tensor]:
    """Validate ``masks`` (parameter name -> 0/1 or boolean keep-tensor of the parameter's shape).

    Returns the masks as float tensors keyed by name, in the model's parameter order.
    """
    if masks is None:
        return {}
    params = dict(model.named_parameters())
    unknown = sorted(set(masks) - set(params))
    if unknown:
        raise ValueError(f"masks name unknown parameters {unknown}; known: {sorted(params)[:8]}...")
    checked: dict[str, torch.Tensor] = {}
    for name, param in params.items():
        if name not in masks:
            continue
        mask = torch.as_tensor(masks[name])
        if tuple(mask.shape) != tuple(param.shape):
            raise ValueError(
                f"mask {name!r} has shape {tuple(mask.shape)}, parameter has {tuple(param.shape)}"
            )
        if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"mask {name!r} must hold only 0 and 1")
        checked[name] = mask.to(device=param.device, dtype=param.dtype)
    return checked


def working_copy(
    model: nn.Module,
    masks: Masks | None = None,
    *,
    train: bool,
    dtype: torch.dtype | None = None,
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A deep copy of ``model`` in train or eval mode, pruned weights set to exactly zero.

    All parameters of the copy require gradients and have no ``.grad``. Returns the copy and
    its checked masks (cast to ``dtype`` if given). Inside ``in_place(model)`` the "copy" is
    ``model`` itself, prepared in place.
    """
    checked = check_masks(model, masks)
    net = model if _IN_PLACE.get() is model else copy.deepcopy(model)
    if dtype is not None:
        net = net.to(dtype)
        checked = {name: m.to(dtype) for name, m in checked.items()}
    with torch.no_grad():
        for name, param in net.named_parameters():
            param.grad = None
            param.requires_grad_(True)
            if name in checked:
                param.mul_(checked[name])
    net.train(train)
    return net, checked


@contextlib.contextmanager
def in_place(model: nn.Module) -> Iterator[None]:
    """Let the proxies of a block work on ``model`` itself instead of deep copies of it.

    For a caller that owns a throwaway network: the proxies change it (mode, ``.grad``,
    BatchNorm statistics, and for ``synflow`` weights, dtype and BatchNorm), so the caller
    must order them so that none reads what an earlier one changed (``compute_proxies``).
    """
    token = _IN_PLACE.set(model)
    try:
        yield
    finally:
        _IN_PLACE.reset(token)




def prunable(net: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """``(name, weight)`` of every convolution and linear layer: the weights proxies score.

    Only weights that are ``nn.Parameter`` s count (a ``torch.nn.utils.prune``
    reparametrisation is not followed: zero the weights or pass ``masks`` instead).
    """
    found = []
    for module_name, module in net.named_modules():
        if isinstance(module, PRUNABLE_LAYERS) and isinstance(module.weight, nn.Parameter):
            found.append((f"{module_name}.weight" if module_name else "weight", module.weight))
    return found


def masked_grads(
    grads: Sequence[torch.Tensor | None],
    names: Sequence[str],
    masks: Mapping[str, torch.Tensor],
    like: Sequence[torch.Tensor],
) -> list[torch.Tensor]:
    """Gradients with ``None`` (no path to the output) replaced by zeros and masks applied."""
    out = []
    for grad, name, param in zip(grads, names, like):
        grad = torch.zeros_like(param) if grad is None else grad
        out.append(grad * masks[name] if name in masks else grad)
    return out


def weight_gradients(
    model: nn.Module,
    batch: object,
    masks: Masks | None,
    seed: int,
    *,
    create_graph: bool = False,
) -> tuple[tuple[str, ...], tuple[torch.Tensor, ...], tuple[torch.Tensor | None, ...], dict[str, torch.Tensor]]:
    """Gradients of the mean cross-entropy on ``batch = (x, y)`` w.r.t. every Conv/Linear
    weight of a train-mode working copy of ``model`` (masked weights zeroed).

    Returns ``(names, weights, grads, checked_masks)``; a gradient is ``None`` where the weight
    has no path to the output.
    """
    x, y = unpack(batch)
    net, checked = working_copy(model, masks, train=True)
    names, weights = zip(*prunable(net))
    with seeded(seed):
        loss = F.cross_entropy(logits_of(net(x)), y)
    grads = torch.autograd.grad(loss, weights, create_graph=create_graph, allow_unused=True)
    return names, weights, grads, checked


def bypass_batchnorm(net: nn.Module) -> None:
    """Make every BatchNorm layer of ``net`` the identity (NASLib's ``bn=False`` copies)."""
    for module in net.modules():
        if isinstance(module, _BatchNorm):
            module.forward = _identity  # type: ignore[method-assign]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's CPU RNG seeded by ``seed`` and restored afterwards.

    Only stochastic layers (dropout) draw from it; the caller's RNG state is left as it was.
    """
    try:
        seed = operator.index(seed)
    except TypeError:
        raise ValueError(f"seed must be an int, got {seed!r}") from None
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def hooked_forward(
    net: nn.Module, x: torch.Tensor, modules: Sequence[nn.Module], on_output, *, seed: int = 0
) -> None:
    """One forward pass of ``net`` on ``x`` without gradients, RNG seeded by ``seed``, with the
    forward hook ``on_output(module, inputs, output)`` on each of ``modules`` (removed after)."""
    handles = [module.register_forward_hook(on_output) for module in modules]
    try:
        with torch.no_grad(), seeded(seed):
            net(x)
    finally:
        for handle in handles:
            handle.remove()
