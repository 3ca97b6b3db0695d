"""The ``resnet`` architecture family: flat keys <-> ``ResNetArch``, and its surrogate features.

Flat keys: the whole network as ``arch`` (its description, ``ResNetArch.to_str``), or ``stem``, ``stem_width``, ``stem_kernel``, ``block``, ``kernel_size``,
``activation``, ``se_ratio``, and the stages either as lists (``stage_depths``,
``stage_widths``; a YAML file's form) or per stage (``stages`` and ``depth_<i>``, ``width_<i>``
for stage i = 1..4; a search space's form, since a sampler draws scalars). In the per-stage
form the keys of stages beyond ``stages`` are ignored. Missing keys take the data set's
defaults (``RESNET_DEFAULTS``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from robnas.spaces._checks import ConfigError, check_int
from robnas.spaces._defaults import DATASETS
from robnas.spaces._resnet import ACTIVATIONS, BLOCKS, MAX_STAGES, STEMS, ResNetArch

__all__ = ["LIST_KEYS", "RESNET", "RESNET_DEFAULTS", "ResNetFamily", "STAGE_KEYS"]

#: Keys read as they are.
_SCALAR_KEYS = ("stem", "stem_width", "stem_kernel", "block", "kernel_size", "activation", "se_ratio")
#: The stages as lists.
LIST_KEYS = ("stage_depths", "stage_widths")
#: The stages one key each: their number, then depth and width of stage i.
STAGE_KEYS = ("stages", *(f"depth_{i}" for i in range(1, MAX_STAGES + 1)),
              *(f"width_{i}" for i in range(1, MAX_STAGES + 1)))

#: Data set -> the network of a resnet trial that names no architecture key: CIFAR ResNet-18 for
#: 32x32 images, a two-stage network of 16 and 32 channels for 8x8 digits.
RESNET_DEFAULTS: Mapping[str, ResNetArch] = MappingProxyType({
    dataset: ResNetArch(stem_width=16, stage_depths=(1, 1), stage_widths=(16, 32)) if dataset == "digits"
    else ResNetArch()
    for dataset in DATASETS
})


class ResNetFamily:
    """Decode, encode, canonicalise and describe ``ResNetArch`` networks."""

    name = "resnet"
    network_type = ResNetArch
    keys: tuple[str, ...] = ("arch", *_SCALAR_KEYS, *LIST_KEYS, *STAGE_KEYS)
    #: Key -> the keys of its other form (the network as ``arch`` or by field; the stages as
    #: lists or per stage).
    alternatives = MappingProxyType({"arch": (*_SCALAR_KEYS, *LIST_KEYS, *STAGE_KEYS),
                                     **{key: STAGE_KEYS for key in LIST_KEYS}})
    #: No finite list of every network: a results table holds the networks it was given.
    enumerable = False
    feature_names: tuple[str, ...] = (
        *(f"stem={s}" for s in STEMS), "log2_stem_width", "stem_kernel",
        *(f"block={b}" for b in BLOCKS), "stages", "blocks",
        *(f"depth_{i}" for i in range(1, MAX_STAGES + 1)),
        *(f"log2_width_{i}" for i in range(1, MAX_STAGES + 1)),
        "kernel_size", *(f"activation={a}" for a in ACTIVATIONS), "se_ratio",
    )

    def decode(self, config: Mapping[str, Any], *, dataset: str,
               defaults: Mapping[str, Any] | None = None) -> ResNetArch:
        """The network of a flat config (missing keys: ``RESNET_DEFAULTS[dataset]``; the flat
        ``defaults`` of the data set are not read); ValueError naming the key for a bad value."""
        if "arch" in config:
            fields = [key for key in self.keys[1:] if key in config]
            if fields:
                raise ValueError(f"give the network either as 'arch' or by its fields, not both "
                                 f"(got arch and {', '.join(fields)})")
            return self.parse(config["arch"])
        default = RESNET_DEFAULTS[dataset]
        fields = {key: config[key] for key in _SCALAR_KEYS if key in config}
        try:
            fields.update(_stages(config))
            return dataclasses.replace(default, **fields)
        except ConfigError as error:
            raise ValueError(f"config key {error.field!r}: {error}") from None

    def encode(self, network: ResNetArch) -> dict[str, Any]:
        """Flat keys of ``network``, its stages as lists."""
        flat = {key: getattr(network, key) for key in (*_SCALAR_KEYS[:4], *LIST_KEYS, *_SCALAR_KEYS[4:])}
        return {**flat, "stage_depths": list(network.stage_depths), "stage_widths": list(network.stage_widths)}

    def canonical(self, network: ResNetArch) -> ResNetArch:
        """``network`` itself: two distinct descriptions never build the same network."""
        return network

    def describe(self, network: ResNetArch) -> str:
        """One line naming every field (``ResNetArch.to_str``)."""
        return network.to_str()

    def parse(self, text: str) -> ResNetArch:
        """The network of a :meth:`describe` line; ValueError naming the text for another."""
        return ResNetArch.from_str(text)

    def features(self, network: ResNetArch) -> list[float]:
        """Numbers named by ``feature_names``; absent stages have depth and log-width 0."""
        depths = [*network.stage_depths, *[0] * (MAX_STAGES - len(network.stage_depths))]
        widths = [math.log2(w) for w in network.stage_widths]
        widths += [0.0] * (MAX_STAGES - len(widths))
        return [
            *(float(network.stem == s) for s in STEMS), math.log2(network.stem_width), float(network.stem_kernel),
            *(float(network.block == b) for b in BLOCKS), float(len(network.stage_depths)), float(network.blocks),
            *map(float, depths), *widths,
            float(network.kernel_size), *(float(network.activation == a) for a in ACTIVATIONS), network.se_ratio,
        ]


def _stages(config: Mapping[str, Any]) -> dict[str, Any]:
    """``stage_depths`` and ``stage_widths`` from either form (none: the defaults')."""
    lists = [key for key in LIST_KEYS if key in config]
    per_stage = [key for key in STAGE_KEYS if key in config]
    if lists and per_stage:
        raise ValueError(f"give the stages either as {' and '.join(LIST_KEYS)} or per stage "
                         f"({', '.join(STAGE_KEYS[:3])}, ...), not both (got {lists[0]} and {per_stage[0]})")
    if lists:
        return {key: config[key] for key in lists}
    if not per_stage:
        return {}
    if "stages" not in config:
        raise ValueError(f"per-stage keys ({', '.join(per_stage)}) need 'stages', the number of stages")
    stages = check_int("ResNetArch", "stages", config["stages"], minimum=1)
    if stages > MAX_STAGES:
        raise ConfigError("ResNetArch", "stages", f"must be at most {MAX_STAGES}, got {stages}")
    missing = [f"{kind}_{i}" for i in range(1, stages + 1) for kind in ("depth", "width")
               if f"{kind}_{i}" not in config]
    if missing:
        raise ValueError(f"{stages} stages need {', '.join(missing)}")
    return {"stage_depths": tuple(config[f"depth_{i}"] for i in range(1, stages + 1)),
            "stage_widths": tuple(config[f"width_{i}"] for i in range(1, stages + 1))}


RESNET = ResNetFamily()
