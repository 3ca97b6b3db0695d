"""Counts and durations as people write them: ``200k``, ``1.5e6``, ``3M``; ``90s``, ``1h30m``."""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["format_duration", "parse_count", "parse_duration"]

#: Suffixes of a count: thousands, millions, billions.
COUNT_SUFFIXES = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9}
_COUNT = re.compile(r"(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<suffix>[kKMG]?)")
_DURATION = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?")


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


def parse_duration(field: str, value: Any) -> float:
    """Seconds > 0 from a number or text such as ``"90"``, ``"90s"``, ``"30m"``, ``"2h"``,
    ``"1h30m"``; ValueError naming ``field`` otherwise."""
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        match = _DURATION.fullmatch(text)
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif text and match:
            seconds = sum(float(match[unit] or 0) * factor for unit, factor in (("h", 3600), ("m", 60), ("s", 1)))
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{field} must be a duration > 0 such as 90s, 30m, 2h, 1h30m or seconds, got {_shown(value)}")
    return seconds


def format_duration(seconds: float) -> str:
    """``45s``, ``2m``, ``1m30s``, ``2h``, ``1h30m``: whole seconds, in a form
    :func:`parse_duration` reads back."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
    return text or "0s"


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
