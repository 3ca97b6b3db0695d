"""Device, precision and memory layout of a trial, on the CPU: bf16 autocast, channels-last,
the device and GPU-memory share (with a fake ``torch.cuda``), and the trial keys' checks."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from torch import nn

from robnas.spaces import decode
from robnas.trainables import Dataset, TrialRunner, build_network, load_dataset
from robnas.trainables._device import apply_memory_fraction, choose_device, use_deterministic_kernels
from robnas.trainables._pgd import pgd
from robnas.trainables._precision import PrecisionForward, resolve_memory_format, resolve_precision

TIMES = ("epoch_time_s", "train_time_s")
EPS = 8 / 255


def tiny(**overrides):
    config = {"width": 4, "cells_per_stage": 1, "max_epochs": 2, "attack_steps": 2, "eval_steps": 3,
              "eval_images": 120, **overrides}
    return decode(config)


def network(seed: int = 0) -> nn.Module:
    """The default cell at width 4, one cell per stage, for 3-channel images and 10 classes."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_network(decode({}).genotype, width=4, cells_per_stage=1, in_channels=3, num_classes=10)


def conv_outputs(model: nn.Module) -> list[torch.Tensor]:
    """Every Conv2d output of the model's forward passes on batches of more than one image (a
    trial's MAC count passes one zero image through the bare fp32 network), as they happen."""
    seen: list[torch.Tensor] = []

    def record(_module, _inputs, output):
        if len(output) > 1:
            seen.append(output.detach())

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(record)
    return seen


def random_images() -> Dataset:
    """64 random 3x8x8 training images of 4 classes (and 16 validation, 4 test)."""
    g = torch.Generator().manual_seed(0)
    x = lambda n: torch.rand(n, 3, 8, 8, generator=g)  # noqa: E731
    y = lambda n: torch.randint(0, 4, (n,), generator=g)  # noqa: E731
    return Dataset("npz", x(64), y(64), x(16), y(16), x(4), y(4), 4)


class FakeCuda:
    """The parts of ``torch.cuda`` a trial calls, recording the memory fractions it sets."""

    def __init__(self, *, available: bool = True, bf16: bool = True) -> None:
        self.available, self.bf16, self.fractions = available, bf16, []

    def is_available(self) -> bool:
        return self.available

    def is_bf16_supported(self, including_emulation: bool = True) -> bool:
        return self.bf16

    def set_per_process_memory_fraction(self, fraction, device=None) -> None:
        self.fractions.append((fraction, device))


# ------------------------------------------------------------------ bf16 autocast on the CPU


def few_digits(n: int = 256):
    """The digits data set with its first ``n`` training images."""
    digits = load_dataset("digits")
    return dataclasses.replace(digits, x_train=digits.x_train[:n], y_train=digits.y_train[:n])


def test_a_bf16_trial_epoch_runs_in_bf16_and_repeats_exactly():
    rows, data = [], few_digits()
    for _ in range(2):
        runner = TrialRunner(tiny(precision="bf16"), dataset=data)
        convs = conv_outputs(runner.model)
        rows.append({k: v for k, v in runner.run_epoch().items() if k not in TIMES})
        assert runner.precision == "bf16" and {t.dtype for t in convs} == {torch.bfloat16}
        assert all(p.dtype == torch.float32 for p in runner.model.parameters())  # fp32 weights
    assert rows[0] == rows[1]  # the same seed, device and precision: the same numbers
    assert math.isfinite(rows[0]["train_loss"]) and 0.0 <= rows[0]["robust_acc"] <= rows[0]["clean_acc"] <= 1.0
    fp32 = TrialRunner(tiny(precision="fp32"), dataset=data)
    losses = [fp32.run_epoch()["train_loss"], rows[0]["train_loss"]]
    assert fp32.precision == "fp32" and losses[0] != losses[1]  # bf16 numbers differ from fp32


def test_pgd_through_bf16_keeps_an_fp32_perturbation_within_eps():
    model = PrecisionForward(network(), precision="bf16", memory_format="contiguous", device_type="cpu")
    convs = conv_outputs(model)
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (8,), generator=torch.Generator().manual_seed(2))
    runs = [pgd(model, x, y, eps=EPS, step_size=2 / 255, steps=3, generator=torch.Generator().manual_seed(3))
            for _ in range(2)]
    x_adv = runs[0]
    assert convs and {t.dtype for t in convs} == {torch.bfloat16}
    assert model(x).dtype == torch.float32  # logits, and so losses and gradients, in fp32
    assert x_adv.dtype == torch.float32 and torch.isfinite(x_adv).all()
    assert (x_adv - x).abs().max() <= EPS + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert not torch.equal(x_adv, x) and torch.equal(runs[0], runs[1])


# ------------------------------------------------------------------ channels-last


