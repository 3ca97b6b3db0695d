"""One adversarial-training trial, run epoch by epoch, with exact checkpoints.

``TrialRunner`` owns everything a trial needs: the decoded network, the optimiser and its
learning-rate schedule, the pruning masks and one ``torch.Generator`` for data order,
augmentation (crops, flips) and attack random starts; a dynamic sparsity schedule adds its own
generator (seeded with ``seed + 2``, so data order does not depend on the schedule) and step counter. ``state_dict()`` captures all of it, so a
run restored after epoch k reports the same metrics at every later epoch as the uninterrupted
run with the same seed, on the same device and precision.

The data set lives on the trial's device; on CUDA the network runs in bf16 autocast and
channels-last by default (``precision``, ``memory_format``; see ``_precision``), and the batch
draws of an epoch come from a generator on the device, seeded from the trial's CPU generator at
the start of the epoch, so no batch copies random numbers to the GPU or waits for it: the loss
is summed on the device and read once per epoch.

The robust-training methods of ``config.robust`` plug in here: the adversarial weight
perturbation around each step (``_awp``), the averaged weights that evaluation and the
reported size use (``_weight_average``), the trajectory reweighting (``_wot``, fitted on the
first training batch, which a WOT trial then holds out of training), the per-pixel budgets of
PART (``_part``), and FGSM-RS's catastrophic-overfitting check
(``_overfit``).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robnas.spaces._compose import TrialConfig
from robnas.spaces._attack import budget_fraction
from robnas.trainables._adversarial import batch_loss, evaluate_robustness, training_examples
from robnas.trainables._augment import augment
from robnas.trainables._awp import awp_perturbation
from robnas.trainables._counting import count_macs, count_parameters
from robnas.trainables._data import Dataset, load_dataset
from robnas.trainables._device import use_deterministic_kernels
from robnas.trainables._dynamic_sparsity import SEED_OFFSET, DynamicSparsity
from robnas.trainables._layout import read_checkpoint, unreadable, write_checkpoint
from robnas.trainables._families import build_model
from robnas.trainables._overfit import OverfitCheck
from robnas.trainables._part import part_training_examples
from robnas.trainables._precision import PrecisionForward, resolve_memory_format, resolve_precision
from robnas.trainables._pruning import MaskSet, measured_sparsity, scheduled_sparsity
from robnas.trainables._weight_average import EmaWeights
from robnas.trainables._wot import WotTrajectory, adversarial_fit_loss, reestimate_batch_norm

__all__ = ["DivergedError", "TrialRunner"]


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class TrialRunner:
    """Adversarially train one decoded configuration, one epoch per ``run_epoch()`` call.

    Args:
        config: the decoded trial configuration.
        dataset: an already loaded data set (default: load ``config.training.dataset``).
        device: torch device for the model and data.
    """

    def __init__(
        self,
        config: TrialConfig,
        *,
        dataset: Dataset | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        training = config.training
        #: ``"fp32"`` or ``"bf16"``, and ``"contiguous"`` or ``"channels_last"``: the trial's keys
        #: resolved for its device.
        self.precision = resolve_precision(training.precision, self.device)
        self.memory_format = resolve_memory_format(training.memory_format, self.device)
        use_deterministic_kernels(self.device)
        layout = torch.channels_last if self.memory_format == "channels_last" else torch.contiguous_format
        data = dataset or load_dataset(training.dataset, training.data_dir)
        self.x_train = data.x_train.to(self.device, memory_format=layout)
        self.y_train = data.y_train.to(self.device)
        # Every per-epoch number is measured on the validation split; test is for the final evaluation.
        self.x_val, self.y_val = data.x_val.to(self.device, memory_format=layout), data.y_val.to(self.device)
        self.input_shape = tuple(data.x_train.shape[1:])
        if config.robust.weight_averaging == "wot":  # WOT's held-out images: the first batch
            held_out = training.batch_size
            self.x_fit, self.y_fit = self.x_train[:held_out], self.y_train[:held_out]
            self.x_train, self.y_train = self.x_train[held_out:], self.y_train[held_out:]

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(training.seed)
            self.model: nn.Module = build_model(
                config.network, in_channels=self.input_shape[0], num_classes=data.num_classes,
            ).to(self.device)
        #: The network as every forward pass runs it: in ``precision``, with fp32 logits.
        self.forward_model = PrecisionForward(self.model, precision=self.precision,
                                              memory_format=self.memory_format, device_type=self.device.type)
        self.macs = count_macs(self.model, self.input_shape)
        self.steps_per_epoch = math.ceil(len(self.x_train) / training.batch_size)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=training.lr,
            momentum=training.momentum,
            weight_decay=training.weight_decay,
            nesterov=training.momentum > 0,
        )
        # One-cycle schedule over the trial's full budget, as NAS-RobBench-201 trains.
        self.lr_schedule = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer,
            max_lr=training.lr,
            total_steps=training.max_epochs * self.steps_per_epoch,
        )
        self.masks = MaskSet.for_model(self.model, config.sparsity.granularity)
        #: SET / RigL mask updates (``None`` unless the schedule is dynamic and the target > 0).
        self.dynamic_sparsity: DynamicSparsity | None = None
        if config.sparsity.dynamic:
            self.dynamic_sparsity = DynamicSparsity(
                config.sparsity, total_steps=training.max_epochs * self.steps_per_epoch,
                seed=training.seed + SEED_OFFSET, lr=training.lr,
            )
            self.dynamic_sparsity.start(self.model, self.masks)
        self.generator = torch.Generator(device="cpu").manual_seed(training.seed + 1)
        self.epoch = 0
        robust = config.robust
        #: The moving average of the weights (``weight_averaging: ema``), else ``None``.
        self.averaged = EmaWeights(self.model, robust.ema_decay) if robust.weight_averaging == "ema" else None
        #: The network evaluation and the reported size use: the averaged one if any.
        self.eval_model = self.forward_model if self.averaged is None else PrecisionForward(
            self.averaged.model, precision=self.precision, memory_format=self.memory_format,
            device_type=self.device.type)
        #: The trajectory of a WOT trial, else ``None``.
        self.wot = (WotTrajectory(self.model, segments=robust.wot_segments,
                                  gap=max(1, self.steps_per_epoch // robust.wot_segments))
                    if robust.weight_averaging == "wot" else None)
        eps = budget_fraction(config.attack.eps, name="attack.eps")
        #: Catastrophic-overfitting check of an FGSM-RS trial, else ``None``.
        self.overfit = (OverfitCheck(self.x_train, self.y_train, eps=eps, seed=training.seed)
                        if config.attack.method == "fgsm_rs" and eps > 0 else None)

    @property
    def done(self) -> bool:
        return self.epoch >= self.config.training.max_epochs

    def run_epoch(self) -> dict[str, Any]:
        """Train one epoch, evaluate, and return this epoch's metrics.

        Returns a dict with ``epoch`` (1-based), ``clean_acc`` and ``robust_acc`` (fractions in
        [0, 1] on the held-out split), ``sparsity`` (measured fraction of prunable weights that
        are zero), ``target_sparsity`` (the sparsity the schedule sets for the trial's last
        epoch: what a gradually pruned trial will reach), ``params`` (non-zero parameters),
        ``macs`` (dense multiply-accumulates per image; with a dynamic schedule by channel, those
        of the channels kept), ``sparse_macs``, ``train_loss`` (mean over batches) and
        ``epoch_time_s``.
        Accuracies, sparsity and sizes are those of ``eval_model`` (the averaged weights with
        ``weight_averaging``). An FGSM-RS trial adds ``catastrophic_overfit`` (whether this or
        an earlier epoch overfitted catastrophically) and ``probe_pgd_acc``,
        ``probe_fgsm_acc`` (the check's batch after this epoch; see ``_overfit``).

        Raises:
            DivergedError: if the training loss is NaN or infinite.
        """
        if self.done:
            raise RuntimeError(f"trial already trained its {self.config.training.max_epochs} epochs")
        training, sparsity = self.config.training, self.config.sparsity
        start = time.perf_counter()
        target = scheduled_sparsity(
            sparsity.schedule, sparsity.target, self.epoch, training.max_epochs
        )
        if target > 0 and self.dynamic_sparsity is None:
            self.masks.prune_to(self.model, target)
            if self.averaged is not None:
                self.masks.apply(self.averaged.model)
        if self.overfit is not None:
            self.overfit.start(self.forward_model)
        train_loss = self._train_one_epoch()
        train_time = time.perf_counter() - start
        clean_acc, robust_acc = evaluate_robustness(
            self.eval_model, self.x_val, self.y_val, self.config.evaluation
        )
        overfit = {}
        if self.overfit is not None:
            probe = self.overfit.after_epoch(self.forward_model)
            overfit = {"catastrophic_overfit": self.overfit.detected,
                       "probe_pgd_acc": probe.pgd, "probe_fgsm_acc": probe.fgsm}
        self.epoch += 1
        evaluated = self.model if self.averaged is None else self.averaged.model
        return {
            "epoch": self.epoch,
            "clean_acc": clean_acc,
            "robust_acc": robust_acc,
            "sparsity": measured_sparsity(evaluated),
            "target_sparsity": scheduled_sparsity(
                sparsity.schedule, sparsity.target, training.max_epochs - 1, training.max_epochs
            ),
            "params": count_parameters(evaluated, nonzero=True),
            "macs": self._macs(evaluated),
            "sparse_macs": count_macs(evaluated, self.input_shape, nonzero=True),
            "train_loss": train_loss,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_time_s": train_time,
            "epoch_time_s": time.perf_counter() - start,
            **overfit,
        }

    def _train_one_epoch(self) -> float:
        batch_size, augmentation = self.config.training.batch_size, self.config.training.augmentation
        model, attack = self.forward_model, self.config.attack
        gamma = self.config.robust.awp_gamma
        # PART after its warm-up, a quarter of the epochs (the reference's 20 of 80).
        part = self.config.robust.part and self.epoch >= self.config.training.max_epochs // 4
        order = torch.randperm(len(self.x_train), generator=self.generator).to(self.device)
        generator = self._epoch_generator()
        model.train()
        total = torch.zeros((), device=self.device)
        for step in range(self.steps_per_epoch):
            index = order[step * batch_size : (step + 1) * batch_size]
            x = self.x_train[index]
            if augmentation is not None:  # the attack perturbs the augmented images
                x = augment(x, generator, crop_padding=augmentation.crop_padding, flip=augmentation.flip)
            y = self.y_train[index]
            if part:
                x_adv = part_training_examples(model, self.model.lastact, x, y, attack,
                                               eps_low=self.config.robust.part_eps_low, generator=generator)
            else:
                x_adv = training_examples(model, x, y, attack, generator)
            # AWP: the gradient is taken at perturbed weights, the step from the original ones.
            with awp_perturbation(self.model, lambda: batch_loss(model, x, x_adv, y, attack), gamma,
                                  keep=self.masks.masks):
                loss = batch_loss(model, x, x_adv, y, attack)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
            if self.dynamic_sparsity is None:
                self.optimizer.step()
            else:  # the optimiser step, then a mask update when one is due
                self.dynamic_sparsity.step(self.model, self.masks, self.optimizer)
            self.lr_schedule.step()
            self.masks.apply(self.model)
            if self.dynamic_sparsity is not None:
                self.dynamic_sparsity.finish_step(self.model, self.masks)
            if self.averaged is not None:
                self.averaged.update(self.model)
                self.masks.apply(self.averaged.model)
            if self.wot is not None and self.wot.record(self.model):
                self._reweight_trajectory()
            total += loss.detach()
        mean_loss = float(total) / self.steps_per_epoch
        if not math.isfinite(mean_loss):
            raise DivergedError(f"training loss is {mean_loss} in epoch {self.epoch + 1}")
        return mean_loss

    def _reweight_trajectory(self) -> None:
        """WOT: fit the trajectory's weights (see ``_wot``), redo batch-norm statistics and
        restart the optimiser's momentum, as the reference does."""
        seed = self.config.training.seed * 1_000_003 + self.wot.steps  # fixed by the step count
        fit_loss = adversarial_fit_loss(self.forward_model, self.x_fit, self.y_fit, self.config.attack, seed=seed)
        self.wot.reweight(self.model, fit_loss)
        reestimate_batch_norm(self.forward_model, self.x_train, self.config.training.batch_size)
        self.masks.apply(self.model)
        self.wot.restart(self.model)
        self.optimizer.state.clear()  # momentum starts again (the reference's --reinitialize 1)
    def _macs(self, model: nn.Module) -> int:
        """Dense MACs, or those of ``model``'s channels kept when a dynamic schedule moves channels."""
        if self.dynamic_sparsity is not None and self.dynamic_sparsity.channel:
            return count_macs(model, self.input_shape, live_channels=True)
        return self.macs

    def _epoch_generator(self) -> torch.Generator:
        """The generator of this epoch's batch draws (crops, flips, attack starts): the trial's
        own on the CPU; elsewhere a generator on the device seeded from it, so a checkpoint
        taken between epochs still fixes every draw."""
        if self.device.type == "cpu":
            return self.generator
        seed = int(torch.randint(2**62, (), generator=self.generator))
        return torch.Generator(device=self.device).manual_seed(seed)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors and plain Python values only."""
        state = {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_schedule": self.lr_schedule.state_dict(),
            "masks": self.masks.state_dict(),
            "generator": self.generator.get_state(),
            **({} if self.averaged is None else {"averaged": self.averaged.state_dict()}),
            **({} if self.overfit is None else {"overfit": self.overfit.state_dict()}),
            **({} if self.wot is None else {"wot": self.wot.state_dict()}),
        }
        if self.dynamic_sparsity is not None:
            state["dynamic_sparsity"] = self.dynamic_sparsity.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_schedule.load_state_dict(state["lr_schedule"])
        self.masks.load_state_dict(state["masks"])
        self.generator.set_state(state["generator"].cpu())  # read onto the device; the generator is the CPU's
        if self.dynamic_sparsity is not None:
            self.dynamic_sparsity.load_state_dict(state["dynamic_sparsity"])
        self.epoch = int(state["epoch"])
        if self.averaged is not None:
            self.averaged.load_state_dict(state["averaged"])
        if self.wot is not None:
            self.wot.load_state_dict(state["wot"])
        if self.overfit is not None and "overfit" in state:  # a checkpoint written before the check
            self.overfit.load_state_dict(state["overfit"])

    def save(self, path: str | os.PathLike) -> Path:
        """Write a checkpoint and its SHA-256 beside it (``<path>.sha256``), each atomically."""
        return write_checkpoint(path, self.state_dict())

    def load(self, path: str | os.PathLike) -> None:
        """Restore from ``save()``'s file, loaded with ``weights_only=True`` (no code runs).

        Raises:
            CorruptCheckpointError: the file is missing, differs from its recorded SHA-256,
                or cannot be read as a trial checkpoint.
        """
        state = read_checkpoint(path, map_location=self.device)
        try:
            self.load_state_dict(state)
        except Exception as error:  # wrong keys, wrong shapes, ...
            raise unreadable(Path(path), error) from None
