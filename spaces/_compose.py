"""A whole trial: the typed ``TrialConfig``, its flat dict form, and the composed search space.

The flat form is what Ray Tune passes to a trainable: one key per field (``CONFIG_FIELDS``) plus
the network's keys, read by its architecture family (``family``, default ``nb201``: the cell as
``arch`` or as the six ``EDGE_KEYS``, ``width`` and ``cells_per_stage``; see
``robnas.spaces._family``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from robnas.spaces._attack import AttackConfig, attack_space
from robnas.spaces._cell import cell_space
from robnas.spaces._checks import ConfigError, check_choice
from robnas.spaces._defaults import DATASET_DEFAULTS, DATASETS
from robnas.spaces._evaluation import EvalConfig
from robnas.spaces._family import DEFAULT_FAMILY, FAMILIES, FAMILY_KEYS, family_named, family_of
from robnas.spaces._genotype import Genotype
from robnas.spaces._macro import MacroConfig, macro_space
from robnas.spaces._nb201 import DEFAULT_ARCH, NB201Arch
from robnas.spaces._resnet_space import resnet_space
from robnas.spaces._robust_training import RobustTrainingConfig, robust_training_space
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

#: TrialConfig field -> its configuration class (the sections of the flat keys).
_SECTIONS: dict[str, type] = {
    "sparsity": SparsityConfig,
    "attack": AttackConfig,
    "evaluation": EvalConfig,
    "training": TrainingConfig,
    "robust": RobustTrainingConfig,
}


@dataclass(frozen=True)
class TrialConfig:
    """Everything that defines one trial; ``TrialConfig()`` equals ``decode({})``.

    ``network`` is a family's network description (``NB201Arch``, ``ResNetArch``).
    """

    network: Any = field(default_factory=NB201Arch)
    sparsity: SparsityConfig = field(default_factory=SparsityConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    robust: RobustTrainingConfig = field(default_factory=RobustTrainingConfig)

    def __post_init__(self) -> None:
        try:
            family_of(self.network)
        except ValueError:
            kinds = ", ".join(family.network_type.__name__ for family in FAMILIES.values())
            raise ValueError(f"TrialConfig.network must be one of {kinds}, got {self.network!r}") from None
        for name, cls in _SECTIONS.items():
            value = getattr(self, name)
            if not isinstance(value, cls):
                raise ValueError(f"TrialConfig.{name} must be a {cls.__name__}, got {value!r}")

    @property
    def family(self) -> str:
        """Name of the network's architecture family."""
        return self.network.family

    @property
    def genotype(self) -> Genotype:
        """The NB201 cell (NB201 networks only)."""
        return self._nb201().genotype

    @property
    def macro(self) -> MacroConfig:
        """The NB201 macro skeleton (NB201 networks only)."""
        return self._nb201().macro

    def _nb201(self) -> NB201Arch:
        if not isinstance(self.network, NB201Arch):
            raise ValueError(f"a {self.family} network has no NB201 cell or macro skeleton")
        return self.network


class ConfigField(NamedTuple):
    """Where a flat config key goes: ``TrialConfig.<section>.<field>``, of Python ``type``."""

    section: str
    field: str
    type: type


#: Flat config key -> destination. Add a row (and the dataclass field) to extend the key set.
CONFIG_FIELDS: Mapping[str, ConfigField] = {
    "sparsity": ConfigField("sparsity", "target", float),
    "sparsity_schedule": ConfigField("sparsity", "schedule", str),
    "sparsity_granularity": ConfigField("sparsity", "granularity", str),
    "sparsity_drop_fraction": ConfigField("sparsity", "drop_fraction", float),
    "sparsity_update_every": ConfigField("sparsity", "update_every", int),
    "sup_tickets": ConfigField("sparsity", "sup_tickets", bool),
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
    "awp_gamma": ConfigField("robust", "awp_gamma", float),
    "weight_averaging": ConfigField("robust", "weight_averaging", str),
    "ema_decay": ConfigField("robust", "ema_decay", float),
    "wot_segments": ConfigField("robust", "wot_segments", int),
    "part": ConfigField("robust", "part", bool),
    "part_eps_low": ConfigField("robust", "part_eps_low", float),
    "stop_on_overfit": ConfigField("robust", "stop_on_overfit", bool),
}

#: Every key ``decode`` accepts: the families' keys, ``family``, then ``CONFIG_FIELDS``.
CONFIG_KEYS: tuple[str, ...] = (*FAMILY_KEYS, "family", *CONFIG_FIELDS)

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
    try:
        dataset = check_choice("TrainingConfig", "dataset", present.get("dataset", "digits"), DATASETS)
    except ConfigError as error:
        raise ValueError(f"config key 'dataset': {error}") from None
    defaults = DATASET_DEFAULTS[dataset]
    network = _decode_network(present, dataset, defaults)
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
    return TrialConfig(network=network, **sections)