def test_channels_last_predicts_as_contiguous():
    contiguous = network().eval()
    channels_last = PrecisionForward(copy.deepcopy(contiguous), precision="fp32",
                                     memory_format="channels_last", device_type="cpu").eval()
    convs = conv_outputs(channels_last)
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = contiguous(x), channels_last(x)
    assert all(t.is_contiguous(memory_format=torch.channels_last) for t in convs)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4)
    assert torch.equal(got.argmax(1), expected.argmax(1))


def test_a_channels_last_trial_keeps_its_weights_and_images_channels_last():
    runner = TrialRunner(tiny(dataset="npz", memory_format="channels_last"), dataset=random_images())
    convs = [m.weight for m in runner.model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert runner.memory_format == "channels_last" and runner.precision == "fp32"
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert runner.x_train.is_contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------ auto, on CUDA and elsewhere


def test_auto_is_bf16_and_channels_last_on_cuda_only():
    cuda = torch.device("cuda", 0)
    assert resolve_precision("auto", cuda, cuda=FakeCuda(bf16=True)) == "bf16"
    assert resolve_precision("auto", cuda, cuda=FakeCuda(bf16=False)) == "fp32"  # no native bf16
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert resolve_precision("fp32", cuda, cuda=FakeCuda()) == "fp32"
    assert resolve_memory_format("auto", cuda) == "channels_last"
    assert resolve_memory_format("auto", torch.device("cpu")) == "contiguous"
    runner = TrialRunner(tiny())
    assert (runner.precision, runner.memory_format) == ("fp32", "contiguous")


def test_deterministic_kernels_are_chosen_on_cuda_only():
    class FakeCudnn:
        deterministic, benchmark = False, True

    cudnn = FakeCudnn()
    assert not use_deterministic_kernels(torch.device("cpu"), cudnn=cudnn) and not cudnn.deterministic
    assert use_deterministic_kernels(torch.device("cuda", 0), cudnn=cudnn)
    assert cudnn.deterministic and not cudnn.benchmark


# ------------------------------------------------------------------ device and GPU share


def test_a_quarter_gpu_caps_memory_at_a_quarter_and_a_whole_gpu_or_cpu_does_not():
    cuda = FakeCuda()
    device = choose_device(0.25, visible_gpus=[3], cuda=cuda)
    assert device == torch.device("cuda", 0)  # Ray's CUDA_VISIBLE_DEVICES: the trial's GPU is cuda:0
    assert apply_memory_fraction(0.25, device, cuda=cuda) == 0.25
    assert cuda.fractions == [(0.25, torch.device("cuda", 0))]

    for share in (1, 2.0):
        cuda = FakeCuda()
        device = choose_device(share, visible_gpus=[0, 1], cuda=cuda)
        assert device.type == "cuda" and apply_memory_fraction(share, device, cuda=cuda) is None
        assert cuda.fractions == []
    for share, gpus, cuda in ((0.0, [], FakeCuda()), (0.25, [], FakeCuda()), (0.25, [0], FakeCuda(available=False))):
        device = choose_device(share, visible_gpus=gpus, cuda=cuda)
        assert device == torch.device("cpu") and apply_memory_fraction(share, device, cuda=cuda) is None
        assert cuda.fractions == []


@pytest.mark.parametrize("share", [-0.25, float("nan"), "0.25", True])
def test_a_bad_gpu_share_is_refused(share):
    with pytest.raises(ValueError, match="gpu_share must be a finite number >= 0"):
        choose_device(share, visible_gpus=[0], cuda=FakeCuda())


def test_a_search_passes_its_gpu_share_to_every_trial():
    from robnas.search._run import _param_space
    from robnas.search._settings import SearchSettings
    from robnas.spaces import RUNTIME_KEYS

    space, record = _param_space(SearchSettings(space="cell", gpus_per_trial=0.25))
    assert space["gpu_share"] == 0.25 and "gpu_share" in RUNTIME_KEYS
    assert "gpu_share" not in record["resolved_trial"]
    assert record["resolved_trial"]["precision"] == "auto" and record["resolved_trial"]["memory_format"] == "auto"


# ------------------------------------------------------------------ the trial keys' checks


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("precision", "fp16", "'auto', 'fp32', 'bf16'"),
    ("precision", None, "'auto', 'fp32', 'bf16'"),
    ("memory_format", True, "'auto', 'contiguous', 'channels_last'"),
])
def test_a_bad_precision_or_memory_format_is_refused_by_name(key, value, allowed):
    with pytest.raises(ValueError, match=f"config key '{key}': .* must be one of {allowed}, got {value!r}"):
        decode({key: value})


def test_resolving_refuses_an_unknown_precision():
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("half", torch.device("cpu"))
    with pytest.raises(ValueError, match="resolved precision"):
        PrecisionForward(network(), precision="auto", memory_format="contiguous", device_type="cpu")
