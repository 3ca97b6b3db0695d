"""FGSM with a random start (FGSM-RS), Wong, Rice & Kolter 2020, "Fast is better than free".

Same calling contract as ``pgd`` (see ``_pgd``): images in [0, 1], budgets as fractions of 1,
eval mode during generation with every submodule's mode restored, input gradients only,
randomness from the explicit generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._pgd import attack_mode, check_attack_args, input_gradient, project, require_generator, uniform_noise


def fgsm_rs(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float = 8 / 255,
    step_size: float | None = None,
    generator: torch.Generator,
) -> Tensor:
    """One signed-gradient step of ``step_size`` from a uniform start in the eps-ball.

    ``step_size`` defaults to ``1.25 * eps`` (the paper's alpha = 10/255 for eps = 8/255). The
    start ``x + U[-eps, eps]`` is clamped to [0, 1]; the result is projected onto the eps-ball
    and [0, 1]. Returns detached adversarial images, shape of ``x``.
    """
    alpha = 1.25 * eps if step_size is None else step_size
    check_attack_args("fgsm_rs", eps=eps, step_size=alpha)
    x = x.detach()
    noise = uniform_noise(x, eps, require_generator(generator, "fgsm_rs"))
    x_adv = (x + noise).clamp_(0.0, 1.0)
    with attack_mode(model):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y, reduction="sum")
        grad = input_gradient(loss, x_adv)
    return project(x_adv.detach() + alpha * grad.sign(), x, eps)