def uses_own_step(config: Mapping[str, Any]) -> bool:
    """Whether a flat config that gives no ``step_size`` gets its attack's own step (FGSM-RS:
    ``None``, 1.25 * eps) instead of the data set's default."""
    return config.get("attack") == "fgsm_rs"


def _decode_network(config: Mapping[str, Any], dataset: str, defaults: Mapping[str, Any]) -> Any:
    """The network of a flat config, read by its family; another family's key is an error."""
    family = family_named(config.get("family", DEFAULT_FAMILY))
    foreign = [key for key in config if key in FAMILY_KEYS and key not in family.keys]
    if foreign:
        owners = [name for name, other in FAMILIES.items() if foreign[0] in other.keys]
        raise ValueError(f"config key {foreign[0]!r} belongs to the {'/'.join(owners)} family, "
                         f"not to this config's family {family.name!r}")
    return family.decode(config, dataset=dataset, defaults=defaults)


def encode(trial: TrialConfig) -> dict[str, Any]:
    """The flat config of ``trial`` (``family`` unless the default, the family's keys, then
    ``CONFIG_FIELDS``); ``decode(encode(t)) == t``."""
    if not isinstance(trial, TrialConfig):
        raise ValueError(f"encode needs a TrialConfig, got {type(trial).__name__}")
    family = family_of(trial.network)
    flat: dict[str, Any] = {} if family.name == DEFAULT_FAMILY else {"family": family.name}
    flat.update(family.encode(trial.network))
    for key, dest in CONFIG_FIELDS.items():
        flat[key] = getattr(getattr(trial, dest.section), dest.field)
    return flat


def _cell_part(*, dataset: str, **options: Any) -> dict[str, Any]:
    return cell_space(**options)


def _macro_part(*, dataset: str, **options: Any) -> dict[str, Any]:
    return macro_space(**options)


def _resnet_part(*, dataset: str, **options: Any) -> dict[str, Any]:
    return resnet_space(dataset=dataset, **options)


def _sparsity_part(*, dataset: str, **options: Any) -> dict[str, Any]:
    return sparsity_space(**options)


#: Part name -> function ``(*, dataset, **options) -> dict of Ray Tune domains``; without options,
#: its default domains (the options are the keyword arguments of ``cell_space``, ``macro_space``,
#: ``sparsity_space``, ``attack_space``, ``resnet_space``).
SPACE_PARTS: dict[str, Callable[..., dict[str, Any]]] = {
    "cell": _cell_part,
    "macro": _macro_part,
    "sparsity": _sparsity_part,
    "attack": attack_space,
    "resnet": _resnet_part,
    "training": robust_training_space,
}


def build_space(
    parts: str | Sequence[str] = ("cell", "macro", "sparsity", "attack"),
    *,
    dataset: str = "digits",
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Ray Tune param space made of the named ``SPACE_PARTS`` (a sequence or ``"cell,macro"``).

    Keys absent from the space take ``decode``'s defaults for ``dataset``. ``options``: part
    name -> keyword arguments of its function, e.g. ``{"resnet": {"depths": [1, 3]}}``.
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
    options = _check_options(options or {}, names)
    space: dict[str, Any] = {}
    for name in names:
        try:
            domains = SPACE_PARTS[name](dataset=dataset, **options.get(name, {}))
        except TypeError as error:  # an option the part's function does not take
            unknown = re.search(r"keyword argument '(\w+)'", str(error))
            what = f"has no option {unknown[1]!r}" if unknown else f"cannot take its options ({error})"
            raise ValueError(f"space part {name!r} {what}") from None
        clash = sorted(set(space) & set(domains))
        if clash:
            raise ValueError(f"space part {name!r} redefines key(s) {', '.join(clash)}")
        space.update(domains)
    return space


def _check_options(options: Any, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``options`` as part name -> keyword arguments, every part among ``names``."""
    if not isinstance(options, Mapping) or not all(isinstance(v, Mapping) for v in options.values()):
        raise ValueError(f"space options must map a part name to a mapping of options, got {options!r}")
    unused = [name for name in options if name not in names]
    if unused:
        raise ValueError(f"space options for part(s) {', '.join(map(repr, unused))} not in the space "
                         f"({', '.join(names)})")
    return {name: {str(k): v for k, v in given.items()} for name, given in options.items()}
