"""L-inf robustness under AutoAttack (Croce & Hein, ICML 2020), through ``pyautoattack``.

``apgd``: APGD-CE then APGD-T, the first two attacks of AutoAttack's standard version with its
settings (100 iterations each, one restart, 9 target classes or ``num_classes - 1`` if fewer).
``autoattack``: the whole standard version (APGD-CE, APGD-T, FAB-T, Square with 5,000 queries).
Each attack runs only on the images every earlier one failed on, so an image counts as robust
only if it is classified correctly clean and after every attack.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = ["AUTOATTACK_VERSIONS", "AttackWarning", "autoattack_correct"]

#: robnas's attack name -> the AutoAttack attacks it runs, in order.
AUTOATTACK_VERSIONS = {"apgd": ("apgd-ce", "apgd-t"), "autoattack": ("apgd-ce", "apgd-t", "fab-t", "square")}
#: AutoAttack's standard number of target classes (APGD-T, FAB-T).
TARGET_CLASSES = 9
#: Images per batch. APGD's random starts are seeded per batch, so the batch size is part of
#: what makes two runs give the same numbers.
BATCH_SIZE = 250


class AttackWarning(UserWarning):
    """AutoAttack doubts its own result (e.g. zero gradients: a sign of gradient masking)."""


def autoattack_correct(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, attack: str = "apgd",
                       seed: int = 0, label: str = "AutoAttack") -> Tensor:
    """Per image of ``x`` (N, C, H, W) in [0, 1], labels ``y`` (N,): whether it is classified
    correctly clean and after every attack of ``attack`` at L-inf radius ``eps`` (a fraction of
    1, e.g. 8/255). Returns a bool tensor (N,).

    The model runs in eval mode (its modes are restored afterwards) and must return logits.
    AutoAttack seeds torch's global RNG with ``seed`` before every batch; the caller's RNG state
    is restored afterwards. Same model, data and seed: same flags, on the CPU. AutoAttack's
    warnings about its own reliability come back as :class:`AttackWarning`, once each, after
    ``label``.

    Raises:
        ValueError: an unknown ``attack``, or fewer than 4 classes (the targeted DLR loss of
            APGD-T compares the 4 largest logits).
    """
    import torch
    from pyautoattack import AutoAttack

    from robnas.trainables._pgd import attack_mode

    if attack not in AUTOATTACK_VERSIONS:
        raise ValueError(f"unknown attack {attack!r}; allowed: {', '.join(AUTOATTACK_VERSIONS)}")
    with attack_mode(model), torch.no_grad():
        num_classes = int(model(x[:1]).shape[1])
    if num_classes < 4:
        raise ValueError(f"{attack} needs at least 4 classes (APGD-T's targeted DLR loss), "
                         f"the model has {num_classes}; use the pgd attack")
    if eps == 0.0:
        with attack_mode(model), torch.no_grad():
            return torch.cat([model(x[i:i + BATCH_SIZE]).argmax(1) == y[i:i + BATCH_SIZE]
                              for i in range(0, len(x), BATCH_SIZE)])
    if attack == "apgd":
        runner = AutoAttack(model, attacks=list(AUTOATTACK_VERSIONS[attack]), version="custom",
                            norm="Linf", eps=float(eps), seed=int(seed), device="cpu")
        runner.apgd.n_restarts = 1  # what version="standard" sets for L-inf
        runner.apgd_targeted.n_restarts = 1
    else:
        runner = AutoAttack(model, version="standard", norm="Linf", eps=float(eps), seed=int(seed), device="cpu")
    runner.apgd_targeted.n_target_classes = min(TARGET_CLASSES, num_classes - 1)
    runner.fab.n_target_classes = min(TARGET_CLASSES, num_classes - 1)
    runner.verbose = False
    with attack_mode(model), torch.random.fork_rng(devices=[]), _warnings_of(runner.logger, label):
        _, y_adv = runner.run_standard_evaluation(x, y, batch_size=BATCH_SIZE)
    return y_adv == y


@contextlib.contextmanager
def _warnings_of(logger: logging.Logger, label: str) -> Iterator[None]:
    """Turn ``logger``'s warnings into one ``AttackWarning`` per distinct message."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = " ".join(record.getMessage().split())
            if record.levelno >= logging.WARNING and message not in messages:
                messages.append(message)

    handler, propagate = Collect(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    for message in messages:
        warnings.warn(f"{label}: {message}", AttackWarning, stacklevel=4)
