"""Data set and optimiser settings of a trial."""

from __future__ import annotations

from dataclasses import dataclass

from robnas.spaces._checks import (
    ConfigError,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_optional_path,
)
from robnas.spaces._defaults import AUGMENTATIONS, DATASET_DEFAULTS, DATASETS, Augmentation

__all__ = ["MEMORY_FORMATS", "PRECISIONS", "TrainingConfig"]

_DIGITS = DATASET_DEFAULTS["digits"]

#: Number formats of a trial's forward passes: ``auto`` is bf16 autocast on CUDA, fp32 elsewhere.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
#: Memory layouts of a trial's network and images: ``auto`` is channels-last on CUDA, contiguous
#: (NCHW) elsewhere.
MEMORY_FORMATS: tuple[str, ...] = ("auto", "contiguous", "channels_last")


@dataclass(frozen=True)
class TrainingConfig:
    """How a trial trains: data set, length, batch size, SGD settings and augmentation.

    Attributes:
        dataset: one of ``DATASETS``.
        data_dir: directory (or file, for ``npz``) holding the data; ``None`` for the default.
        max_epochs: epochs of the full budget (>= 1).
        batch_size: training images per step (>= 1).
        lr: peak learning rate (> 0).
        momentum: SGD momentum in [0, 1).
        weight_decay: L2 penalty (>= 0).
        seed: seed of initialisation, data order, augmentation and attack noise (>= 0).
        augment: augment every training batch with the data set's ``AUGMENTATIONS`` entry
            (random crop, flip) before the attack; only for data sets that have one.
        precision: one of ``PRECISIONS``; the number format of every forward pass (training,
            attacks, evaluation). Losses, gradients, attack steps and weights stay fp32.
        memory_format: one of ``MEMORY_FORMATS``; the layout of the network and its inputs.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    max_epochs: int = _DIGITS["max_epochs"]
    batch_size: int = _DIGITS["batch_size"]
    lr: float = _DIGITS["lr"]
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    augment: bool = _DIGITS["augment"]
    precision: str = "auto"
    memory_format: str = "auto"

    def __post_init__(self) -> None:
        owner = "TrainingConfig"
        checked = {
            "dataset": check_choice(owner, "dataset", self.dataset, DATASETS),
            "data_dir": check_optional_path(owner, "data_dir", self.data_dir),
            "max_epochs": check_int(owner, "max_epochs", self.max_epochs, minimum=1),
            "batch_size": check_int(owner, "batch_size", self.batch_size, minimum=1),
            "lr": check_float(owner, "lr", self.lr, low=0.0, low_open=True),
            "momentum": check_float(owner, "momentum", self.momentum, low=0.0, high=1.0, high_open=True),
            "weight_decay": check_float(owner, "weight_decay", self.weight_decay, low=0.0),
            "seed": check_int(owner, "seed", self.seed, minimum=0),
            "augment": check_bool(owner, "augment", self.augment),
            "precision": check_choice(owner, "precision", self.precision, PRECISIONS),
            "memory_format": check_choice(owner, "memory_format", self.memory_format, MEMORY_FORMATS),
        }
        if checked["augment"] and checked["dataset"] not in AUGMENTATIONS:
            raise ConfigError(
                owner, "augment", f"must be false for dataset {self.dataset!r}, which has no training "
                f"augmentation (datasets with one: {', '.join(AUGMENTATIONS)})"
            )
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def augmentation(self) -> Augmentation | None:
        """The augmentation applied to each training batch, ``None`` if ``augment`` is off."""
        return AUGMENTATIONS[self.dataset] if self.augment else None
