"""Counts as people write them: ``200k``, ``1.5e6``, ``3M``."""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["parse_count"]

#: Suffixes of a count: thousands, millions, billions.
COUNT_SUFFIXES = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9}
_COUNT = re.compile(r"(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<suffix>[kKMG]?)")


def parse_count(field: str, value: Any) -> int | float:
    """A count > 0 from a number or text such as ``"1500000"``, ``"1.5e6"``, ``"200k"``,
    ``"3M"``: an int when whole (a results table may count in millions, ``0.5``); ValueError
    naming ``field`` otherwise."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        match = _COUNT.fullmatch(value.strip().replace("_", ""))
        if match:
            number = float(match["number"]) * COUNT_SUFFIXES.get(match["suffix"], 1)
    if number is None or not math.isfinite(number) or number <= 0:
        raise ValueError(f"{field} must be a number > 0 such as 1000000, 1.5e6, 200k or 3M, got {_shown(value)}")
    return int(number) if number == int(number) else float(number)


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
