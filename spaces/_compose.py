"""A whole trial: the typed ``TrialConfig``, its flat dict form, and the composed search space.

The flat form is what Ray Tune passes to a trainable: one key per field (``CONFIG_FIELDS``) plus
the cell, either as ``arch`` (an NB201 string) or as the six ``EDGE_KEYS``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from robnas.spaces._attack import AttackConfig, attack_space
from robnas.spaces._cell import cell_space
from robnas.spaces._checks import ConfigError, check_choice
from robnas.spaces._defaults import DATASET_DEFAULTS, DATASETS
from robnas.spaces._evaluation import EvalConfig
from robnas.spaces._genotype import EDGE_KEYS, Genotype
from robnas.spaces._macro import MacroConfig, macro_space
from robnas.spaces._sparsity import SparsityConfig, sparsity_space
from robnas.spaces._suggest import did_you_mean
from robnas.spaces._training import TrainingConfig

__all__ = [
    "CONFIG_FIELDS",
    "CONFIG_KEYS",
    "DATASETS",
    "DATASET_DEFAULTS",
    "DEFAULT_ARCH",
    "SPACE_PARTS",
    "ConfigField",
    "TrialConfig",
    "build_space",
    "decode",
    "encode",
    "uses_own_step",
]

#: Cell of a trial whose config names none.
DEFAULT_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


#: TrialConfig field -> its configuration class (the sections of the flat keys).
_SECTIONS: dict[str, type] = {
    "macro": MacroConfig,
    "sparsity": SparsityConfig,
    "attack": AttackConfig,
    "evaluation": EvalConfig,
    "training": TrainingConfig,
}


@dataclass(frozen=True)
class TrialConfig:
    """Everything that defines one trial; ``TrialConfig()`` equals ``decode({})``."""

    genotype: Genotype = field(default_factory=lambda: Genotype.from_str(DEFAULT_ARCH))
    macro: MacroConfig = field(default_factory=MacroConfig)
    sparsity: SparsityConfig = field(default_factory=SparsityConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def __post_init__(self) -> None:
        for name, cls in (("genotype", Genotype), *_SECTIONS.items()):
            value = getattr(self, name)
            if not isinstance(value, cls):
                raise ValueError(f"TrialConfig.{name} must be a {cls.__name__}, got {value!r}")


class ConfigField(NamedTuple):
    """Where a flat config key goes: ``TrialConfig.<section>.<field>``, of Python ``type``."""

    section: str
    field: str
    type: type


#: Flat config key -> destination. Add a row (and the dataclass field) to extend the key set.
CONFIG_FIELDS: Mapping[str, ConfigField] = {
    "width": ConfigField("macro", "width", int),
    "cells_per_stage": ConfigField("macro", "cells_per_stage", int),
    "sparsity": ConfigField("sparsity", "target", float),
    "sparsity_schedule": ConfigField("sparsity", "schedule", str),
    "sparsity_granularity": ConfigField("sparsity", "granularity", str),
    "attack": ConfigField("attack", "method", str),
    "eps": ConfigField("attack", "eps", float),
    "attack_steps": ConfigField("attack", "steps", int),
    "step_size": ConfigField("attack", "step_size", float),  # None: FGSM-RS default
    "trades_beta": ConfigField("attack", "trades_beta", float),
    "eval_eps": ConfigField("evaluation", "eps", float),
    "eval_steps": ConfigField("evaluation", "steps", int),
    "eval_step_size": ConfigField("evaluation", "step_size", float),
    "eval_seed": ConfigField("evaluation", "seed", int),
    "eval_images": ConfigField("evaluation", "max_images", int),
    "eval_restarts": ConfigField("evaluation", "restarts", int),
    "eval_loss": ConfigField("evaluation", "loss", str),
    "eval_schedule": ConfigField("evaluation", "schedule", str),
    "dataset": ConfigField("training", "dataset", str),
    "data_dir": ConfigField("training", "data_dir", str),
    "max_epochs": ConfigField("training", "max_epochs", int),
    "batch_size": ConfigField("training", "batch_size", int),
    "lr": ConfigField("training", "lr", float),
    "momentum": ConfigField("training", "momentum", float),
    "weight_decay": ConfigField("training", "weight_decay", float),
    "seed": ConfigField("training", "seed", int),
    "augment": ConfigField("training", "augment", bool),
    "precision": ConfigField("training", "precision", str),
    "memory_format": ConfigField("training", "memory_format", str),
}

#: Every key ``decode`` accepts.
CONFIG_KEYS: tuple[str, ...] = ("arch", *EDGE_KEYS, *CONFIG_FIELDS)

_KEY_OF = {(dest.section, dest.field): key for key, dest in CONFIG_FIELDS.items()}


def decode(config: Mapping[str, Any], *, ignore: Collection[str] = ()) -> TrialConfig:
    """The ``TrialConfig`` of a flat config; keys in ``ignore`` are skipped.

    Missing keys take defaults; attack, evaluation and training defaults depend on ``dataset``
    (``DATASET_DEFAULTS``), except a missing ``step_size`` with ``attack="fgsm_rs"``, which is
    ``None`` (FGSM-RS's own 1.25 * eps). Numpy scalars are accepted.

    Raises:
        ValueError: on an unknown key, both or part of ``arch`` / the edge keys, or a value of
            the wrong type or out of range (the message names the key).
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"a trial config must be a mapping of flat keys, got {type(config).__name__}")
    if isinstance(ignore, str):
        raise ValueError(f"ignore must be a collection of key names, got the string {ignore!r}")
    present = {key: value for key, value in config.items() if key not in ignore}
    unknown = sorted((key for key in present if key not in CONFIG_KEYS), key=str)
    if unknown:
        raise ValueError(
            f"unknown config key(s) {', '.join(map(repr, unknown))}{did_you_mean(unknown[0], CONFIG_KEYS)}; "
            f"known keys: {', '.join(CONFIG_KEYS)}"
        )
    genotype = _decode_genotype(present)
    try:
        dataset = check_choice("TrainingConfig", "dataset", present.get("dataset", "digits"), DATASETS)
    except ConfigError as error:
        raise ValueError(f"config key 'dataset': {error}") from None
    defaults = DATASET_DEFAULTS[dataset]
    kwargs: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
    for key, dest in CONFIG_FIELDS.items():
        if key in present:
            kwargs[dest.section][dest.field] = present[key]
        elif key in defaults:
            kwargs[dest.section][dest.field] = defaults[key]
    if "step_size" not in present and uses_own_step(present):
        kwargs["attack"]["step_size"] = None  # FGSM-RS's own default, 1.25 * eps
    sections = {}
    for section, cls in _SECTIONS.items():
        try:
            sections[section] = cls(**kwargs[section])
        except ConfigError as error:
            key = _KEY_OF.get((section, error.field), error.field)
            raise ValueError(f"config key {key!r}: {error}") from None
    return TrialConfig(genotype=genotype, **sections)


