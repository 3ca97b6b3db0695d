"""Short adversarial-training trials in PyTorch: network, data, attacks, pruning, trainable.

One epoch is one unit of fidelity; ``robust_trainable`` is the Ray Tune function trainable
and ``TrialRunner`` the same trial without Ray.
"""

from robnas.trainables._adversarial import evaluate_robustness, training_loss
from robnas.trainables._counting import count_macs, count_parameters
from robnas.trainables._data import DATASET_NAMES, Dataset, DatasetError, load_dataset
from robnas.trainables._fgsm_rs import fgsm_rs
from robnas.trainables._network import NB201Network, build_network, nb201_param_count
from robnas.trainables._pgd import pgd
from robnas.trainables._pruning import MaskSet, measured_sparsity, scheduled_sparsity
from robnas.trainables._trades import trades_loss
from robnas.trainables._trial import DivergedError, TrialRunner
from robnas.trainables._tune import robust_trainable

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "DatasetError",
    "DivergedError",
    "MaskSet",
    "NB201Network",
    "TrialRunner",
    "build_network",
    "count_macs",
    "count_parameters",
    "evaluate_robustness",
    "fgsm_rs",
    "load_dataset",
    "measured_sparsity",
    "nb201_param_count",
    "pgd",
    "robust_trainable",
    "scheduled_sparsity",
    "trades_loss",
    "training_loss",
]
