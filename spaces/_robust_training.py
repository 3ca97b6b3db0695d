"""Robust-training methods layered on a trial's attack: weight perturbation, weight averaging
and the catastrophic-overfitting stop of fast adversarial training.

Every method is off by default, so a config (or an old record) without these keys trains as
plain adversarial training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from robnas.spaces._checks import check_bool, check_choice, check_float, check_int, check_values

__all__ = ["WEIGHT_AVERAGING", "RobustTrainingConfig", "robust_training_space"]

#: ``none``: evaluate the trained weights; ``ema``: an exponential moving average of them
#: (Rebuffi et al. 2021, "Fixing data augmentation to improve adversarial robustness");
#: ``wot``: weighted optimisation trajectories (Huang et al. 2023), see ``robnas.trainables._wot``.
WEIGHT_AVERAGING: tuple[str, ...] = ("none", "ema", "wot")
#: Largest AWP size: a perturbation as large as the layer's own weights.
MAX_AWP_GAMMA = 1.0
#: AWP sizes the ``training`` space part chooses from: off, TRADES-AWP's and AT-AWP's defaults.
DEFAULT_AWP_GAMMAS: tuple[float, ...] = (0.0, 0.005, 0.01)


@dataclass(frozen=True)
class RobustTrainingConfig:
    """Robust-training methods of a trial.

    Attributes:
        awp_gamma: size of the adversarial weight perturbation (Wu, Xia & Wang 2020, "Adversarial
            weight perturbation helps robust generalization") relative to each layer's weight
            norm, in [0, 1]; ``0`` is off. The paper uses 0.01 with PGD-AT and 0.005 with TRADES.
        weight_averaging: one of ``WEIGHT_AVERAGING``; with ``ema``, evaluation and the
            reported metrics use the averaged weights; with ``wot``, the trained weights are
            replaced by the reweighted trajectory once per ``wot_segments`` pieces.
        ema_decay: decay of the moving average per optimiser step, in [0, 1) (Rebuffi et al.:
            0.999), warmed up as ``min(ema_decay, (1 + t) / (10 + t))`` after t steps.
        wot_segments: pieces of trajectory WOT reweights at once (>= 1; the reference's 4),
            each a ``wot_segments``-th of an epoch, so one reweighting per epoch.
        part: pixel-reweighted adversarial training (Zhang et al. 2024, "Improving
            accuracy-robustness trade-off via pixel reweighted adversarial training"): after a
            warm-up of a quarter of the epochs, pixels the class activation map does not mark
            important get the budget ``part_eps_low * eps``, with every attack method (TRADES:
            its KL attack, as the reference's PART-T); a no-op with attack ``none``.
        part_eps_low: the unimportant pixels' budget as a fraction of eps, in [0, 1] (the
            paper: 7/255 of 8/255, 0.875).
        stop_on_overfit: a trial that detects catastrophic overfitting (see
            ``robnas.trainables._overfit``) stops after reporting it, instead of training on;
            only FGSM-RS trials check, so a no-op with every other attack.
    """

    awp_gamma: float = 0.0
    weight_averaging: str = "none"
    ema_decay: float = 0.999
    wot_segments: int = 4
    part: bool = False
    part_eps_low: float = 0.875
    stop_on_overfit: bool = False

    def __post_init__(self) -> None:
        owner = "RobustTrainingConfig"
        checked = {
            "awp_gamma": check_float(owner, "awp_gamma", self.awp_gamma, low=0.0, high=MAX_AWP_GAMMA),
            "weight_averaging": check_choice(owner, "weight_averaging", self.weight_averaging, WEIGHT_AVERAGING),
            "ema_decay": check_float(owner, "ema_decay", self.ema_decay, low=0.0, high=1.0, high_open=True),
            "wot_segments": check_int(owner, "wot_segments", self.wot_segments, minimum=1),
            "part": check_bool(owner, "part", self.part),
            "part_eps_low": check_float(owner, "part_eps_low", self.part_eps_low, low=0.0, high=1.0),
            "stop_on_overfit": check_bool(owner, "stop_on_overfit", self.stop_on_overfit),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)


def robust_training_space(
    *,
    dataset: str = "digits",
    awp_gammas: Sequence[float] = DEFAULT_AWP_GAMMAS,
    weight_averaging: Sequence[str] = WEIGHT_AVERAGING,
    ema_decays: Sequence[float] | None = None,
    part: Sequence[bool] = (False, True),
    stop_on_overfit: Sequence[bool] = (False, True),
) -> dict[str, Any]:
    """Ray Tune domains ``awp_gamma``, ``weight_averaging``, ``part`` and ``stop_on_overfit``
    (and ``ema_decay`` when ``ema_decays`` is given; otherwise every EMA trial takes 0.999).
    ``stop_on_overfit`` matters to FGSM-RS trials only and ``part`` to every attack but
    ``none``; elsewhere they are no-ops the deduplication ignores. ``dataset`` is accepted for
    the ``SPACE_PARTS`` signature; no default here depends on it."""
    from ray import tune

    owner = "RobustTrainingConfig"
    space: dict[str, Any] = {
        "awp_gamma": tune.choice([
            check_float(owner, "awp_gamma", g, low=0.0, high=MAX_AWP_GAMMA) for g in check_values("awp_gammas", awp_gammas)
        ]),
        "weight_averaging": tune.choice([
            check_choice(owner, "weight_averaging", w, WEIGHT_AVERAGING)
            for w in check_values("weight_averaging", weight_averaging)
        ]),
    }
    if ema_decays is not None:
        space["ema_decay"] = tune.choice([
            check_float(owner, "ema_decay", d, low=0.0, high=1.0, high_open=True)
            for d in check_values("ema_decays", ema_decays)
        ])
    space["part"] = tune.choice([check_bool(owner, "part", p) for p in check_values("part", part)])
    space["stop_on_overfit"] = tune.choice([
        check_bool(owner, "stop_on_overfit", s) for s in check_values("stop_on_overfit", stop_on_overfit)
    ])
    return space