def uses_own_step(config: Mapping[str, Any]) -> bool:
    """Whether a flat config that gives no ``step_size`` gets its attack's own step (FGSM-RS:
    ``None``, 1.25 * eps) instead of the data set's default."""
    return config.get("attack") == "fgsm_rs"


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


def encode(trial: TrialConfig) -> dict[str, Any]:
    """The flat config of ``trial`` (cell as ``arch``); ``decode(encode(t)) == t``."""
    if not isinstance(trial, TrialConfig):
        raise ValueError(f"encode needs a TrialConfig, got {type(trial).__name__}")
    flat: dict[str, Any] = {"arch": trial.genotype.to_str()}
    for key, dest in CONFIG_FIELDS.items():
        flat[key] = getattr(getattr(trial, dest.section), dest.field)
    return flat


def _cell_part(*, dataset: str) -> dict[str, Any]:
    return cell_space()


def _macro_part(*, dataset: str) -> dict[str, Any]:
    return macro_space()


def _sparsity_part(*, dataset: str) -> dict[str, Any]:
    return sparsity_space()


#: Part name -> function ``(*, dataset) -> dict of Ray Tune domains`` with its default domains.
SPACE_PARTS: dict[str, Callable[..., dict[str, Any]]] = {
    "cell": _cell_part,
    "macro": _macro_part,
    "sparsity": _sparsity_part,
    "attack": attack_space,
}


def build_space(
    parts: str | Sequence[str] = ("cell", "macro", "sparsity", "attack"), *, dataset: str = "digits"
) -> dict[str, Any]:
    """Ray Tune param space made of the named ``SPACE_PARTS`` (a sequence or ``"cell,macro"``).

    Keys absent from the space take ``decode``'s defaults for ``dataset``.
    """
    if isinstance(parts, str):
        names = [name.strip() for name in parts.split(",") if name.strip()]
    elif isinstance(parts, Sequence) and all(isinstance(name, str) for name in parts):
        names = list(parts)
    else:
        raise ValueError(f"parts must be a sequence of part names or a comma-separated string, got {parts!r}")
    if not names:
        raise ValueError(f"parts must name at least one of {', '.join(SPACE_PARTS)}")
    unknown = [name for name in names if name not in SPACE_PARTS]
    if unknown:
        raise ValueError(
            f"unknown space part(s) {', '.join(map(repr, unknown))}{did_you_mean(unknown[0], SPACE_PARTS)}; "
            f"allowed: {', '.join(SPACE_PARTS)}"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"space part(s) given more than once: {', '.join(repeated)}")
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known datasets: {', '.join(DATASETS)}")
    space: dict[str, Any] = {}
    for name in names:
        domains = SPACE_PARTS[name](dataset=dataset)
        clash = sorted(set(space) & set(domains))
        if clash:
            raise ValueError(f"space part {name!r} redefines key(s) {', '.join(clash)}")
        space.update(domains)
    return space
