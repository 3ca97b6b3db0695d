"""Points to evaluate first (``--points FILE``): configurations a search launches before its
sampler proposes any.

A points file is a YAML or JSON list of mappings of searched keys (``.yaml``, ``.yml``,
``.json``; a mapping may name the cell as ``arch``, an NB201 string, and may leave keys out:
the sampler fills them in), or any other file of NB201 strings, one a line (``#`` comments and
blank lines skipped), each meaning the cell. Points are kept as mappings with the cell as the
six edge keys, the form the search space uses.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from robnas.search._config_file import MAX_VALUES, _too_large
from robnas.spaces._genotype import EDGE_KEYS, Genotype, read_archs
from robnas.spaces._suggest import did_you_mean

__all__ = ["STRUCTURED_SUFFIXES", "check_points", "load_points"]

#: Suffixes of a points file holding a YAML or JSON list of mappings; any other is NB201 strings.
STRUCTURED_SUFFIXES = (".yaml", ".yml", ".json")


def load_points(value: Any) -> tuple[dict[str, Any], ...]:
    """The points of ``value``: a points file's path, or a list of mappings (as recorded in
    ``robnas.json``). ValueError naming the file, and the point's line or number, otherwise."""
    if isinstance(value, (str, os.PathLike)):
        return _read_file(Path(value))
    if isinstance(value, (list, tuple)):
        return _normalised(value, "points")
    raise ValueError(f"points must be a points file or a list of mappings, got {type(value).__name__}")


def check_points(points: Sequence[Mapping[str, Any]], space: Mapping[str, Any]) -> None:
    """ValueError naming the first point (by number, from 1) with a key the space ``space``
    (Tune domains) does not search, or a value outside its domain."""
    from ray.tune.search.sample import Integer

    for number, point in enumerate(points, start=1):
        for key, value in point.items():
            if key not in space:
                raise ValueError(
                    f"point {number}: {key!r} is not searched by the space{did_you_mean(key, space)}; "
                    f"searched keys: {', '.join(sorted(space))}"
                )
            domain = space[key]
            if hasattr(domain, "categories"):
                if not any(_same(value, choice) for choice in domain.categories):
                    choices = ", ".join(map(str, domain.categories))
                    raise ValueError(f"point {number}: {key} {value!r} is not one of {choices}")
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"point {number}: {key} must be a number, got {value!r}")
            integer = isinstance(domain, Integer)
            upper_ok = value < domain.upper if integer else value <= domain.upper
            if (integer and value != int(value)) or value < domain.lower or not upper_ok:
                bounds = f"an integer in [{domain.lower}, {domain.upper - 1}]" if integer else \
                    f"in [{domain.lower}, {domain.upper}]"
                raise ValueError(f"point {number}: {key} {value!r} is not {bounds}")


def _same(value: Any, choice: Any) -> bool:
    """``value == choice``, but ``True`` is not ``1``."""
    return value == choice and isinstance(value, bool) == isinstance(choice, bool)


def _read_file(path: Path) -> tuple[dict[str, Any], ...]:
    if not path.is_file():
        raise ValueError(f"points file {path} does not exist or is not a file")
    if path.suffix.lower() not in STRUCTURED_SUFFIXES:
        return tuple(Genotype.from_str(arch).to_config() for arch in read_archs(path, what="points file"))
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read points file {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"points file {path}: JSON syntax error at line {error.lineno}: {error.msg}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ValueError(f"points file {path}: YAML syntax error{where}: {getattr(error, 'problem', None)}") from None
    if not isinstance(data, list):
        raise ValueError(f"points file {path} must hold a list of mappings of searched keys")
    if _too_large(data):
        raise ValueError(f"points file {path} holds more than {MAX_VALUES:,} values")
    return _normalised(data, f"points file {path}")


def _normalised(items: Sequence[Any], where: str) -> tuple[dict[str, Any], ...]:
    """Each item checked to be a mapping of keys to plain values, its ``arch`` as edge keys."""
    points = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, Mapping) or not item or not all(isinstance(key, str) for key in item):
            raise ValueError(f"{where}: point {number} is not a mapping of searched keys to values")
        point = dict(item)
        if "arch" in point:
            if any(key in point for key in EDGE_KEYS):
                raise ValueError(f"{where}: point {number} gives the cell both as arch and as edge keys")
            try:
                cell = Genotype.from_str(point.pop("arch")).to_config()
            except ValueError as error:
                raise ValueError(f"{where}: point {number}: {error}") from None
            point = {**cell, **point}
        for key, value in point.items():
            plain = isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value))
            if not plain:
                raise ValueError(f"{where}: point {number}: {key} must be a name or a finite number, got {value!r}"[:300])
        points.append(point)
    if not points:
        raise ValueError(f"{where} lists no point")
    return tuple(points)
