"""Scheduler state as JSON inside Tune's callback checkpoints, and its field checks.

Tune pickles the state of a callback into its own ``callback-states-*.pkl``; robnas's callbacks
hand Tune ``{"robnas_json": "<json text>"}`` so that what robnas restores is JSON it validates,
never an object a pickle built. Floats follow :mod:`robnas.search._json_state` (NaN is ``null``)
and keep their infinities as ``"inf"`` / ``"-inf"``: an infinite reward moves an ASHA cutoff.
Every problem is a :class:`~robnas.search._json_state.StateError` (a ``ValueError``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from robnas.search._json_state import StateError

JSON_KEY = "robnas_json"
_INFINITE = {"inf": math.inf, "-inf": -math.inf}


def encode_float(value: Any) -> float | str | None:
    """``value`` as a JSON number; NaN as ``null``, infinities as ``"inf"`` / ``"-inf"``."""
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def decode_float(value: Any, where: str) -> float:
    """The float :func:`encode_float` wrote; ``where`` names the field in the error."""
    if value is None:
        return math.nan
    if isinstance(value, str) and value in _INFINITE:
        return _INFINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StateError(f"{where} must be a number, null, 'inf' or '-inf', got {value!r}")
    return float(value)


def callback_state(data: Any) -> dict[str, str]:
    """What a robnas callback's ``get_state()`` returns to Tune: the JSON text of ``data``."""
    return {JSON_KEY: json.dumps(data, allow_nan=False, separators=(",", ":"))}


def from_callback_state(state: Any, source: str, key: str) -> Any:
    """``data[key]`` of the ``data`` inside :func:`callback_state` output, parsed."""
    if not isinstance(state, dict) or set(state) != {JSON_KEY} or not isinstance(state[JSON_KEY], str):
        found = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        raise StateError(f"{source}: expected {{{JSON_KEY!r}: <JSON text>}}, got {found}")
    try:
        data = json.loads(state[JSON_KEY], parse_constant=_refuse)
    except ValueError as error:
        raise StateError(f"{source}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or set(data) != {key}:
        raise StateError(f"{source}: expected {{{key!r}: ...}}")
    return data[key]


def check_record(data: Any, keys: dict[str, type | tuple[type, ...]], source: str) -> dict:
    """``data`` must be a JSON object with exactly ``keys``, each of the given type(s)."""
    if not isinstance(data, dict):
        raise StateError(f"{source}: expected a JSON object, got {type(data).__name__}")
    missing, unknown = sorted(set(keys) - set(data)), sorted(set(data) - set(keys))
    if missing or unknown:
        raise StateError(f"{source}: missing keys {missing}, unknown keys {unknown}")
    for key, kind in keys.items():
        value = data[key]
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise StateError(f"{source}: {key!r} has type {type(value).__name__}, expected {_name(kind)}")
    return data


def check_count(value: Any, where: str) -> int:
    """A non-negative integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StateError(f"{where} must be an integer >= 0, got {value!r}")
    return value


def check_strings(value: Any, where: str) -> list[str]:
    """A list of strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StateError(f"{where} must be a list of strings, got {value!r}")
    return value


def _refuse(constant: str) -> None:
    raise ValueError(f"non-standard JSON constant {constant}")


def _name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)
