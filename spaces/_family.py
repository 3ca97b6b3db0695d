"""Architecture families: how a trial's network is decoded, encoded, canonicalised and described.

A flat config names its family with ``family`` (default ``DEFAULT_FAMILY``); the family object
reads its own keys (``ArchFamily.keys``) into a frozen network description (its
``network_type``, which has a class attribute ``family``, the family's name). Everything
outside a family goes through ``FAMILIES``; ``robnas.trainables._families`` builds and counts
the networks.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

from robnas.spaces._nb201 import NB201
from robnas.spaces._resnet_family import RESNET
from robnas.spaces._suggest import did_you_mean

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "FAMILY_KEYS", "ArchFamily", "family_named", "family_of",
           "parse_description"]


class ArchFamily(Protocol):
    """One family of networks, seen from the configuration side."""

    name: str
    network_type: type
    #: Flat config keys the family reads (``family`` itself excluded).
    keys: tuple[str, ...]
    #: Key -> the keys of its other form (``arch`` -> the edge keys): one of the two is given.
    alternatives: Mapping[str, tuple[str, ...]]
    #: Names of :meth:`features`, a fixed-length list.
    feature_names: tuple[str, ...]
    #: True when the family's networks (up to ``canonical``) can all be listed, so a results
    #: table can hold every one (NB201); False when a table holds only the networks given to it.
    enumerable: bool

    def decode(self, config: Mapping[str, Any], *, dataset: str, defaults: Mapping[str, Any] | None = None) -> Any:
        """The network of a flat config; missing keys take ``dataset``'s defaults (``defaults``:
        the data set's row of flat defaults, when the caller has one)."""

    def encode(self, network: Any) -> dict[str, Any]:
        """The flat keys that ``decode`` turns back into ``network``."""

    def canonical(self, network: Any) -> Any:
        """One representative of every description that builds the same network."""

    def describe(self, network: Any) -> str:
        """One line naming the network (the ``arch`` column of an analysis)."""

    def parse(self, text: str) -> Any:
        """The network of a :meth:`describe` line (its ``arch`` key); ValueError naming the text."""

    def features(self, network: Any) -> list[float]:
        """Numbers for the surrogate ranker, named by ``feature_names``."""


#: Family name -> family, in registration order (NB201 first).
FAMILIES: Mapping[str, ArchFamily] = MappingProxyType({family.name: family for family in (NB201, RESNET)})
#: Family of a config without ``family``.
DEFAULT_FAMILY = "nb201"
#: Every flat key some family reads, without repeats, in registration order.
FAMILY_KEYS: tuple[str, ...] = tuple(dict.fromkeys(key for family in FAMILIES.values() for key in family.keys))


def family_named(name: Any) -> ArchFamily:
    """The family called ``name``; ValueError naming the known ones."""
    if not isinstance(name, str) or name not in FAMILIES:
        hint = did_you_mean(name, FAMILIES) if isinstance(name, str) else ""
        raise ValueError(f"config key 'family': unknown architecture family {name!r}{hint}; "
                         f"known families: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_of(network: Any) -> ArchFamily:
    """The family of a network description."""
    name = getattr(network, "family", None)
    if name not in FAMILIES or not isinstance(network, FAMILIES[name].network_type):
        raise ValueError(f"not a network description of a known family: {network!r}")
    return FAMILIES[name]


def parse_description(text: Any) -> Any:
    """The network of any family's one-line description (``describe``); ValueError on one line
    naming the text and, per family, why it is not one of its descriptions."""
    reasons = []
    for family in FAMILIES.values():
        try:
            return family.parse(text)
        except ValueError as error:
            reasons.append(f"{family.name}: {' '.join(str(error).split())}")
    raise ValueError(f"{text!r} is not a network description ({'; '.join(reasons)})")
