"""Search spaces as Ray Tune domains and their decoding into typed trial configurations.

A space is a plain dict of Ray Tune domains composed from named parts (``cell``, ``macro``,
``resnet``, ``sparsity``, ``attack``, ``training``); ``decode(config)`` turns one sampled flat config into a
frozen ``TrialConfig``, whose network belongs to an architecture family (``FAMILIES``: ``nb201``,
``resnet``). Attack budgets are in units of 1/255.
"""

from robnas.spaces._attack import ATTACK_METHODS, AttackConfig, attack_space, budget_fraction
from robnas.spaces._cell import cell_space
from robnas.spaces._compose import (
    CONFIG_KEYS,
    DATASET_DEFAULTS,
    DATASETS,
    DEFAULT_ARCH,
    SPACE_PARTS,
    TrialConfig,
    build_space,
    decode,
    encode,
)
from robnas.spaces._evaluation import EVAL_LOSSES, EVAL_SCHEDULES, EvalConfig
from robnas.spaces._family import DEFAULT_FAMILY, FAMILIES, ArchFamily, family_named, family_of
from robnas.spaces._genotype import EDGE_KEYS, EDGES, OPS, Genotype
from robnas.spaces._keys import config_key
from robnas.spaces._macro import MacroConfig, macro_space
from robnas.spaces._nb201 import NB201Arch
from robnas.spaces._resnet import ResNetArch
from robnas.spaces._resnet_space import resnet_space
from robnas.spaces._resolve import fill_defaults, resolve_fixed
from robnas.spaces._objectives import (
    DEFAULT_OBJECTIVES,
    TRIAL_OBJECTIVES,
    Objective,
    default_direction,
    parse_objectives,
)
from robnas.spaces._robust_training import WEIGHT_AVERAGING, RobustTrainingConfig, robust_training_space
from robnas.spaces._runtime import RUNTIME_KEYS, scalarize
from robnas.spaces._sparsity import (
    DYNAMIC_SCHEDULES,
    SPARSITY_GRANULARITIES,
    SPARSITY_SCHEDULES,
    SparsityConfig,
    sparsity_space,
)
from robnas.spaces._training import MEMORY_FORMATS, PRECISIONS, TrainingConfig

__all__ = [
    "ATTACK_METHODS",
    "CONFIG_KEYS",
    "DATASETS",
    "DATASET_DEFAULTS",
    "DEFAULT_OBJECTIVES",
    "DEFAULT_ARCH",
    "DEFAULT_FAMILY",
    "EDGES",
    "EDGE_KEYS",
    "EVAL_LOSSES",
    "FAMILIES",
    "EVAL_SCHEDULES",
    "MEMORY_FORMATS",
    "OPS",
    "PRECISIONS",
    "RUNTIME_KEYS",
    "SPACE_PARTS",
    "DYNAMIC_SCHEDULES",
    "SPARSITY_GRANULARITIES",
    "SPARSITY_SCHEDULES",
    "TRIAL_OBJECTIVES",
    "ArchFamily",
    "WEIGHT_AVERAGING",
    "AttackConfig",
    "Objective",
    "EvalConfig",
    "Genotype",
    "MacroConfig",
    "NB201Arch",
    "ResNetArch",
    "RobustTrainingConfig",
    "SparsityConfig",
    "TrainingConfig",
    "TrialConfig",
    "attack_space",
    "robust_training_space",
    "budget_fraction",
    "build_space",
    "cell_space",
    "config_key",
    "decode",
    "default_direction",
    "encode",
    "family_named",
    "family_of",
    "fill_defaults",
    "macro_space",
    "parse_objectives",
    "resnet_space",
    "resolve_fixed",
    "scalarize",
    "sparsity_space",
]
