"""The adversarial-training attack of a trial (budgets in units of 1/255)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

from robnas.spaces._checks import ConfigError, check_choice, check_float, check_int, check_values
from robnas.spaces._defaults import DATASET_DEFAULTS

__all__ = ["ATTACK_METHODS", "MAX_EPS", "AttackConfig", "attack_space", "budget_fraction", "check_budget"]

#: ``pgd``: Madry et al.; ``fgsm_rs``: FGSM from a random start (Wong et al.);
#: ``trades``: Zhang et al.; ``none``: standard (clean) training.
ATTACK_METHODS: tuple[str, ...] = ("pgd", "fgsm_rs", "trades", "none")
#: Largest meaningful budget: the whole pixel range, in units of 1/255.
MAX_EPS = 255.0
_DIGITS = DATASET_DEFAULTS["digits"]


def budget_fraction(value: Any, *, name: str = "eps") -> float:
    """An eps or step size in units of 1/255 (``8.0``) as a fraction of the [0, 1] pixel range
    (``8 / 255``), the unit attacks on image tensors take.

    The one place where config units become tensor units. Raises ``ValueError`` naming ``name``
    when ``value`` is not a number >= 0.
    """
    if isinstance(value, bool) or not isinstance(value, Real) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0 in units of 1/255, got {value!r}")
    return float(value) / MAX_EPS


def check_budget(owner: str, eps: Any, steps: Any, step_size: Any) -> tuple[float, int, float]:
    """Validated ``(eps, steps, step_size)`` of a config, in units of 1/255: eps in [0, 255],
    steps >= 1, step_size in (0, 255]. (Attack functions check their tensor-unit arguments
    with ``robnas.trainables._pgd.check_attack_args``.)"""
    return (
        check_float(owner, "eps", eps, low=0.0, high=MAX_EPS),
        check_int(owner, "steps", steps, minimum=1),
        check_float(owner, "step_size", step_size, low=0.0, high=MAX_EPS, low_open=True),
    )


@dataclass(frozen=True)
class AttackConfig:
    """Attack used to craft training examples.

    Attributes:
        method: one of ``ATTACK_METHODS``.
        eps: L-inf budget in units of 1/255.
        steps: number of ascent steps (PGD, TRADES).
        step_size: size of one ascent step, in units of 1/255; ``None`` only with ``fgsm_rs``,
            for its own default (1.25 * eps, Wong et al.).
        trades_beta: weight of the TRADES robustness term (used by ``trades`` only).
    """

    method: str = "pgd"
    eps: float = _DIGITS["eps"]
    steps: int = _DIGITS["attack_steps"]
    step_size: float | None = _DIGITS["step_size"]
    trades_beta: float = 6.0

    def __post_init__(self) -> None:
        owner = "AttackConfig"
        method = check_choice(owner, "method", self.method, ATTACK_METHODS)
        if self.step_size is None and method != "fgsm_rs":
            raise ConfigError(owner, "step_size", f"may be None only with method 'fgsm_rs', got {method!r}")
        given_step = 1.0 if self.step_size is None else self.step_size
        eps, steps, step_size = check_budget(owner, self.eps, self.steps, given_step)
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "eps", eps)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "step_size", None if self.step_size is None else step_size)
        object.__setattr__(self, "trades_beta", check_float(owner, "trades_beta", self.trades_beta, low=0.0))


def attack_space(
    *,
    dataset: str = "digits",
    methods: Sequence[str] = ("pgd", "fgsm_rs", "trades"),
    eps: Sequence[float] | None = None,
    steps: Sequence[int] | None = None,
    step_sizes: Sequence[float] | None = None,
    trades_betas: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Ray Tune domains ``attack``, ``eps``, ``attack_steps``, ``step_size``, ``trades_beta``.

    Every domain is a choice; budgets left as ``None`` are not searched (each trial then takes
    its method's default for ``dataset``, see ``DATASET_DEFAULTS``), so by default only the
    training method is searched.
    """
    from ray import tune

    owner = "AttackConfig"
    if dataset not in DATASET_DEFAULTS:
        raise ValueError(f"unknown dataset {dataset!r}; known datasets: {', '.join(DATASET_DEFAULTS)}")
    space: dict[str, Any] = {
        "attack": tune.choice(
            [check_choice(owner, "method", m, ATTACK_METHODS) for m in check_values("methods", methods)]
        )
    }
    if eps is not None:
        space["eps"] = tune.choice(
            [check_float(owner, "eps", e, low=0.0, high=MAX_EPS) for e in check_values("eps", eps)]
        )
    if steps is not None:
        space["attack_steps"] = tune.choice(
            [check_int(owner, "steps", s, minimum=1) for s in check_values("steps", steps)]
        )
    if step_sizes is not None:
        space["step_size"] = tune.choice([
            check_float(owner, "step_size", s, low=0.0, high=MAX_EPS, low_open=True)
            for s in check_values("step_sizes", step_sizes)
        ])
    if trades_betas is not None:
        space["trades_beta"] = tune.choice(
            [check_float(owner, "trades_beta", b, low=0.0) for b in check_values("trades_betas", trades_betas)]
        )
    return space
