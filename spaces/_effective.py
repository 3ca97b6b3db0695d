"""``effective_key``: one string per network a trial trains, whatever keys cannot change it.

Two configurations train the same network when they differ only in keys the training ignores:
- the network up to its family's canonical form (an NB201 cell up to isomorphism);
- the sparsity schedule and granularity of a dense network (target 0, or schedule ``none``),
  and the drop fraction, update interval and ``sup_tickets`` of any but a dynamic schedule;
- the ascent steps of ``fgsm_rs`` (one step), the TRADES weight of every other method, and the
  whole budget (eps, steps, step size, TRADES weight) of clean training (``attack: none``);
- the EMA decay of a trial without EMA, WOT's pieces of a trial without WOT, PART's low
  budget of a trial without PART, PART itself with clean training (no attack to reweight),
  and the overfitting stop of a trial that does not train with FGSM-RS (the only method that
  checks for catastrophic overfitting).
Every other key counts, and a missing key counts as its default (per data set), so
``{"sparsity": 0}`` and ``{}`` are the same network. The searcher, the screening pool and the
analysis deduplicate on this key.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from typing import Any

from robnas.spaces._attack import AttackConfig
from robnas.spaces._compose import TrialConfig, decode, encode
from robnas.spaces._family import family_of
from robnas.spaces._keys import config_key
from robnas.spaces._robust_training import RobustTrainingConfig
from robnas.spaces._runtime import RUNTIME_KEYS
from robnas.spaces._sparsity import SparsityConfig

__all__ = ["effective_config", "effective_key"]


def effective_config(trial: TrialConfig) -> TrialConfig:
    """``trial`` with every field that cannot change the trained network set to its default
    (and the network in its family's canonical form)."""
    changes: dict[str, Any] = {"network": family_of(trial.network).canonical(trial.network)}
    if not trial.sparsity.active:
        changes["sparsity"] = SparsityConfig()
    elif not trial.sparsity.dynamic:
        unused = SparsityConfig()
        changes["sparsity"] = dataclasses.replace(
            trial.sparsity, drop_fraction=unused.drop_fraction, update_every=unused.update_every,
            sup_tickets=unused.sup_tickets)
    attack = trial.attack
    if attack.method == "none":
        changes["attack"] = dataclasses.replace(
            AttackConfig(method="none"), eps=0.0, steps=1, step_size=1.0, trades_beta=0.0)
    else:
        fields = {}
        if attack.method != "trades":
            fields["trades_beta"] = 0.0
        if attack.method == "fgsm_rs":
            fields["steps"] = 1
        changes["attack"] = dataclasses.replace(attack, **fields)
    robust, unused = trial.robust, {}
    if robust.weight_averaging != "ema":
        unused["ema_decay"] = RobustTrainingConfig.ema_decay
    if robust.weight_averaging != "wot":
        unused["wot_segments"] = RobustTrainingConfig.wot_segments
    if attack.method == "none":
        unused["part"] = RobustTrainingConfig.part
    if not robust.part or attack.method == "none":
        unused["part_eps_low"] = RobustTrainingConfig.part_eps_low
    if attack.method != "fgsm_rs":
        unused["stop_on_overfit"] = RobustTrainingConfig.stop_on_overfit
    changes["robust"] = dataclasses.replace(robust, **unused)
    return dataclasses.replace(trial, **changes)


def effective_key(config: Mapping[str, Any], constants: Mapping[str, Any] | None = None) -> str:
    """A string equal for two configurations that train the same network (see the module
    docstring). ``constants`` are the keys every trial of the search shares (they decide the
    defaults and whether, e.g., a searched schedule matters). A configuration that is not a
    trial config (e.g. a results table's row) falls back to :func:`config_key`."""
    merged = {**(constants or {}), **config}
    try:
        trial = decode(merged, ignore=_NOT_TRIAL_KEYS)
    except ValueError:
        return config_key(config)
    flat = encode(effective_config(trial))
    # What differs from the search's fixed keys alone: short, and the same for equal networks.
    base = _base(json.dumps(constants or {}, sort_keys=True, default=str))
    return config_key({key: value for key, value in flat.items() if base.get(key) != value})


_NOT_TRIAL_KEYS = (*RUNTIME_KEYS, "table")


@functools.lru_cache(maxsize=16)
def _base(constants: str) -> dict[str, Any]:
    """The effective flat config of a search's fixed keys (JSON) with every other key default."""
    try:
        return encode(effective_config(decode(json.loads(constants), ignore=_NOT_TRIAL_KEYS)))
    except ValueError:
        return {}
