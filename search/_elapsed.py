"""The seconds a search has run over its start and resumes, kept as ``elapsed_s`` in its
``robnas.json`` beside its settings (``time_budget_s``); see ``robnas.search._time_budget``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from robnas.trainables._layout import SEARCH_SETTINGS_FILE, atomic_write_json

__all__ = ["ELAPSED_KEY", "budget_spent", "read_budget", "read_elapsed", "record_elapsed"]

#: Key of ``robnas.json`` holding the seconds the search has run, over all its runs.
ELAPSED_KEY = "elapsed_s"


def _read(path: str | os.PathLike) -> dict[str, Any]:
    try:
        data = json.loads((Path(path) / SEARCH_SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_elapsed(path: str | os.PathLike) -> float | None:
    """Seconds the search in ``path`` has run (None: started before robnas kept them)."""
    value = _read(path).get(ELAPSED_KEY)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read_budget(path: str | os.PathLike) -> float | None:
    """The time budget (seconds) in the settings of the search in ``path``, None for none."""
    settings = _read(path).get("settings")
    value = settings.get("time_budget_s") if isinstance(settings, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def budget_spent(path: str | os.PathLike) -> tuple[float, float] | None:
    """``(time budget, elapsed)`` in seconds if the search in ``path`` has spent its budget."""
    budget, elapsed = read_budget(path), read_elapsed(path)
    if budget is None or elapsed is None or elapsed < budget:
        return None
    return budget, elapsed


def record_elapsed(path: str | os.PathLike, seconds: float) -> None:
    """Set ``elapsed_s`` in the ``robnas.json`` of ``path`` (atomically; nothing without one)."""
    data = _read(path)
    if data:
        data[ELAPSED_KEY] = round(float(seconds), 3)
        atomic_write_json(Path(path) / SEARCH_SETTINGS_FILE, data)
