"""A trial configuration as a fixed-length feature vector, for the surrogate ranker.

``encode_config(config)`` reads a flat config (the keys ``robnas.spaces.decode`` accepts, plus
the trainable's runtime keys such as ``score_weights``, which are skipped) and returns a float
array of length ``len(FEATURE_NAMES)``:

* every architecture family's features (``ArchFamily.feature_names``, in ``FAMILIES`` order),
  those of the trial's own family filled in, the others 0. NB201's: the canonical cell's
  (``robnas.spaces._cell_features``: one-hot ops, op counts, path statistics), so isomorphic
  cells get the same vector, then ``log2_width``, ``cells_per_stage``; resnet's: stem, block,
  stages, depth and log-width per stage, kernel, activation, SE ratio;
* sparsity: ``sparsity`` (target), ``sparsity_effective`` (0 when dense), one-hot schedule and
  granularity, and for an active dynamic schedule (else 0) ``sparsity_drop_fraction``,
  ``log2_update_every`` (optimiser steps) and ``sup_tickets`` (0 or 1);
* attack: one-hot method, ``eps``, ``attack_steps``, ``step_size`` (1/255 units; FGSM-RS's own
  1.25 * eps when not given), ``trades_beta`` (0 unless TRADES);
* ``family=<name>``: one-hot of the family.
* robust training: ``awp_gamma``, one-hot ``weight_averaging``, ``ema_decay`` (0 without
  EMA), ``wot_segments`` (0 without WOT), ``part`` (0 with clean training, where it is a
  no-op), ``part_eps_low`` (1 without PART: every pixel keeps eps), ``stop_on_overfit`` (0
  unless FGSM-RS, the one method that checks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from robnas.spaces._attack import ATTACK_METHODS
from robnas.spaces._cell_features import CELL_FEATURES, cell_features
from robnas.spaces._compose import TrialConfig, decode
from robnas.spaces._family import FAMILIES
from robnas.spaces._robust_training import WEIGHT_AVERAGING
from robnas.spaces._runtime import RUNTIME_KEYS
from robnas.spaces._sparsity import SPARSITY_GRANULARITIES, SPARSITY_SCHEDULES

__all__ = ["CELL_FEATURES", "FEATURE_NAMES", "cell_features", "decode_trial", "encode_config", "encode_trial"]

FEATURE_NAMES: tuple[str, ...] = (
    *(name for family in FAMILIES.values() for name in family.feature_names),
    "sparsity",
    "sparsity_effective",
    *(f"schedule={s}" for s in SPARSITY_SCHEDULES),
    *(f"granularity={g}" for g in SPARSITY_GRANULARITIES),
    "sparsity_drop_fraction",
    "log2_update_every",
    "sup_tickets",
    *(f"attack={m}" for m in ATTACK_METHODS),
    "eps",
    "attack_steps",
    "step_size",
    "trades_beta",
    *(f"family={name}" for name in FAMILIES),
    "awp_gamma",
    *(f"weight_averaging={w}" for w in WEIGHT_AVERAGING),
    "ema_decay",
    "wot_segments",
    "part",
    "part_eps_low",
    "stop_on_overfit",
)

if len(set(FEATURE_NAMES)) != len(FEATURE_NAMES):  # pragma: no cover
    raise RuntimeError("two features share a name")


def decode_trial(config: Mapping[str, Any]) -> TrialConfig:
    """``decode`` of a Tune config, skipping the runtime keys (``RUNTIME_KEYS``)."""
    return decode(config, ignore=RUNTIME_KEYS)


def _architecture(trial: TrialConfig) -> list[float]:
    """Every family's features: the trial's family's computed, the others 0."""
    values: list[float] = []
    for name, family in FAMILIES.items():
        if name == trial.family:
            values += family.features(trial.network)
        else:
            values += [0.0] * len(family.feature_names)
    return values


def encode_trial(trial: TrialConfig) -> np.ndarray:
    """Float64 array ``(len(FEATURE_NAMES),)`` of a decoded trial."""
    sparsity, attack, robust = trial.sparsity, trial.attack, trial.robust
    step_size = 1.25 * attack.eps if attack.step_size is None else attack.step_size
    part = robust.part and attack.method != "none"
    values = [
        *_architecture(trial),
        sparsity.target,
        sparsity.target if sparsity.active else 0.0,
        *(float(sparsity.schedule == s) for s in SPARSITY_SCHEDULES),
        *(float(sparsity.granularity == g) for g in SPARSITY_GRANULARITIES),
        sparsity.drop_fraction if sparsity.dynamic else 0.0,
        math.log2(sparsity.update_every) if sparsity.dynamic else 0.0,
        float(sparsity.dynamic and sparsity.sup_tickets),
        *(float(attack.method == m) for m in ATTACK_METHODS),
        attack.eps,
        float(attack.steps),
        step_size,
        attack.trades_beta if attack.method == "trades" else 0.0,
        *(float(trial.family == name) for name in FAMILIES),
        robust.awp_gamma,
        *(float(robust.weight_averaging == w) for w in WEIGHT_AVERAGING),
        robust.ema_decay if robust.weight_averaging == "ema" else 0.0,
        float(robust.wot_segments) if robust.weight_averaging == "wot" else 0.0,
        float(part),
        robust.part_eps_low if part else 1.0,
        float(robust.stop_on_overfit and attack.method == "fgsm_rs"),
    ]
    return np.asarray(values, dtype=float)


def encode_config(config: Mapping[str, Any]) -> np.ndarray:
    """Float64 array ``(len(FEATURE_NAMES),)`` of a flat config; ``ValueError`` on a bad one."""
    return encode_trial(decode_trial(config))
