"""Projected gradient descent (PGD), L-inf, as in Madry et al. 2018.

Calling contract shared by every attack in this package (``pgd``, ``fgsm_rs``, ``trades_loss``):

- images are float tensors in [0, 1], shape (N, C, H, W); labels are int64, shape (N,);
- ``eps`` and ``step_size`` are fractions of 1 (``8/255``), not units of 1/255;
- adversarial examples are generated with the model in eval mode (batch norm uses its running
  statistics and does not update them); the train/eval flag of every submodule is restored
  afterwards, so a training forward pass that follows runs in the caller's mode;
- gradients are taken with ``torch.autograd.grad`` with respect to the input only, so no
  parameter ``.grad`` is created or changed;
- every random draw comes from the ``torch.Generator`` passed in, never from the global RNG.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robnas.spaces._checks import check_float, check_int


def input_gradient(loss: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """d loss / d x_adv, zeros when the output does not depend on the input (a cell whose
    output is disconnected from its input)."""
    if not loss.requires_grad:
        return torch.zeros_like(x_adv)
    (grad,) = torch.autograd.grad(loss, x_adv, allow_unused=True)
    return torch.zeros_like(x_adv) if grad is None else grad


@contextmanager
def attack_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode with gradients enabled; restore every submodule's mode on exit."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.enable_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


def check_attack_args(attack: str, *, eps: float, step_size: float | None = None, steps: int | None = None) -> None:
    """Raise ``ValueError`` for an attack call's negative budget or step count.

    Tensor units: ``eps`` and ``step_size`` are fractions of 1 (``8/255``), and 0 steps or a
    0 budget are allowed here. A config's budget, in units of 1/255, is checked once by
    ``robnas.spaces._attack.check_budget``; both use the checks of ``robnas.spaces._checks``.
    """
    check_float(attack, "eps (a fraction of 1, e.g. 8/255)", eps, low=0.0)
    if step_size is not None:
        check_float(attack, "step_size (a fraction of 1, e.g. 2/255)", step_size, low=0.0)
    if steps is not None and not isinstance(steps, int):  # an integral float would break range()
        raise ValueError(f"{attack}.steps must be an integer >= 0, got {steps!r}")
    if steps is not None:
        check_int(attack, "steps", steps, minimum=0)


def require_generator(generator: torch.Generator | None, attack: str) -> torch.Generator:
    """Return ``generator`` or raise: random starts never fall back on the global RNG."""
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            f"{attack} draws a random start: pass generator=torch.Generator(), got {generator!r}"
        )
    return generator


def uniform_noise(x: Tensor, eps: float, generator: torch.Generator) -> Tensor:
    """Noise uniform in [-eps, eps], shape and dtype of ``x``, drawn from ``generator``."""
    u = torch.rand(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
    return (2.0 * u - 1.0).mul_(eps).to(x.device)


def project(x_adv: Tensor, x: Tensor, eps: float | Tensor) -> Tensor:
    """Clamp ``x_adv`` into the L-inf ball of radius ``eps`` around ``x`` and into [0, 1];
    a tensor ``eps`` gives per-pixel radii (shape broadcastable to ``x``)."""
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp_(0.0, 1.0)


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float = 8 / 255,
    step_size: float = 2 / 255,
    steps: int = 7,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """L-inf PGD on the cross-entropy loss; returns detached adversarial images, shape of ``x``.

    Start: ``x`` plus noise uniform in [-eps, eps] (``random_start``), clamped to [0, 1]. Each step
    adds ``step_size * sign(grad)`` and projects onto the eps-ball and [0, 1]. The loss is summed
    over the batch, so each image's step depends on that image only (eval-mode batch norm).
    Defaults are Madry et al.'s CIFAR-10 training attack (8/255, 2/255, 7 steps).
    """
    check_attack_args("pgd", eps=eps, step_size=step_size, steps=steps)
    x = x.detach()
    if random_start:
        noise = uniform_noise(x, eps, require_generator(generator, "pgd with random_start=True"))
        x_adv = (x + noise).clamp_(0.0, 1.0)
    else:
        x_adv = x.clone()
    with attack_mode(model):
        for _ in range(steps):
            x_adv, _ = ascent_step(model, x_adv, x, y, eps=eps, step_size=step_size)
    return x_adv.detach()


def cross_entropy_sum(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy of ``logits`` (N, classes) against ``y`` (N,), summed over the batch."""
    return F.cross_entropy(logits, y, reduction="sum")


def ascent_step(
    model: nn.Module, x_adv: Tensor, x: Tensor, y: Tensor, *, eps: float, step_size: float,
    loss: Callable[[Tensor, Tensor], Tensor] = cross_entropy_sum,
) -> tuple[Tensor, Tensor]:
    """One PGD step from ``x_adv``: ``(next iterate, detached logits of x_adv (N, classes))``.

    The next iterate is ``x_adv + step_size * sign(grad)`` projected onto the eps-ball around
    ``x`` and [0, 1], ``grad`` the input gradient of ``loss(logits, y)`` (a scalar summed over
    the batch, so each image's step depends on that image only). Call inside ``attack_mode(model)``.
    """
    x_adv = x_adv.detach().requires_grad_(True)
    logits = model(x_adv)
    grad = input_gradient(loss(logits, y), x_adv)
    return project(x_adv.detach() + step_size * grad.sign(), x, eps), logits.detach()
