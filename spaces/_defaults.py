"""Dataset-dependent defaults of the flat trial configuration.

Attack budgets are in units of 1/255 of the pixel range. Step sizes follow Madry et al.'s rule
``step_size = 2.5 * eps / steps`` except for the CIFAR-like protocol of NAS-RobBench-201
(PGD-7, step 2/255 for training; PGD-10, step 2/255 for evaluation at eps 8/255).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["DATASETS", "DATASET_DEFAULTS", "dataset_default"]

#: Dataset names a trial may train on: ``digits`` ships with scikit-learn, the others are read
#: from ``data_dir`` (``npz``: a user file). ``robnas.trainables.load_dataset`` reads each.
DATASETS: tuple[str, ...] = ("digits", "cifar10", "cifar100", "svhn", "mnist", "fashion_mnist", "npz")


def _madry_step(eps: float, steps: int) -> float:
    """PGD step size (1/255 units) that lets ``steps`` steps travel 2.5 times ``eps``."""
    return 2.5 * eps / steps


def _budgets(eps: float, steps: int, eval_steps: int, *, step_size: float | None = None,
             eval_step_size: float | None = None) -> dict[str, float | int]:
    return {
        "eps": eps,
        "attack_steps": steps,
        "step_size": _madry_step(eps, steps) if step_size is None else step_size,
        "eval_eps": eps,
        "eval_steps": eval_steps,
        "eval_step_size": _madry_step(eps, eval_steps) if eval_step_size is None else eval_step_size,
    }


# NAS-RobBench-201 protocol: NB201 macro C=16, N=5, batch 256, lr 0.05 (one-cycle), 50 epochs, eval on 1000 images.
_PROTOCOL = {"width": 16, "cells_per_stage": 5, "max_epochs": 50, "batch_size": 256, "lr": 0.05, "eval_images": 1000}
_CIFAR_LIKE = {**_budgets(8.0, 7, 10, step_size=2.0, eval_step_size=2.0), **_PROTOCOL}

#: Dataset name -> flat config key -> default value. Keys not listed here take the defaults of
#: the configuration dataclasses, which equal the ``digits`` row.
DATASET_DEFAULTS: Mapping[str, Mapping[str, float | int]] = MappingProxyType({
    # 8x8 digits: a short search on the CPU (4 epochs a trial); eps 0.1 of the pixel range.
    "digits": MappingProxyType({
        **_budgets(25.5, 7, 10),
        "width": 8, "cells_per_stage": 1,
        "max_epochs": 4, "batch_size": 64, "lr": 0.05, "eval_images": 0,
    }),
    "cifar10": MappingProxyType(dict(_CIFAR_LIKE)),
    "cifar100": MappingProxyType(dict(_CIFAR_LIKE)),
    "svhn": MappingProxyType(dict(_CIFAR_LIKE)),
    "npz": MappingProxyType(dict(_CIFAR_LIKE)),
    # Madry et al.: eps 0.3 on MNIST; 0.1 on Fashion-MNIST.
    "mnist": MappingProxyType({**_budgets(76.5, 10, 20), **_PROTOCOL}),
    "fashion_mnist": MappingProxyType({**_budgets(25.5, 10, 20), **_PROTOCOL}),
})

if set(DATASET_DEFAULTS) != set(DATASETS):  # pragma: no cover - guards edits of the table
    raise RuntimeError("DATASET_DEFAULTS must have one row per name in DATASETS")


def dataset_default(dataset: str, key: str) -> float | int:
    """Default of flat config ``key`` for ``dataset``."""
    if dataset not in DATASET_DEFAULTS:
        raise ValueError(f"unknown dataset {dataset!r}; known datasets: {', '.join(DATASETS)}")
    return DATASET_DEFAULTS[dataset][key]
