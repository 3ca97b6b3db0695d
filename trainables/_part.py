"""Pixel-reweighted adversarial training (PART), Zhang et al. 2024, "Improving accuracy-robustness
trade-off via pixel reweighted adversarial training" (reference code: github.com/JiachengZ01/PART).

After a warm-up of plain adversarial training, each batch's examples get a per-pixel budget:
``eps`` where the class activation map (Grad-CAM of the network's last stage, for the predicted
class, in eval mode) marks the pixel as important, ``eps_low`` elsewhere. Important, as in the
reference: the squared, upsampled CAM standardised over the image exceeds 1 (mean plus one
standard deviation). With PGD and FGSM-RS the attack starts uniformly in the full eps-ball, as
the reference's does, and every step projects onto the per-pixel budget. With TRADES (the
reference's PART-T, ``loss/part_trades.py``) the KL attack of TRADES starts at ``x + 0.001 *
N(0, 1)`` and every step projects onto the per-pixel budget; the loss is TRADES' own.

Departures: the reference thresholds the CAM after colouring it with matplotlib's ``jet`` map
(so each colour channel gets its own mask); here the CAM itself, one mask for all channels. The
reference computes the budgets in a pass over a shuffled loader and uses them by batch index in
the next pass, so they belong to other images; here each batch's budgets are computed on its
own images just before its attack. The upsampling is bilinear (the reference: bicubic on a PIL
image). The TRADES start is projected onto the per-pixel budget (the reference projects from
the first step on).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robnas.spaces._attack import budget_fraction

from ._pgd import ascent_step, attack_mode, require_generator, uniform_noise
from ._trades import trades_examples

__all__ = ["class_activation_map", "part_examples", "part_training_examples", "pixel_budget"]


def class_activation_map(model: nn.Module, stage: nn.Module, x: Tensor) -> Tensor:
    """Grad-CAM of ``model`` on ``x`` (N, C, H, W) for each image's predicted class, shape (N, H, W),
    each map scaled to [0, 1] (all zeros where the map is flat).

    ``stage``: the submodule whose output (N, K, h, w) the map is taken from (the last stage).
    Each channel is weighted by the spatial mean of the class score's gradient; the ReLU of the
    weighted sum is upsampled bilinearly to (H, W). Eval mode; modes restored, no parameter
    gradient created.
    """
    captured: list[Tensor] = []
    hook = stage.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        with attack_mode(model):
            logits = model(x.detach().requires_grad_(True))  # so the stage's output always has a graph
            features = captured[-1]
            score = logits.gather(1, logits.argmax(dim=1, keepdim=True)).sum()
            (grad,) = torch.autograd.grad(score, features)
    finally:
        hook.remove()
    weights = grad.float().mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * features.detach().float()).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False).squeeze(1)
    low = cam.amin(dim=(1, 2), keepdim=True)
    span = cam.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(span > 0, (cam - low) / span.clamp_min(1e-12), torch.zeros_like(cam))


def pixel_budget(cam: Tensor, *, eps: float, eps_low: float) -> Tensor:
    """Per-pixel budget (N, 1, H, W) from CAMs (N, H, W): ``eps`` where ``cam ** 2``, standardised
    over its image, exceeds 1, else ``eps_low``. A flat map marks no pixel important."""
    weight = cam.float() ** 2
    mean = weight.mean(dim=(1, 2), keepdim=True)
    std = weight.std(dim=(1, 2), keepdim=True)
    important = (weight - mean) > std
    important &= std > 0
    return torch.where(important, eps, eps_low).unsqueeze(1).to(cam.dtype)


def part_examples(
    model: nn.Module, x: Tensor, y: Tensor, budget: Tensor, *, eps: float, step_size: float, steps: int,
    generator: torch.Generator,
) -> Tensor:
    """PGD (one step: FGSM-RS) inside a per-pixel ``budget`` (N, 1, H, W), fractions of 1.

    Start ``x + U[-eps, eps]`` clamped to [0, 1]; each of ``steps`` steps adds
    ``step_size * sign(grad)`` of the summed cross-entropy and projects onto ``|x' - x| <=
    budget`` and [0, 1]. Returns detached images, shape of ``x``.
    """
    x = x.detach()
    x_adv = (x + uniform_noise(x, eps, require_generator(generator, "part"))).clamp_(0.0, 1.0)
    budget = budget.to(x.dtype)
    with attack_mode(model):
        for _ in range(steps):
            x_adv, _ = ascent_step(model, x_adv, x, y, eps=budget, step_size=step_size)
    return x_adv.detach()


def part_training_examples(
    model: nn.Module, stage: nn.Module, x: Tensor, y: Tensor, attack: Any, *, eps_low: float,
    generator: torch.Generator,
) -> Tensor:
    """PART's examples of a training batch under ``attack`` (an ``AttackConfig``): budgets from
    the CAM of ``stage`` (:func:`class_activation_map`, :func:`pixel_budget` with ``eps_low *
    eps``), then the attack inside them: ``pgd`` and ``fgsm_rs`` by :func:`part_examples` with
    the attack's steps and step size (FGSM-RS: one step, 1.25 * eps unless given); ``trades`` by
    TRADES' KL attack (``trades_examples`` with the budget). ``x`` itself at eps 0 or for
    ``none``."""
    eps = budget_fraction(attack.eps, name="attack.eps")
    if eps == 0.0 or attack.method == "none":
        return x
    budget = pixel_budget(class_activation_map(model, stage, x), eps=eps, eps_low=eps_low * eps)
    if attack.method == "trades":
        return trades_examples(model, x, eps=eps, step_size=budget_fraction(attack.step_size), steps=attack.steps,
                               budget=budget, generator=generator)
    if attack.method == "fgsm_rs":
        step = 1.25 * eps if attack.step_size is None else budget_fraction(attack.step_size)
        steps = 1
    else:
        step, steps = budget_fraction(attack.step_size), attack.steps
    return part_examples(model, x, y, budget, eps=eps, step_size=step, steps=steps, generator=generator)
