"""Short adversarial-training trials in PyTorch: network, data, attacks, pruning, trial files.

One epoch is one unit of fidelity. ``TrialRunner`` trains a trial one epoch at a time;
``train_epochs`` drives it from a checkpoint directory, epoch by epoch, without Ray
(``robnas.search.robust_trainable`` is the Ray Tune function trainable around it).
``robnas.trainables._layout`` owns a trial's files on disk and imports no torch, so that
``robnas.analysis`` reads runs without it: the public names here are imported on first use.
"""

from __future__ import annotations

from robnas.spaces._lazy import lazy_attributes

#: Public name -> private module, imported on first access.
_LAZY = {
    "evaluate_robustness": "_adversarial",
    "pgd_correct": "_adversarial",
    "training_loss": "_adversarial",
    "count_macs": "_counting",
    "count_parameters": "_counting",
    "Dataset": "_data",
    "DatasetError": "_data",
    "load_dataset": "_data",
    "load_split": "_data",
    "TrialEpochs": "_epochs",
    "train_epochs": "_epochs",
    "fgsm_rs": "_fgsm_rs",
    "CorruptCheckpointError": "_layout",
    "build_model": "_families",
    "network_sizes": "_families",
    "NB201Network": "_network",
    "build_network": "_network",
    "nb201_param_count": "_network",
    "pgd": "_pgd",
    "ResNet": "_resnet",
    "build_resnet": "_resnet",
    "resnet_sizes": "_resnet_count",
    "pgd_broken": "_pgd_eval",
    "MaskSet": "_pruning",
    "measured_sparsity": "_pruning",
    "scheduled_sparsity": "_pruning",
    "trades_loss": "_trades",
    "DivergedError": "_trial",
    "TrialRunner": "_trial",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
