"""``config_key``: one string per network a configuration trains, shared by isomorphic cells."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from robnas.spaces._family import family_of, parse_description
from robnas.spaces._genotype import EDGE_KEYS, Genotype


def config_key(config: Mapping[str, Any]) -> str:
    """A string equal for two configurations that train the same network.

    The network given as its six edges or as ``arch`` (any family's description) enters by its
    canonical description, so isomorphic cells share a key; every other key enters by value,
    sorted by name.
    """
    rest = {k: v for k, v in config.items() if k not in EDGE_KEYS and k != "arch"}
    parts = [f"{k}={rest[k]!r}" for k in sorted(rest)]
    if all(k in config for k in EDGE_KEYS):
        parts.insert(0, Genotype.from_config(config).canonical().to_str())
    elif "arch" in config:
        network = parse_description(config["arch"])
        family = family_of(network)
        parts.insert(0, family.describe(family.canonical(network)))
    return ";".join(parts)
