"""Short adversarial-training trials in PyTorch: network, data, attacks, pruning, trial files.

One epoch is one unit of fidelity. ``TrialRunner`` trains a trial one epoch at a time;
``train_epochs`` drives it from a checkpoint directory, epoch by epoch, without Ray
(``robnas.search.robust_trainable`` is the Ray Tune function trainable around it).
``robnas.trainables._layout`` owns a trial's files on disk.
"""

from robnas.trainables._adversarial import evaluate_robustness, training_loss
from robnas.trainables._counting import count_macs, count_parameters
from robnas.trainables._data import Dataset, DatasetError, load_dataset
from robnas.trainables._epochs import TrialEpochs, train_epochs
from robnas.trainables._fgsm_rs import fgsm_rs
from robnas.trainables._layout import CorruptCheckpointError
from robnas.trainables._network import NB201Network, build_network, nb201_param_count
from robnas.trainables._pgd import pgd
from robnas.trainables._pruning import MaskSet, measured_sparsity, scheduled_sparsity
from robnas.trainables._trades import trades_loss
from robnas.trainables._trial import DivergedError, TrialRunner

__all__ = [
    "CorruptCheckpointError",
    "Dataset",
    "DatasetError",
    "DivergedError",
    "MaskSet",
    "NB201Network",
    "TrialEpochs",
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
    "scheduled_sparsity",
    "trades_loss",
    "train_epochs",
    "training_loss",
]
