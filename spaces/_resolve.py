"""The trial keys a search's trials share, resolved once, and filled back into trial configs.

A search records the resolved values in its ``robnas.json`` (``resolve_fixed``); trials get
them filled into their flat configs (``fill_defaults``), so a run resumed after a default in
``DATASET_DEFAULTS`` changed still trains and evaluates as it started.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any

from robnas.spaces._compose import decode, encode, uses_own_step
from robnas.spaces._family import FAMILIES, FAMILY_KEYS
from robnas.spaces._runtime import RUNTIME_KEYS

__all__ = ["KEYS_ADDED", "complete_record", "fill_defaults", "resolve_fixed"]

#: Trial keys added after robnas began recording ``resolved_trial``, each with the value every
#: trial had before the key existed (``eval_loss``: the evaluation PGD ascended cross-entropy;
#: the robust-training methods were off; no trial had a dynamic sparsity schedule, so drop
#: fraction and update interval, RigL's own, change nothing, and no trial averaged tickets;
#: ``eval_schedule``: with a constant step).
KEYS_ADDED: Mapping[str, Any] = MappingProxyType({
    "eval_loss": "ce",
    "eval_schedule": "constant",
    "awp_gamma": 0.0,
    "weight_averaging": "none",
    "ema_decay": 0.999,
    "wot_segments": 4,
    "part": False,
    "part_eps_low": 0.875,
    "stop_on_overfit": False,
    "sparsity_drop_fraction": 0.3,
    "sparsity_update_every": 100,
    "sup_tickets": False,
})


#: Flat key -> the keys of its other form in some family (``arch`` -> the edge keys).
ALTERNATIVES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    key: tuple(dict.fromkeys(other for family in FAMILIES.values() for other in family.alternatives.get(key, ())))
    for key in dict.fromkeys(key for family in FAMILIES.values() for key in family.alternatives)
})


def resolve_fixed(fixed: Mapping[str, Any], searched: Collection[str]) -> dict[str, Any]:
    """Every flat trial key (``encode``'s, in its order) with the value all trials share.

    ``fixed``: the keys every trial is given (``dataset``, ``max_epochs``, a search's ``trial``
    settings); the others take ``decode``'s defaults for ``fixed["dataset"]``. Keys in
    ``searched`` (the search space's) are left out, and so is a key whose other form is searched
    (``arch`` when an edge key is; see ``ALTERNATIVES``), and every architecture key when the
    space sets ``family``. ``step_size`` is the step of PGD and TRADES: FGSM-RS trials
    given no ``step_size`` keep their own (see ``fill_defaults``).

    Raises:
        ValueError: as ``decode`` does, for a fixed key that is unknown or invalid.
    """
    given = {key: value for key, value in fixed.items() if key not in searched}
    flat = encode(decode(given, ignore=RUNTIME_KEYS))
    return {
        key: value for key, value in flat.items()
        if key not in searched and not any(other in searched for other in ALTERNATIVES.get(key, ()))
        and not ("family" in searched and key in (*FAMILY_KEYS, "family"))
    }


def complete_record(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded ``resolved_trial`` with the ``KEYS_ADDED`` it predates set to their old values.

    Only a record that resolves the evaluation attack (``eval_steps``: every search that trains)
    is completed; a table search's record, which holds only the keys its replay reads, is not.
    """
    completed = dict(resolved)
    if "eval_steps" in completed:
        for key, value in KEYS_ADDED.items():
            completed.setdefault(key, value)
    return completed


def fill_defaults(config: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with the keys it lacks taken from ``defaults`` (a ``resolve_fixed`` result).

    The config's own values win. Not filled: a key into a config that holds its other form
    (``arch`` into one naming its cell by edge keys; see ``ALTERNATIVES``), and ``step_size`` into an FGSM-RS config without one (``decode`` then gives FGSM-RS's
    own step, as it did when ``defaults`` were resolved).
    """
    filled = dict(config)
    for key, value in defaults.items():
        if key in filled or any(other in config for other in ALTERNATIVES.get(key, ())):
            continue
        filled[key] = value
    if "step_size" not in config and uses_own_step({**defaults, **config}):
        filled.pop("step_size", None)
    return filled
