"""Type and range checks shared by the configuration dataclasses.

Every check returns the value converted to a plain Python type (numpy scalars from Ray Tune or
Optuna become ``int`` / ``float`` / ``str``) or raises :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Collection
from typing import Any

__all__ = [
    "ConfigError",
    "check_bool",
    "check_choice",
    "check_float",
    "check_int",
    "check_optional_path",
    "check_values",
]


class ConfigError(ValueError):
    """A configuration value of the wrong type or out of range.

    Attributes:
        owner: name of the configuration class (``"AttackConfig"``).
        field: name of the offending field (``"steps"``).
    """

    def __init__(self, owner: str, field: str, message: str) -> None:
        super().__init__(f"{owner}.{field} {message}")
        self.owner = owner
        self.field = field


def check_int(owner: str, field: str, value: Any, *, minimum: int | None = None) -> int:
    """``value`` as an ``int`` (integral floats accepted, bools and strings rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(owner, field, f"must be an integer, got {value!r} ({type(value).__name__})")
    if not isinstance(value, numbers.Integral):
        as_float = float(value)
        if not math.isfinite(as_float) or not as_float.is_integer():
            raise ConfigError(owner, field, f"must be an integer, got {value!r}")
    result = int(value)
    if minimum is not None and result < minimum:
        raise ConfigError(owner, field, f"must be >= {minimum}, got {result}")
    return result


def check_float(
    owner: str,
    field: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` within the given bounds (bools and strings rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(owner, field, f"must be a number, got {value!r} ({type(value).__name__})")
    result = float(value)
    if not math.isfinite(result):
        raise ConfigError(owner, field, f"must be a finite number, got {result!r}")
    too_low = low is not None and (result <= low if low_open else result < low)
    too_high = high is not None and (result >= high if high_open else result > high)
    if too_low or too_high:
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ConfigError(owner, field, f"must be in {left}{lo}, {hi}{right}, got {result!r}")
    return result


def check_bool(owner: str, field: str, value: Any) -> bool:
    """``value`` as a ``bool`` (numpy booleans accepted; 0, 1 and strings rejected)."""
    if isinstance(value, bool):
        return value
    if getattr(getattr(value, "dtype", None), "kind", None) == "b" and getattr(value, "shape", None) == ():
        return bool(value)
    raise ConfigError(owner, field, f"must be true or false, got {value!r} ({type(value).__name__})")


def check_choice(owner: str, field: str, value: Any, allowed: Collection[str]) -> str:
    """``value`` as a ``str`` that is one of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ConfigError(owner, field, f"must be one of {choices}, got {value!r}")
    return str(value)


def check_optional_path(owner: str, field: str, value: Any) -> str | None:
    """``value`` as a ``str`` path, or ``None``."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if isinstance(path, str) and path:
            return path
    raise ConfigError(owner, field, f"must be a non-empty path string or None, got {value!r}")


def check_values(name: str, values: Any) -> list[Any]:
    """A non-empty sequence of choices for a search-space domain, as a list."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{name} must be a non-empty list or tuple of choices, got {values!r}")
    return list(values)
