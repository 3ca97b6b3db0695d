"""robnas's own search state as plain JSON: written atomically, validated on load.

Nothing robnas writes is unpickled: a state file is parsed with ``json`` and checked against
the shape its owner expects, and a damaged or foreign file is a ``ValueError`` naming it.
Floats may be NaN (a diverged trial): they are stored as ``null`` and read back as NaN.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from robnas.analysis._files import atomic_write_text


class StateError(ValueError):
    """A state file is missing, damaged or not the kind of state expected."""


def write_state(path: str | os.PathLike, kind: str, version: int, state: Mapping[str, Any]) -> None:
    """Write ``state`` under a header ``{"kind": kind, "version": version}``, atomically."""
    document = {"kind": kind, "version": version, **state}
    atomic_write_text(path, json.dumps(document, allow_nan=False, separators=(",", ":")) + "\n")


def read_state(path: str | os.PathLike, kind: str, version: int) -> dict[str, Any]:
    """The state written by :func:`write_state`; StateError if ``path`` holds anything else."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise StateError(f"{path} is not a readable robnas {kind} state ({_short(error)})") from None
    if not isinstance(document, dict) or document.get("kind") != kind:
        raise StateError(f"{path} is not a robnas {kind} state")
    if document.get("version") != version:
        raise StateError(f"{path} has {kind} state version {document.get('version')!r}; this robnas reads {version}")
    return document


def require(state: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``state[key]``, checked to be an instance of ``kind``."""
    value = state.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise StateError(f"{where}: {key!r} is missing or not {_names(kind)}")
    return value


def floats_out(values: Iterable[float]) -> list[float | None]:
    """Floats as JSON: NaN and infinities become ``null``."""
    return [float(v) if math.isfinite(v) else None for v in map(float, values)]


def floats_in(values: Any, where: str) -> list[float]:
    """The inverse of :func:`floats_out` (``null`` -> NaN), checked."""
    if not isinstance(values, list) or not all(
        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values
    ):
        raise StateError(f"{where}: expected a list of numbers")
    return [math.nan if v is None else float(v) for v in values]


def number_map_in(values: Any, where: str) -> dict[str, float]:
    """A ``{name: number or null}`` mapping, checked (``null`` -> NaN)."""
    if not isinstance(values, dict):
        raise StateError(f"{where}: expected a mapping of numbers")
    return dict(zip(values, floats_in(list(values.values()), where)))


def number_map_out(values: Mapping[str, float]) -> dict[str, float | None]:
    return dict(zip(values, floats_out(values.values())))


def _refuse(constant: str) -> None:
    raise ValueError(f"non-JSON constant {constant}")


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _tuple(kind))


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0][:120] if str(error) else type(error).__name__
