"""Building and counting a trial's network, whatever its architecture family.

``BUILDERS`` holds, per family name (``robnas.spaces._family.FAMILIES``), an object that builds
the network of a description, counts its parameters and MACs in closed form and bounds the
sizes a search space can reach. ``build_model`` and ``network_sizes`` dispatch on the
description's ``family``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any, Protocol

from torch import nn

from robnas.spaces._family import FAMILIES, family_of
from robnas.spaces._genotype import EDGE_KEYS, Genotype
from robnas.spaces._nb201 import DEFAULT_ARCH, NB201Arch
from robnas.trainables._cost_range import size_ranges
from robnas.trainables._network import build_network, nb201_mac_count, nb201_param_count
from robnas.trainables._resnet import build_resnet
from robnas.trainables._resnet_count import resnet_sizes
from robnas.trainables._resnet_range import resnet_size_range

__all__ = ["BUILDERS", "NetworkBuilder", "build_model", "network_sizes", "size_range"]

#: ``values(key)``: the values a flat key takes in a search space, or None if not given.
Values = Callable[[str], Sequence[Any] | None]


class NetworkBuilder(Protocol):
    """One family's networks, seen from the training side."""

    def build(self, network: Any, *, in_channels: int, num_classes: int) -> nn.Module:
        """The network (PyTorch's default initialisation from the global torch RNG)."""

    def sizes(self, network: Any, *, input_shape: tuple[int, int, int], num_classes: int) -> dict[str, int]:
        """``{"params", "macs"}`` of the built network in closed form (MACs per image)."""

    def size_range(self, values: Values, *, input_shape: tuple[int, int, int],
                   num_classes: int) -> dict[str, tuple[float, float]]:
        """``{"params", "macs"}`` -> ``(smallest, largest)`` over a search space's networks."""


class _NB201Builder:
    def build(self, network: NB201Arch, *, in_channels: int, num_classes: int) -> nn.Module:
        return build_network(network.genotype, width=network.macro.width,
                             cells_per_stage=network.macro.cells_per_stage,
                             in_channels=in_channels, num_classes=num_classes)

    def sizes(self, network: NB201Arch, *, input_shape: tuple[int, int, int], num_classes: int) -> dict[str, int]:
        shape = {"width": network.macro.width, "cells_per_stage": network.macro.cells_per_stage,
                 "in_channels": input_shape[0], "num_classes": num_classes}
        return {"params": nb201_param_count(network.genotype, **shape),
                "macs": nb201_mac_count(network.genotype, input_size=tuple(input_shape[1:]), **shape)}

    def size_range(self, values: Values, *, input_shape: tuple[int, int, int],
                   num_classes: int) -> dict[str, tuple[float, float]]:
        ranges = size_ranges(_edge_ops(values), values("width") or [16], values("cells_per_stage") or [5],
                             input_shape=input_shape, num_classes=num_classes)
        return {name: ranges[name] for name in ("params", "macs")}


def _edge_ops(values: Values) -> list[Sequence[str]]:
    """The ops each edge can take: the edge keys' values, else those of the ``arch`` values."""
    edges = [values(key) for key in EDGE_KEYS]
    if all(edges):
        return edges
    cells = [Genotype.from_str(text).ops for text in (values("arch") or [DEFAULT_ARCH])]
    return [sorted({cell[i] for cell in cells}) for i in range(len(EDGE_KEYS))]


class _ResNetBuilder:
    def build(self, network, *, in_channels: int, num_classes: int) -> nn.Module:
        return build_resnet(network, in_channels=in_channels, num_classes=num_classes)

    def sizes(self, network, *, input_shape: tuple[int, int, int], num_classes: int) -> dict[str, int]:
        return resnet_sizes(network, in_channels=input_shape[0], input_size=tuple(input_shape[1:]),
                            num_classes=num_classes)

    def size_range(self, values: Values, *, input_shape: tuple[int, int, int],
                   num_classes: int) -> dict[str, tuple[float, float]]:
        return resnet_size_range(values, input_shape=input_shape, num_classes=num_classes)


#: Family name -> its builder.
BUILDERS: MappingProxyType[str, NetworkBuilder] = MappingProxyType({"nb201": _NB201Builder(), "resnet": _ResNetBuilder()})

if set(BUILDERS) != set(FAMILIES):  # pragma: no cover
    raise RuntimeError("every architecture family needs a builder")


def build_model(network: Any, *, in_channels: int, num_classes: int) -> nn.Module:
    """The untrained network of a family's description (``NB201Arch``, ``ResNetArch``)."""
    return BUILDERS[family_of(network).name].build(network, in_channels=in_channels, num_classes=num_classes)


def network_sizes(network: Any, *, input_shape: tuple[int, int, int], num_classes: int) -> dict[str, int]:
    """``{"params", "macs"}`` of ``build_model(network, ...)`` on ``input_shape`` (C, H, W)
    images, in closed form (no network is built)."""
    return BUILDERS[family_of(network).name].sizes(network, input_shape=tuple(input_shape), num_classes=num_classes)


def size_range(family: str, values: Values, *, input_shape: tuple[int, int, int],
               num_classes: int) -> dict[str, tuple[float, float]]:
    """``{"params", "macs"}`` -> ``(smallest, largest)`` over the ``family`` networks of a space."""
    return BUILDERS[family].size_range(values, input_shape=tuple(input_shape), num_classes=num_classes)
