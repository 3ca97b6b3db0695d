"""The NB201 architecture family: a cell genotype in the NAS-Bench-201 macro skeleton.

Flat keys: the cell as ``arch`` (an NB201 string) or as the six ``EDGE_KEYS``, and the macro
keys ``width`` and ``cells_per_stage`` (defaults per data set, ``DATASET_DEFAULTS``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from robnas.spaces._cell_features import CELL_FEATURES, cell_features
from robnas.spaces._checks import ConfigError
from robnas.spaces._defaults import DATASET_DEFAULTS
from robnas.spaces._genotype import EDGE_KEYS, Genotype
from robnas.spaces._macro import MacroConfig

__all__ = ["DEFAULT_ARCH", "NB201", "NB201Arch", "NB201Family"]

#: Cell of a trial whose config names none.
DEFAULT_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"

_MACRO_KEYS = ("width", "cells_per_stage")


@dataclass(frozen=True)
class NB201Arch:
    """An NB201 network: the cell ``genotype`` repeated in the ``macro`` skeleton."""

    family: ClassVar[str] = "nb201"
    genotype: Genotype = dataclasses.field(default_factory=lambda: Genotype.from_str(DEFAULT_ARCH))
    macro: MacroConfig = dataclasses.field(default_factory=MacroConfig)

    def __post_init__(self) -> None:
        for name, cls in (("genotype", Genotype), ("macro", MacroConfig)):
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"NB201Arch.{name} must be a {cls.__name__}, got {getattr(self, name)!r}")


class NB201Family:
    """Decode, encode, canonicalise and describe ``NB201Arch`` networks."""

    name = "nb201"
    network_type = NB201Arch
    #: Flat keys this family reads.
    keys: tuple[str, ...] = ("arch", *EDGE_KEYS, *_MACRO_KEYS)
    #: Key -> the keys of its other form (the cell as ``arch`` or as edge keys).
    alternatives = MappingProxyType({"arch": EDGE_KEYS})
    #: Names of :meth:`features`.
    feature_names: tuple[str, ...] = (*CELL_FEATURES, "log2_width", "cells_per_stage")
    #: Every cell is one of 6,466 isomorphism classes: a results table can hold them all.
    enumerable = True

    def decode(self, config: Mapping[str, Any], *, dataset: str,
               defaults: Mapping[str, Any] | None = None) -> NB201Arch:
        """The network of a flat config (missing macro keys: ``defaults``, else ``dataset``'s
        row of ``DATASET_DEFAULTS``)."""
        genotype = _decode_genotype(config)
        defaults = DATASET_DEFAULTS[dataset] if defaults is None else defaults
        macro = {key: config.get(key, defaults[key]) for key in _MACRO_KEYS}
        try:
            return NB201Arch(genotype, MacroConfig(**macro))
        except ConfigError as error:
            raise ValueError(f"config key {error.field!r}: {error}") from None

    def encode(self, network: NB201Arch) -> dict[str, Any]:
        """Flat keys of ``network``: the cell as ``arch``, then ``width`` and ``cells_per_stage``."""
        return {"arch": network.genotype.to_str(), "width": network.macro.width,
                "cells_per_stage": network.macro.cells_per_stage}

    def canonical(self, network: NB201Arch) -> NB201Arch:
        """``network`` with its cell in canonical form (isomorphic cells share it)."""
        return dataclasses.replace(network, genotype=network.genotype.canonical())

    def describe(self, network: NB201Arch) -> str:
        """The NB201 string of the cell."""
        return network.genotype.to_str()

    def parse(self, text: str) -> NB201Arch:
        """The network of a :meth:`describe` line (the cell) in the default macro skeleton
        (C=16, N=5); ValueError naming the text for another line."""
        return NB201Arch(Genotype.from_str(text))

    def features(self, network: NB201Arch) -> list[float]:
        """The canonical cell's features, ``log2(width)`` and ``cells_per_stage``."""
        macro = network.macro
        return [*cell_features(network.genotype.canonical().ops), math.log2(macro.width),
                float(macro.cells_per_stage)]


def _decode_genotype(config: Mapping[str, Any]) -> Genotype:
    edges = [key for key in EDGE_KEYS if key in config]
    if "arch" in config and edges:
        raise ValueError(
            f"give the cell either as 'arch' or as the edge keys, not both (got arch and {', '.join(edges)})"
        )
    if "arch" in config:
        return Genotype.from_str(config["arch"])
    if edges:
        return Genotype.from_config(config)
    return Genotype.from_str(DEFAULT_ARCH)


NB201 = NB201Family()
