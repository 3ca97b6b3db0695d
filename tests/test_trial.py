"""The adversarial-training trial: metrics per epoch, exact resume, the CLI commands."""

from __future__ import annotations

import json

import pytest
import torch

from robnas.search.cli import main
from robnas.spaces import decode
from robnas.trainables import Dataset, TrialRunner, load_dataset
from robnas.trainables import _trial
from robnas.trainables._augment import augment

TIMES = ("epoch_time_s", "train_time_s")


def tiny(**overrides):
    config = {
        "arch": "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|",
        "width": 4,
        "cells_per_stage": 1,
        "max_epochs": 3,
        "attack_steps": 2,
        "eval_steps": 3,
        "eval_images": 120,
        "sparsity": 0.5,
        "sparsity_schedule": "gradual",
        **overrides,
    }
    return decode(config)


def without_times(rows):
    return [{k: v for k, v in row.items() if k not in TIMES} for row in rows]


def run_three_epochs_with_and_without_a_restore(config, checkpoint, after_first_epoch=None):
    """Three epochs in one runner, and one epoch, a save, a restore and two more.

    Returns (uninterrupted runner, restored runner, their three reports each)."""
    whole = TrialRunner(config)
    uninterrupted = [whole.run_epoch() for _ in range(3)]

    first = TrialRunner(config)
    interrupted = [first.run_epoch()]
    first.save(checkpoint)
    if after_first_epoch is not None:
        after_first_epoch(first)
    del first
    # Disturb every global RNG: a restored run must not depend on them.
    torch.manual_seed(12345)
    second = TrialRunner(config)
    second.load(checkpoint)
    interrupted += [second.run_epoch() for _ in range(2)]
    return whole, second, uninterrupted, interrupted


@pytest.mark.parametrize(
    "overrides",
    [{"attack": "pgd"}, {"attack": "fgsm_rs"}, {"attack": "trades"}, {"attack": "fgsm_rs", "eval_restarts": 3},
     {"attack": "pgd", "eval_loss": "ce+margin", "eval_restarts": 2},
     {"attack": "pgd", "awp_gamma": 0.01}, {"attack": "trades", "awp_gamma": 0.005},
     {"attack": "pgd", "weight_averaging": "ema", "ema_decay": 0.9},
     {"attack": "fgsm_rs", "awp_gamma": 0.01, "weight_averaging": "ema"},
     {"attack": "pgd", "weight_averaging": "wot"}, {"attack": "pgd", "part": True},
     {"attack": "trades", "part": True},
     {"attack": "pgd", "eval_schedule": "apgd", "eval_step_size": 16.0, "eval_restarts": 2},
     {"attack": "pgd", "eval_schedule": "constant", "eval_loss": "ce"}],
    ids=["pgd", "fgsm_rs", "trades", "eval_restarts", "eval_loss", "pgd_awp", "trades_awp", "ema", "fgsm_rs_awp_ema",
         "wot", "part", "trades_part", "eval_schedule", "old_eval"],
)
def test_restored_run_reports_the_same_metrics_as_the_uninterrupted_one(overrides, tmp_path):
    _, _, uninterrupted, interrupted = run_three_epochs_with_and_without_a_restore(
        tiny(**overrides), tmp_path / "trial.pt"
    )
    assert without_times(interrupted) == without_times(uninterrupted)


@pytest.mark.parametrize(
    "overrides",
    [{"sparsity_schedule": "rigl", "sup_tickets": True}, {"sparsity_schedule": "set", "sparsity_granularity": "channel"}],
    ids=["rigl_sup_tickets", "set_channel"],
)
def test_dynamic_sparsity_resumes_exactly_between_mask_updates(overrides, tmp_path):
    """Updates every 3 of an epoch's 20 steps: the checkpoint after epoch 1 falls between two
    updates (steps 18 and 21), so masks, step counter and generator must all come back."""
    def saved_between_updates(first):
        assert first.steps_per_epoch == 20 and first.state_dict()["dynamic_sparsity"]["steps_done"] == 20

    whole, second, uninterrupted, interrupted = run_three_epochs_with_and_without_a_restore(
        tiny(sparsity=0.8, sparsity_update_every=3, **overrides), tmp_path / "trial.pt", saved_between_updates
    )
    assert without_times(interrupted) == without_times(uninterrupted)
    assert all(torch.equal(second.masks.masks[n], whole.masks.masks[n]) for n in whole.masks.masks)
    assert second.masks.sparsity == pytest.approx(whole.masks.sparsity)
    if "sup_tickets" in overrides:
        assert whole.dynamic_sparsity.tickets.tickets == 4
    else:  # channels removed: fewer MACs than the dense network
        assert uninterrupted[-1]["macs"] < whole.macs


def test_dynamic_schedule_at_target_zero_trains_the_dense_network():
    runner = TrialRunner(tiny(sparsity=0.0, sparsity_schedule="rigl", max_epochs=1))
    assert runner.dynamic_sparsity is None
    assert runner.run_epoch()["sparsity"] == 0.0


