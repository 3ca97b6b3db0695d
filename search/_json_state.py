"""robnas's own saved state is plain JSON, checked field by field when it is read back.

Tune pickles the state of a callback into its own ``callback-states-*.pkl``; robnas's callbacks
hand Tune ``{"robnas_json": "<json text>"}`` so that what robnas restores is JSON it validates,
never an object a pickle built. Non-finite floats are written as the strings ``"nan"``,
``"inf"`` and ``"-inf"`` (strict JSON has no NaN) and read back as floats.
"""

from __future__ import annotations

import json
import math
from typing import Any

JSON_KEY = "robnas_json"
_NON_FINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def encode_float(value: Any) -> float | str:
    """``value`` as a JSON number, or ``"nan"`` / ``"inf"`` / ``"-inf"``."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def decode_float(value: Any, where: str) -> float:
    """The float :func:`encode_float` wrote; ``where`` names the field in the error."""
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number or one of {sorted(_NON_FINITE)}, got {value!r}")
    return float(value)


def dumps(data: Any) -> str:
    """Strict JSON (a NaN that :func:`encode_float` did not encode is an error, not a token)."""
    return json.dumps(data, allow_nan=False)


def loads(text: Any, source: str) -> Any:
    """Parse strict JSON: no NaN/Infinity tokens, no repeated keys. Errors name ``source``."""
    if not isinstance(text, str):
        raise ValueError(f"{source}: expected JSON text, got {type(text).__name__}")
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source}: not valid JSON ({error})") from None
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def read_file(path: str) -> Any:
    """Parse the JSON file ``path``; a file that is not UTF-8 JSON raises ``ValueError``."""
    try:
        with open(path, "rb") as file:
            text = file.read().decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a robnas JSON state file (not UTF-8 text)") from None
    return loads(text, path)


def _refuse_constant(token: str) -> None:
    raise ValueError(f"non-standard JSON constant {token}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"repeated key {key!r}")
        result[key] = value
    return result


def callback_state(data: Any) -> dict[str, str]:
    """What a robnas callback's ``get_state()`` returns to Tune: the JSON text of ``data``."""
    return {JSON_KEY: dumps(data)}


def from_callback_state(state: Any, source: str) -> Any:
    """The data inside :func:`callback_state` output, parsed; anything else is a ``ValueError``."""
    if not isinstance(state, dict) or set(state) != {JSON_KEY}:
        keys = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{source}: expected {{{JSON_KEY!r}: <JSON text>}}, got {keys}")
    return loads(state[JSON_KEY], source)


def check_record(data: Any, keys: dict[str, type | tuple[type, ...]], source: str) -> dict:
    """``data`` must be a JSON object with exactly ``keys``, each of the given type(s)."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
    missing, unknown = sorted(set(keys) - set(data)), sorted(set(data) - set(keys))
    if missing or unknown:
        raise ValueError(f"{source}: missing keys {missing}, unknown keys {unknown}")
    for key, kind in keys.items():
        value = data[key]
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise ValueError(f"{source}: {key!r} has type {type(value).__name__}, expected {_name(kind)}")
    return data


def check_count(value: Any, where: str) -> int:
    """A non-negative integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where} must be an integer >= 0, got {value!r}")
    return value


def check_strings(value: Any, where: str) -> list[str]:
    """A list of strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a list of strings, got {value!r}")
    return value


def _name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)
