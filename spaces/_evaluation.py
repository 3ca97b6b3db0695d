"""The one fixed PGD attack that measures robust accuracy (budgets in units of 1/255)."""

from __future__ import annotations

from dataclasses import dataclass

from robnas.spaces._attack import check_budget
from robnas.spaces._checks import check_choice, check_int
from robnas.spaces._defaults import DATASET_DEFAULTS

__all__ = ["EVAL_LOSSES", "EVAL_SCHEDULES", "EvalConfig"]

#: Losses the evaluation PGD can ascend (``robnas.trainables._pgd_eval.step_losses``).
EVAL_LOSSES: tuple[str, ...] = ("ce", "margin", "ce+margin")
#: Step-size schedules of the evaluation PGD (``robnas.trainables._pgd_eval.pgd_broken``).
EVAL_SCHEDULES: tuple[str, ...] = ("constant", "cosine", "apgd")
_DIGITS = DATASET_DEFAULTS["digits"]


@dataclass(frozen=True)
class EvalConfig:
    """PGD evaluation of a trained network.

    Attributes:
        eps: L-inf budget in units of 1/255.
        steps: PGD steps (>= 1).
        step_size: size of one step, in units of 1/255.
        seed: seed of the random start and of the choice of evaluated images (>= 0).
        max_images: number of held-out images evaluated; 0 means all of them.
        restarts: PGD runs per image, each from a fresh random start (>= 1); an image is
            robust only if it is classified correctly clean and at every iterate of every run.
        loss: the loss the PGD ascent follows, one of ``EVAL_LOSSES``: ``ce`` (cross-entropy),
            ``margin`` (``max_{j != y} z_j - z_y`` on the logits) or ``ce+margin`` (the first
            half of each run's steps on cross-entropy, the rest on the margin); same cost.
        schedule: the step sizes, one of ``EVAL_SCHEDULES``: ``constant`` (``step_size`` every
            step), ``cosine`` (decaying from ``step_size`` to near 0) or ``apgd`` (APGD's momentum
            0.75 and step halving at checkpoints, first step ``step_size``); same cost.
    """

    eps: float = _DIGITS["eval_eps"]
    steps: int = _DIGITS["eval_steps"]
    step_size: float = _DIGITS["eval_step_size"]
    seed: int = 0
    max_images: int = _DIGITS["eval_images"]
    restarts: int = 1
    loss: str = _DIGITS["eval_loss"]
    schedule: str = _DIGITS["eval_schedule"]

    def __post_init__(self) -> None:
        owner = "EvalConfig"
        eps, steps, step_size = check_budget(owner, self.eps, self.steps, self.step_size)
        object.__setattr__(self, "eps", eps)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "step_size", step_size)
        object.__setattr__(self, "seed", check_int(owner, "seed", self.seed, minimum=0))
        object.__setattr__(self, "max_images", check_int(owner, "max_images", self.max_images, minimum=0))
        object.__setattr__(self, "restarts", check_int(owner, "restarts", self.restarts, minimum=1))
        object.__setattr__(self, "loss", check_choice(owner, "loss", self.loss, EVAL_LOSSES))
        object.__setattr__(self, "schedule", check_choice(owner, "schedule", self.schedule, EVAL_SCHEDULES))
