"""A trial configuration as a fixed-length feature vector, for the surrogate ranker.

``encode_config(config)`` reads a flat config (the keys ``robnas.spaces.decode`` accepts, plus
the trainable's runtime keys such as ``score_weights``, which are skipped) and returns a float
array of length ``len(FEATURE_NAMES)``. The cell enters by its canonical form, so isomorphic
cells get the same vector:

* ``op[e]=o``: one-hot of op ``o`` on edge ``e`` (6 edges x 5 ops);
* ``count[o]``: edges carrying ``o``;
* ``paths``, ``max_convs``, ``max_conv3x3``, ``sum_convs``, ``max_depth``, ``conv_free_paths``:
  over the input -> output paths of non-``none`` edges, their number, the most convolutions
  (and 3x3 convolutions) on one path, the convolutions summed over paths, the longest path
  in edges, and the paths without a convolution;
* macro: ``log2_width``, ``cells_per_stage``;
* sparsity: ``sparsity`` (target), ``sparsity_effective`` (0 when dense), one-hot schedule and
  granularity, and for an active dynamic schedule (else 0) ``sparsity_drop_fraction``,
  ``log2_update_every`` (optimiser steps) and ``sup_tickets`` (0 or 1);
* attack: one-hot method, ``eps``, ``attack_steps``, ``step_size`` (1/255 units; FGSM-RS's own
  1.25 * eps when not given), ``trades_beta`` (0 unless TRADES).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from robnas.spaces._attack import ATTACK_METHODS
from robnas.spaces._compose import TrialConfig, decode
from robnas.spaces._genotype import EDGE_KEYS
from robnas.spaces._isomorphism import EDGES, NUM_NODES, OPS
from robnas.spaces._runtime import RUNTIME_KEYS
from robnas.spaces._sparsity import SPARSITY_GRANULARITIES, SPARSITY_SCHEDULES

__all__ = ["CELL_FEATURES", "FEATURE_NAMES", "cell_features", "decode_trial", "encode_config", "encode_trial"]

_PATH_FEATURES = ("paths", "max_convs", "max_conv3x3", "sum_convs", "max_depth", "conv_free_paths")

CELL_FEATURES: tuple[str, ...] = (
    *(f"op[{key}]={op}" for key in EDGE_KEYS for op in OPS),
    *(f"count[{op}]" for op in OPS),
    *_PATH_FEATURES,
)

FEATURE_NAMES: tuple[str, ...] = (
    *CELL_FEATURES,
    "log2_width",
    "cells_per_stage",
    "sparsity",
    "sparsity_effective",
    *(f"schedule={s}" for s in SPARSITY_SCHEDULES),
    *(f"granularity={g}" for g in SPARSITY_GRANULARITIES),
    "sparsity_drop_fraction",
    "log2_update_every",
    "sup_tickets",
    *(f"attack={m}" for m in ATTACK_METHODS),
    "eps",
    "attack_steps",
    "step_size",
    "trades_beta",
)


def decode_trial(config: Mapping[str, Any]) -> TrialConfig:
    """``decode`` of a Tune config, skipping the runtime keys (``RUNTIME_KEYS``)."""
    return decode(config, ignore=RUNTIME_KEYS)


def _paths(ops: tuple[str, ...]) -> list[list[str]]:
    """Op lists of every path from node 0 to the output node along non-``none`` edges."""
    found: list[list[str]] = []

    def walk(node: int, ops_so_far: list[str]) -> None:
        if node == NUM_NODES - 1:
            found.append(ops_so_far)
            return
        for (to_node, from_node), op in zip(EDGES, ops):
            if from_node == node and op != "none":
                walk(to_node, [*ops_so_far, op])

    walk(0, [])
    return found


def cell_features(ops: tuple[str, ...]) -> list[float]:
    """The ``CELL_FEATURES`` of a cell given by its six ops (use the canonical form)."""
    one_hot = [float(op == name) for op in ops for name in OPS]
    counts = [float(ops.count(name)) for name in OPS]
    paths = _paths(ops)
    convs = [sum(op.startswith("nor_conv") for op in p) for p in paths]
    conv3 = [sum(op == "nor_conv_3x3" for op in p) for p in paths]
    path_features = [
        len(paths),
        max(convs, default=0),
        max(conv3, default=0),
        sum(convs),
        max((len(p) for p in paths), default=0),
        sum(c == 0 for c in convs),
    ]
    return one_hot + counts + [float(v) for v in path_features]


def encode_trial(trial: TrialConfig) -> np.ndarray:
    """Float64 array ``(len(FEATURE_NAMES),)`` of a decoded trial."""
    sparsity, attack = trial.sparsity, trial.attack
    step_size = 1.25 * attack.eps if attack.step_size is None else attack.step_size
    values = [
        *cell_features(trial.genotype.canonical().ops),
        math.log2(trial.macro.width),
        float(trial.macro.cells_per_stage),
        sparsity.target,
        sparsity.target if sparsity.active else 0.0,
        *(float(sparsity.schedule == s) for s in SPARSITY_SCHEDULES),
        *(float(sparsity.granularity == g) for g in SPARSITY_GRANULARITIES),
        sparsity.drop_fraction if sparsity.dynamic else 0.0,
        math.log2(sparsity.update_every) if sparsity.dynamic else 0.0,
        float(sparsity.dynamic and sparsity.sup_tickets),
        *(float(attack.method == m) for m in ATTACK_METHODS),
        attack.eps,
        float(attack.steps),
        step_size,
        attack.trades_beta if attack.method == "trades" else 0.0,
    ]
    return np.asarray(values, dtype=float)


def encode_config(config: Mapping[str, Any]) -> np.ndarray:
    """Float64 array ``(len(FEATURE_NAMES),)`` of a flat config; ``ValueError`` on a bad one."""
    return encode_trial(decode_trial(config))
