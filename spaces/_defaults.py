"""Dataset-dependent defaults of the flat trial configuration.

Attack budgets are in units of 1/255 of the pixel range. Step sizes follow Madry et al.'s rule
``step_size = 2.5 * eps / steps`` except for NAS-RobBench-201's training attack (PGD-7, step
2/255) and the cosine-scheduled evaluation PGD of digits, MNIST and Fashion-MNIST (below).

CIFAR-10, CIFAR-100, SVHN and ``npz`` follow the protocol of NAS-RobBench-201: NB201 macro
C=16, N=5; PGD-7 adversarial training at eps 8/255 with step 2/255; SGD with a one-cycle
learning rate peaking at 0.05, batch 256, 50 epochs; random 32x32 crops of the image padded by
4 pixels and horizontal flips (``AUGMENTATIONS``; SVHN is cropped, never flipped, and ``npz``
is augmented only when ``augment`` is set); and PGD-20 with step 2.5 * eps / 20 (1/255 at eps
8) as the robust accuracy measured after every epoch, here on the first 1,000 validation
images. MNIST and Fashion-MNIST keep Madry et al.'s budgets (eps 0.3 and 0.1) with a PGD-20
evaluation. Digits is a quick CPU default (PGD-10 evaluation).

The evaluation PGD's loss and step sizes (``eval_loss``, ``eval_schedule``, ``eval_step_size``):
the CIFAR-like rows keep NAS-RobBench-201's cross-entropy with a constant step 2.5 * eps / 20, so
that a per-epoch robust accuracy there is the benchmark's ``pgd`` number. Digits, MNIST and
Fashion-MNIST, which no published table fixes, take ``ce+margin`` (half the steps on the
untargeted margin) with steps decaying from 2 eps to near 0 along a cosine, at the same cost:
on digits networks of five kinds (``benchmarks/final_eval.py``) it came closest to the final
APGD-CE + APGD-T number.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

__all__ = ["AUGMENTATIONS", "DATASETS", "DATASET_DEFAULTS", "Augmentation", "dataset_default"]

#: Dataset names a trial may train on: ``digits`` ships with scikit-learn, the others are read
#: from ``data_dir`` (``npz``: a user file). ``robnas.trainables.load_dataset`` reads each.
DATASETS: tuple[str, ...] = ("digits", "cifar10", "cifar100", "svhn", "mnist", "fashion_mnist", "npz")


class Augmentation(NamedTuple):
    """Training augmentation: a random crop of the image's own size (H x W) out of the image
    zero-padded by ``crop_padding`` pixels per side, then a horizontal flip with probability 0.5
    if ``flip``."""

    crop_padding: int
    flip: bool


#: Dataset -> the augmentation a trial with ``augment: true`` applies to every training batch.
#: Data sets not listed (digits, MNIST, Fashion-MNIST) have none, and ``augment`` must stay false:
#: a mirrored digit is another glyph, and a crop of 4 of 8 pixels (digits) keeps half an image.
AUGMENTATIONS: Mapping[str, Augmentation] = MappingProxyType({
    "cifar10": Augmentation(crop_padding=4, flip=True),
    "cifar100": Augmentation(crop_padding=4, flip=True),
    # House numbers: cropped like CIFAR, never mirrored (a mirrored 2 or 5 is no digit).
    "svhn": Augmentation(crop_padding=4, flip=False),
    # A user's own images, treated as CIFAR when asked. Off by default: a flip is wrong for
    # digits, text or any image whose left and right differ in meaning, which robnas cannot tell.
    "npz": Augmentation(crop_padding=4, flip=True),
})


def _madry_step(eps: float, steps: int) -> float:
    """PGD step size (1/255 units) that lets ``steps`` steps travel 2.5 times ``eps``."""
    return 2.5 * eps / steps


#: First step of the digits, MNIST and Fashion-MNIST evaluation PGD (cosine schedule), times eps.
COSINE_FIRST_STEP = 2.0


def _budgets(eps: float, steps: int, eval_steps: int, *, step_size: float | None = None,
             nas_robbench: bool = False) -> dict[str, float | int | str]:
    """Attack and evaluation budgets at ``eps``; ``nas_robbench``: the benchmark's evaluation PGD
    (cross-entropy, constant step 2.5 * eps / eval_steps), else ``ce+margin`` with a cosine
    schedule from ``COSINE_FIRST_STEP * eps``."""
    return {
        "eps": eps,
        "attack_steps": steps,
        "step_size": _madry_step(eps, steps) if step_size is None else step_size,
        "eval_eps": eps,
        "eval_steps": eval_steps,
        "eval_step_size": _madry_step(eps, eval_steps) if nas_robbench else COSINE_FIRST_STEP * eps,
        "eval_loss": "ce" if nas_robbench else "ce+margin",
        "eval_schedule": "constant" if nas_robbench else "cosine",
    }


# NAS-RobBench-201 protocol: NB201 macro C=16, N=5, batch 256, lr 0.05 (one-cycle), 50 epochs;
# robnas measures robust accuracy on 1,000 validation images per epoch.
_PROTOCOL = {"width": 16, "cells_per_stage": 5, "max_epochs": 50, "batch_size": 256, "lr": 0.05, "eval_images": 1000,
             "sparsity_update_every": 100}  # RigL's mask-update interval, in optimiser steps
# PGD-7 step 2/255 for training; PGD-20 step 2.5 * 8 / 20 = 1/255 for evaluation.
# PGD-20 on cross-entropy, as the benchmark's ``pgd`` column.
_CIFAR_LIKE = {**_budgets(8.0, 7, 20, step_size=2.0, nas_robbench=True), **_PROTOCOL, "augment": True}

#: Dataset name -> flat config key -> default value. Keys not listed here take the defaults of
#: the configuration dataclasses, which equal the ``digits`` row.
DATASET_DEFAULTS: Mapping[str, Mapping[str, float | int | bool | str]] = MappingProxyType({
    # 8x8 digits: a short search on the CPU (4 epochs a trial); eps 0.1 of the pixel range.
    "digits": MappingProxyType({
        **_budgets(25.5, 7, 10),
        "width": 8, "cells_per_stage": 1,
        "max_epochs": 4, "batch_size": 64, "lr": 0.05, "eval_images": 0, "augment": False,
    }),
    "cifar10": MappingProxyType(dict(_CIFAR_LIKE)),
    "cifar100": MappingProxyType(dict(_CIFAR_LIKE)),
    "svhn": MappingProxyType(dict(_CIFAR_LIKE)),
    "npz": MappingProxyType({**_CIFAR_LIKE, "augment": False}),  # see AUGMENTATIONS
    # Madry et al.: eps 0.3 on MNIST; 0.1 on Fashion-MNIST; PGD-20 evaluation (ce+margin, cosine steps).
    "mnist": MappingProxyType({**_budgets(76.5, 10, 20), **_PROTOCOL, "augment": False}),
    "fashion_mnist": MappingProxyType({**_budgets(25.5, 10, 20), **_PROTOCOL, "augment": False}),
})

if set(DATASET_DEFAULTS) != set(DATASETS) or not set(AUGMENTATIONS) <= set(DATASETS):  # pragma: no cover
    raise RuntimeError("DATASET_DEFAULTS must have one row per name in DATASETS; AUGMENTATIONS only known names")


def dataset_default(dataset: str, key: str) -> float | int | bool | str:
    """Default of flat config ``key`` for ``dataset``."""
    if dataset not in DATASET_DEFAULTS:
        raise ValueError(f"unknown dataset {dataset!r}; known datasets: {', '.join(DATASETS)}")
    return DATASET_DEFAULTS[dataset][key]
