"""Catastrophic overfitting of fast adversarial training (Wong, Rice & Kolter 2020, "Fast is
better than free", section 5.2; reference code: locuslab/fast_adversarial, ``--early-stop``).

A network trained with single-step examples can suddenly lose its robustness to multi-step
attacks while its accuracy against the single-step attack it trains on climbs. As the paper
does, the check measures PGD accuracy on one small fixed batch of training images (5 steps of
2/255 at 8/255 in the reference; here the trial's eps with step eps / 4) and flags the epoch in
which it drops by more than 0.2 from the previous measure. Departure: the flag also requires
the batch's FGSM accuracy (one step of eps from the clean image) to rise over the same epoch,
the other half of the symptom, so that an epoch whose learning rate merely destroys all
accuracy is not called overfitting.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from ._pgd import attack_mode, ascent_step, pgd

__all__ = ["OVERFIT_DROP", "PROBE_IMAGES", "OverfitCheck", "ProbeAccuracy", "is_catastrophic", "probe_accuracy"]

#: Training images in the fixed batch (the reference's first training batch holds 128).
PROBE_IMAGES = 128
#: Fall of PGD accuracy (a fraction) that counts as catastrophic within an epoch (the reference's 0.2).
OVERFIT_DROP = 0.2
#: PGD steps of the check (the reference's 5).
PROBE_STEPS = 5


class ProbeAccuracy(NamedTuple):
    """Accuracy (fraction in [0, 1]) of the fixed batch under PGD and under FGSM."""

    pgd: float
    fgsm: float


def probe_accuracy(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, seed: int = 0) -> ProbeAccuracy:
    """:class:`ProbeAccuracy` of ``model`` on ``x`` (N, C, H, W) in [0, 1], labels ``y`` (N,).

    ``eps`` is a fraction of 1. PGD: ``PROBE_STEPS`` steps of ``eps / 4`` from a uniform random
    start drawn from a CPU generator seeded with ``seed`` (so the measure is the same every
    time for the same weights); FGSM: one step of ``eps`` from ``x``. Eval mode; the model's
    modes are restored and no parameter gradient is created.
    """
    generator = torch.Generator().manual_seed(seed)
    x_pgd = pgd(model, x, y, eps=eps, step_size=eps / 4, steps=PROBE_STEPS, random_start=True, generator=generator)
    with attack_mode(model):
        x_fgsm, _ = ascent_step(model, x, x, y, eps=eps, step_size=eps)
        with torch.no_grad():
            pgd_correct = (model(x_pgd).argmax(dim=1) == y).float().mean()
            fgsm_correct = (model(x_fgsm).argmax(dim=1) == y).float().mean()
    return ProbeAccuracy(float(pgd_correct), float(fgsm_correct))


def is_catastrophic(before: ProbeAccuracy, after: ProbeAccuracy, *, drop: float = OVERFIT_DROP) -> bool:
    """Whether an epoch that took the probe from ``before`` to ``after`` overfitted
    catastrophically: PGD accuracy fell by more than ``drop`` while FGSM accuracy rose."""
    return before.pgd - after.pgd > drop and after.fgsm > before.fgsm


class OverfitCheck:
    """The check of one trial: measures the probe batch before the first epoch and after every
    epoch, and remembers whether any epoch overfitted catastrophically.

    Args:
        x, y: the fixed probe batch (the first ``PROBE_IMAGES`` training images and labels).
        eps: the trial's training budget, a fraction of 1.
        seed: seed of the PGD random start.
    """

    def __init__(self, x: Tensor, y: Tensor, *, eps: float, seed: int = 0) -> None:
        self.x, self.y = x[:PROBE_IMAGES], y[:PROBE_IMAGES]
        self.eps, self.seed = eps, seed
        #: The last measure, ``None`` before the first.
        self.last: ProbeAccuracy | None = None
        #: Whether an epoch so far overfitted catastrophically.
        self.detected = False

    def start(self, model: nn.Module) -> None:
        """Measure the untrained baseline (once; a restored check keeps its own)."""
        if self.last is None:
            self.last = probe_accuracy(model, self.x, self.y, eps=self.eps, seed=self.seed)

    def after_epoch(self, model: nn.Module) -> ProbeAccuracy:
        """Measure, compare with the previous measure and return the new one."""
        self.start(model)
        current = probe_accuracy(model, self.x, self.y, eps=self.eps, seed=self.seed)
        self.detected = self.detected or is_catastrophic(self.last, current)
        self.last = current
        return current

    def state_dict(self) -> dict[str, object]:
        return {"last": None if self.last is None else list(self.last), "detected": self.detected}

    def load_state_dict(self, state: dict[str, object]) -> None:
        last = state["last"]
        self.last = None if last is None else ProbeAccuracy(*(float(v) for v in last))
        self.detected = bool(state["detected"])
