"""Reading YAML config files into plain mappings, with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a YAML file whose top level is a mapping with string keys.

    Raises:
        ValueError: the file is missing, is not valid YAML, or is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ValueError(f"config file {path}: YAML syntax error{where}: {problem}") from None
    except UnicodeDecodeError:
        raise ValueError(f"config file {path} is not UTF-8 text") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise ValueError(f"config file {path} must hold a mapping of option names to values")
    for key, value in data.items():
        if _too_large(value):
            raise ValueError(f"config file {path}: the value of {key!r} holds more than {MAX_VALUES:,} values")
    return data


#: Values (scalars, list items, mapping entries) one option may hold once YAML aliases are expanded.
MAX_VALUES = 100_000


def _too_large(value: Any) -> bool:
    """Whether ``value`` expands to more than ``MAX_VALUES`` values (aliases counted each time)."""
    stack, seen = [value], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False