def random_images(n_train=96, n_val=32, size=8, classes=4, seed=0) -> Dataset:
    """A CIFAR-like (3, size, size) data set of random images, for trials with augmentation."""
    g = torch.Generator().manual_seed(seed)
    x = lambda n: torch.rand(n, 3, size, size, generator=g)  # noqa: E731
    y = lambda n: torch.randint(0, classes, (n,), generator=g)  # noqa: E731
    return Dataset("npz", x(n_train), y(n_train), x(n_val), y(n_val), x(8), y(8), classes)


def test_restored_run_with_augmentation_reports_the_same_metrics(tmp_path):
    data = random_images()
    config = tiny(dataset="npz", augment=True, batch_size=32, eval_images=0)
    whole = TrialRunner(config, dataset=data)
    uninterrupted = [whole.run_epoch() for _ in range(3)]

    first = TrialRunner(config, dataset=data)
    interrupted = [first.run_epoch(), first.run_epoch()]
    first.save(tmp_path / "trial.pt")
    del first
    torch.manual_seed(999)
    second = TrialRunner(config, dataset=data)
    second.load(tmp_path / "trial.pt")
    interrupted.append(second.run_epoch())
    assert without_times(interrupted) == without_times(uninterrupted)
    # Augmentation changes the training: the same trial without it ends elsewhere.
    plain = TrialRunner(tiny(dataset="npz", augment=False, batch_size=32, eval_images=0), dataset=data)
    assert [plain.run_epoch() for _ in range(3)][-1]["train_loss"] != uninterrupted[-1]["train_loss"]


def test_the_attack_is_crafted_on_the_augmented_batch(monkeypatch):
    data = random_images()
    runner = TrialRunner(tiny(dataset="npz", augment=True, batch_size=32, max_epochs=1), dataset=data)
    replay = torch.Generator()
    replay.set_state(runner.generator.get_state())
    seen = []
    real = _trial.training_examples

    def recording(model, x, y, attack, generator):
        seen.append(x.clone())
        return real(model, x, y, attack, generator)

    monkeypatch.setattr(_trial, "training_examples", recording)
    runner.run_epoch()
    # The draws in order: the epoch's order, then this batch's crops and flips (the attack's after).
    order = torch.randperm(len(data.x_train), generator=replay)
    expected = augment(data.x_train[order[:32]], replay, crop_padding=4, flip=True)
    assert len(seen) == 3 and torch.equal(seen[0], expected)
    assert not torch.equal(seen[0], data.x_train[order[:32]])


def test_metrics_are_measured_and_in_range():
    runner = TrialRunner(tiny(sparsity=0.8, sparsity_schedule="oneshot", max_epochs=2))
    rows = [runner.run_epoch() for _ in range(2)]
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        assert 0.0 <= row["robust_acc"] <= row["clean_acc"] <= 1.0
        assert row["sparsity"] == pytest.approx(0.8, abs=0.02)  # measured zeros, per layer rounding
        assert row["params"] < runner.macs and row["sparse_macs"] < row["macs"]
        assert row["epoch_time_s"] > 0
    assert runner.done
    with pytest.raises(RuntimeError, match="already trained"):
        runner.run_epoch()


def test_digits_default_eps_makes_robust_accuracy_clearly_lower():
    """The digits default (eps 25.5/255 = 0.1 of the pixel range) is a real threat model."""
    runner = TrialRunner(decode({"max_epochs": 3}))
    rows = [runner.run_epoch() for _ in range(3)]
    assert rows[-1]["clean_acc"] > 0.85
    assert rows[-1]["robust_acc"] < rows[-1]["clean_acc"] - 0.05


def test_checkpoint_loads_with_weights_only(tmp_path):
    runner = TrialRunner(tiny(max_epochs=1))
    runner.run_epoch()
    path = runner.save(tmp_path / "trial.pt")
    state = torch.load(path, weights_only=True)
    assert set(state) == {"epoch", "model", "optimizer", "lr_schedule", "masks", "generator"}
    assert not list(tmp_path.glob("*.tmp"))


def test_cli_trial_prints_one_json_object_per_epoch(tmp_path, capsys):
    config = tmp_path / "trial.yaml"
    config.write_text("width: 4\nattack_steps: 1\neval_steps: 2\neval_images: 50\n")
    assert main(["trial", "--config", str(config), "--epochs", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert {"clean_acc", "robust_acc", "sparsity", "params", "macs", "epoch_time_s"} <= set(rows[0])


def test_cli_trial_takes_augment_from_its_config(tmp_path, capsys):
    config = tmp_path / "trial.yaml"
    config.write_text("width: 4\naugment: true\n")
    assert main(["trial", "--config", str(config), "--epochs", "1"]) == 2
    assert "'augment'" in capsys.readouterr().err  # digits has no augmentation to turn on


def test_cli_arch_matches_nas_bench_201(capsys):
    # The NB201 ResNet-like cell; NAS-Bench-201 lists 1.073 M parameters at C=16, N=5.
    arch = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
    assert main(["arch", arch, "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert set(row) == {"arch", "canonical", "valid", "params", "macs"}
    assert row["valid"] is True and row["arch"] == arch


def test_cli_bad_data_dir_is_one_line(tmp_path, capsys):
    assert main(["trial", "--dataset", "cifar10", "--data-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cifar10" in err


def test_data_stays_in_memory_as_tensors():
    data = load_dataset("digits")
    assert data.x_train.dtype == torch.float32 and data.x_train.is_contiguous()
