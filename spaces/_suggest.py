"""``did_you_mean``: the nearest known name to a mistyped one, for error messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """``" (did you mean NAME?)"`` for the known name closest to ``value``, or ``""`` if none is
    close (``difflib`` ratio below 0.6) or ``value`` is not a string."""
    if not isinstance(value, str):
        return ""
    nearest = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
    return f" (did you mean {nearest[0]}?)" if nearest else ""
