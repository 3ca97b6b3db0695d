"""Adversarial training loss and robustness evaluation, driven by the attack configs.

``AttackConfig`` and ``EvalConfig`` (``robnas.spaces``) are read by attribute only. Their
``eps`` and ``step_size`` are in units of 1/255 (``8.0`` means 8/255); ``robnas.spaces.budget_fraction``
converts them to the fractions the attack functions take.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robnas.spaces._attack import ATTACK_METHODS, budget_fraction
from robnas.spaces._evaluation import EVAL_SCHEDULES

from ._fgsm_rs import fgsm_rs
from ._pgd import attack_mode, pgd, uniform_noise
from ._pgd_eval import pgd_broken, step_losses
from ._trades import trades_examples, trades_objective


def training_loss(
    model: nn.Module, x: Tensor, y: Tensor, attack: Any, generator: torch.Generator
) -> Tensor:
    """Scalar training loss for one batch under ``attack`` (an ``AttackConfig``).

    ``"none"``: cross-entropy on ``x``. ``"pgd"``: cross-entropy on PGD examples
    (``attack.eps``, ``attack.step_size``, ``attack.steps``, random start). ``"fgsm_rs"``:
    cross-entropy on FGSM-RS examples (``attack.step_size``; ``None`` means 1.25 * eps).
    ``"trades"``: TRADES loss with ``beta = attack.trades_beta``. With ``attack.eps == 0`` every
    method is plain clean cross-entropy and no attack runs. Attacks run in eval mode; the loss
    forward pass runs in the model's current mode. Call ``loss.backward()`` on the result.
    """
    x_adv = training_examples(model, x, y, attack, generator)
    return batch_loss(model, x, x_adv, y, attack)


def training_examples(
    model: nn.Module, x: Tensor, y: Tensor, attack: Any, generator: torch.Generator
) -> Tensor:
    """The examples ``training_loss`` trains on, detached, shape of ``x``: the attack's (see
    there), or ``x`` itself for ``"none"`` and ``eps == 0``."""
    method = attack.method
    if method not in ATTACK_METHODS:
        raise ValueError(f"unknown attack method {method!r}; allowed: {', '.join(ATTACK_METHODS)}")
    if method == "none":
        return x
    eps = budget_fraction(attack.eps, name="attack.eps")
    if eps == 0.0:
        return x
    step_size = attack.step_size
    if step_size is not None or method != "fgsm_rs":  # None: fgsm_rs's own default, 1.25 * eps
        step_size = budget_fraction(step_size, name="attack.step_size")
    if method == "pgd":
        return pgd(model, x, y, eps=eps, step_size=step_size, steps=attack.steps,
                   random_start=True, generator=generator)
    if method == "fgsm_rs":
        return fgsm_rs(model, x, y, eps=eps, step_size=step_size, generator=generator)
    return trades_examples(model, x, eps=eps, step_size=step_size, steps=attack.steps, generator=generator)


def batch_loss(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, attack: Any) -> Tensor:
    """Scalar loss of one batch given its ``training_examples``, in the model's current mode:
    the TRADES objective of ``(x, x_adv)`` for ``"trades"`` with eps > 0, else cross-entropy
    on ``x_adv``."""
    if attack.method == "trades" and x_adv is not x:
        return trades_objective(model, x, x_adv, y, beta=float(attack.trades_beta))
    return F.cross_entropy(model(x_adv), y)


def evaluate_robustness(
    model: nn.Module, x: Tensor, y: Tensor, evaluation: Any, *, batch_size: int = 500
) -> tuple[float, float]:
    """``(clean_acc, robust_acc)``, fractions in [0, 1], on the first ``evaluation.max_images``
    (``0`` means all of ``x``); robust as :func:`pgd_correct` counts it."""
    max_images = evaluation.max_images
    if isinstance(max_images, bool) or not isinstance(max_images, Integral) or max_images < 0:
        raise ValueError(
            f"evaluation.max_images must be an integer >= 0 (0 = all), got {max_images!r}"
        )
    if len(x) != len(y):
        raise ValueError(f"need as many labels as images, got {len(x)} images and {len(y)} labels")
    n = len(x) if max_images == 0 else min(int(max_images), len(x))
    clean, robust = pgd_correct(model, x[:n], y[:n], evaluation, batch_size=batch_size)
    return int(clean.sum()) / n, int(robust.sum()) / n


def pgd_correct(
    model: nn.Module, x: Tensor, y: Tensor, evaluation: Any, *, batch_size: int = 500
) -> tuple[Tensor, Tensor]:
    """Per image of ``x`` (N, C, H, W) in [0, 1]: ``(correct clean, robust)``, two bool tensors (N,).

    An image counts as robust only if it is classified correctly clean and at every iterate
    (uniform random start included) of each of ``evaluation.restarts`` PGD runs
    (``evaluation.eps``, ``steps``, ``step_size`` in 1/255 units; the ascent's ``loss``,
    ``"ce"`` when the object has none; the step ``schedule``, ``"constant"`` when it has none); see ``robnas.trainables._pgd_eval.pgd_broken``. Images already broken, or wrong clean, are not
    attacked again. The random starts come from one CPU generator seeded with
    ``evaluation.seed``, drawn for every image restart after restart, batch after batch, so the
    same model, data, seed and ``batch_size`` give identical flags, and the first R restarts of
    a run with more are those of the run with R. The model runs in eval mode (its modes are
    restored afterwards); no parameter gradient is created. ``eps == 0`` gives the clean flags
    twice without attacking.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    restarts = getattr(evaluation, "restarts", 1)
    if isinstance(restarts, bool) or not isinstance(restarts, Integral) or restarts < 1:
        raise ValueError(f"evaluation.restarts must be an integer >= 1, got {restarts!r}")
    loss = getattr(evaluation, "loss", "ce")
    try:
        step_losses(loss, 0)
    except ValueError as error:
        raise ValueError(f"evaluation.loss: {error}") from None
    schedule = getattr(evaluation, "schedule", "constant")
    if schedule not in EVAL_SCHEDULES:
        raise ValueError(f"evaluation.schedule: unknown evaluation step schedule {schedule!r}; "
                         f"allowed: {', '.join(EVAL_SCHEDULES)}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"need as many labels as images (> 0), got {len(x)} images and {len(y)} labels"
        )
    n = len(x)
    eps = budget_fraction(evaluation.eps, name="evaluation.eps")
    step_size = budget_fraction(evaluation.step_size, name="evaluation.step_size")
    generator = torch.Generator().manual_seed(int(evaluation.seed))  # CPU: same starts anywhere
    batches = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    with attack_mode(model), torch.no_grad():
        correct = torch.cat([model(x[a:b]).argmax(dim=1) == y[a:b] for a, b in batches])
    robust = correct.clone()  # robust implies correct clean
    for _ in range(restarts if eps > 0.0 else 0):
        for a, b in batches:
            xb, yb = x[a:b], y[a:b]
            start = (xb + uniform_noise(xb, eps, generator)).clamp_(0.0, 1.0)  # drawn for all images
            alive = robust[a:b].nonzero().squeeze(1)
            if len(alive):
                broken = pgd_broken(model, xb[alive], yb[alive], start[alive],
                                    eps=eps, step_size=step_size, steps=evaluation.steps, loss=loss,
                                    schedule=schedule)
                robust[a + alive[broken]] = False
    return correct, robust
