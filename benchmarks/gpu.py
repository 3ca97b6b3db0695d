"""PGD-7 training images/s on one GPU: fp32 vs. bf16, one vs. four trials per GPU, TrialRunner
vs. a bare PyTorch loop.

NAS-RobBench-201's training setting: the default NB201 cell at C=16, N=5, batch 256, PGD-7 at
eps 8/255 with step 2/255 and a random start, SGD, on random 3x32x32 tensors (10 classes). Every
measurement runs in ``--trials`` spawned worker processes sharing the GPU, as Ray runs trials
with ``--gpus-per-trial 1/trials``: one torch thread each, and with a fractional share each caps
its CUDA memory through ``robnas.trainables._device.apply_memory_fraction``. Each worker trains
``--warmup`` epochs, waits for the others at a barrier, then times ``--repeats`` epochs between
two CUDA synchronisations; images/s = every worker's images / the slowest worker's seconds.

    python benchmarks/gpu.py                      # fp32 and bf16, 1 and 4 trials per GPU
    python benchmarks/gpu.py --trials 1 --precisions bf16 --no-record

Without CUDA it prints "no GPU" and exits 0, recording nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import load_average, publish  # noqa: E402

from robnas.spaces._attack import budget_fraction  # noqa: E402
from robnas.spaces._compose import TrialConfig, decode  # noqa: E402
from robnas.trainables._data import Dataset  # noqa: E402
from robnas.trainables._device import apply_memory_fraction  # noqa: E402
from robnas.trainables._network import build_network  # noqa: E402
from robnas.trainables._precision import resolve_memory_format  # noqa: E402
from robnas.trainables._trial import TrialRunner  # noqa: E402

TITLE = "GPU training throughput: precision, trials per GPU, TrialRunner vs. a bare loop"
LOOPS = ("trial", "bare")
TARGET_RATIO = 0.9  # TrialRunner / bare loop
TARGET_BF16 = 1.8  # bf16 / fp32, TrialRunner


# --------------------------------------------------------------------------- the two loops


def trial_config(precision: str, args: dict[str, Any]) -> TrialConfig:
    """The benchmark's trial: npz (CIFAR-like) defaults, PGD-7 at eps 8, given width, cells, batch."""
    return decode({"dataset": "npz", "attack": "pgd", "width": args["width"], "cells_per_stage": args["cells"],
                   "batch_size": args["batch_size"], "max_epochs": args["warmup"] + args["repeats"],
                   "precision": precision, "seed": 0})


def random_data(images: int) -> Dataset:
    """``images`` random 3x32x32 training images of 10 classes (and 16 validation, 16 test)."""
    g = torch.Generator().manual_seed(0)
    x = lambda n: torch.rand(n, 3, 32, 32, generator=g)  # noqa: E731
    y = lambda n: torch.randint(0, 10, (n,), generator=g)  # noqa: E731
    return Dataset("npz", x(images), y(images), x(16), y(16), x(16), y(16), 10)


class BareLoop:
    """Constant-lr SGD with PGD written inline, in the trial's precision and memory format, every
    random draw on the device; no masks, no schedule, no loss accumulation."""

    def __init__(self, config: TrialConfig, data: Dataset, device: torch.device) -> None:
        training, attack = config.training, config.attack
        layout = torch.channels_last if resolve_memory_format(training.memory_format, device) == "channels_last" \
            else torch.contiguous_format
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(training.seed)
            self.model = build_network(config.genotype, width=config.macro.width,
                                       cells_per_stage=config.macro.cells_per_stage,
                                       in_channels=3, num_classes=data.num_classes)
        self.model.to(device, memory_format=layout)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=training.lr, momentum=training.momentum,
                                         weight_decay=training.weight_decay, nesterov=training.momentum > 0)
        self.x = data.x_train.to(device, memory_format=layout)
        self.y = data.y_train.to(device)
        self.device, self.batch_size, self.bf16 = device, training.batch_size, training.precision == "bf16"
        self.generator = torch.Generator(device=device).manual_seed(training.seed + 1)
        self.eps, self.step_size = budget_fraction(attack.eps), budget_fraction(attack.step_size)
        self.steps = attack.steps

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.model(x).float()

    def attack(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        noise = 2 * torch.rand(x.shape, generator=self.generator, device=self.device) - 1
        x_adv = (x + noise * self.eps).clamp(0, 1)
        for _ in range(self.steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(self.logits(x_adv), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + self.step_size * grad.sign(), x - self.eps), x + self.eps)
            x_adv = x_adv.clamp(0, 1)
        self.model.train()
        return x_adv.detach()

    def epoch(self) -> None:
        order = torch.randperm(len(self.x), generator=self.generator, device=self.device)
        self.model.train()
        for i in range(0, len(self.x), self.batch_size):
            index = order[i : i + self.batch_size]
            x, y = self.x[index], self.y[index]
            loss = F.cross_entropy(self.logits(self.attack(x, y)), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()


# --------------------------------------------------------------------------- measurement


def worker(spec: dict[str, Any], barrier, results) -> None:
    """One trial's process: build the loop, warm up, meet the others, time the epochs."""
    torch.set_num_threads(1)  # as Ray starts a trial with one CPU
    device = torch.device(spec["device"])
    apply_memory_fraction(1 / spec["trials"], device)
    config, data = trial_config(spec["precision"], spec), random_data(spec["images"])
    if spec["loop"] == "trial":
        epoch = TrialRunner(config, dataset=data, device=device)._train_one_epoch
    else:
        epoch = BareLoop(config, data, device).epoch
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(spec["warmup"]):
        epoch()
    synchronize()
    barrier.wait()
    start = time.perf_counter()
    for _ in range(spec["repeats"]):
        epoch()
    synchronize()
    results.put(time.perf_counter() - start)


def measure(spec: dict[str, Any]) -> float:
    """Images/s of ``spec["trials"]`` concurrent worker processes running ``spec``."""
    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    barrier, results = context.Barrier(spec["trials"]), context.Queue()
    processes = [context.Process(target=worker, args=(spec, barrier, results)) for _ in range(spec["trials"])]
    for process in processes:
        process.start()
    seconds: list[float] = []
    while len(seconds) < len(processes):
        try:
            seconds.append(results.get(timeout=1.0))
        except queue.Empty:
            if any(process.exitcode not in (None, 0) for process in processes):
                for process in processes:  # the others would wait at the barrier forever
                    process.terminate()
                raise RuntimeError(f"a worker of {spec['loop']} {spec['precision']} x{spec['trials']} failed") \
                    from None
    for process in processes:
        process.join()
    return spec["trials"] * spec["images"] * spec["repeats"] / max(seconds)


def run_all(args: argparse.Namespace, device: str) -> dict[tuple[str, str, int], list[float]]:
    """(loop, precision, trials) -> images/s per round; each round reverses the previous order."""
    base = {"device": device, "images": args.images, "batch_size": args.batch_size, "width": args.width,
            "cells": args.cells, "warmup": args.warmup, "repeats": args.repeats}
    keys = [(loop, precision, trials) for trials in args.trials for precision in args.precisions for loop in LOOPS]
    rates: dict[tuple[str, str, int], list[float]] = {key: [] for key in keys}
    for r in range(args.rounds):
        for loop, precision, trials in keys if r % 2 == 0 else keys[::-1]:
            rate = measure({**base, "loop": loop, "precision": precision, "trials": trials})
            rates[(loop, precision, trials)].append(rate)
            print(f"  round {r + 1}: {loop:5s} {precision} x{trials}: {rate:.0f} images/s", file=sys.stderr, flush=True)
    return rates


# --------------------------------------------------------------------------- report


def table(rates: dict[tuple[str, str, int], list[float]], args: argparse.Namespace) -> str:
    median = {key: statistics.median(values) for key, values in rates.items()}
    rows = ["| precision | trials per GPU | TrialRunner images/s | bare loop images/s | TrialRunner / bare "
            "| bf16 / fp32 (TrialRunner) |", "|---|---:|---:|---:|---:|---:|"]
    for trials in args.trials:
        for precision in args.precisions:
            trial, bare = median[("trial", precision, trials)], median[("bare", precision, trials)]
            ratio = trial / bare
            speedup = ""
            if precision == "bf16" and ("trial", "fp32", trials) in median:
                value = trial / median[("trial", "fp32", trials)]
                speedup = f"{value:.2f}" + ("" if value >= TARGET_BF16 else " (below target)")
            flag = "" if ratio >= TARGET_RATIO else " (below target)"
            rows.append(f"| {precision} | {trials} | {trial:.0f} | {bare:.0f} | {ratio:.3f}{flag} | {speedup} |")
    return "\n".join(rows)


def gpu_facts() -> str:
    props = torch.cuda.get_device_properties(0)
    return (f"{props.name}, compute capability {props.major}.{props.minor}, "
            f"{props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")


def body(rates: dict[tuple[str, str, int], list[float]], args: argparse.Namespace, loads: list) -> str:
    load_text = "; ".join(f"{when}: {' / '.join(f'{v:.2f}' for v in value)}" for when, value in loads if value)
    return "\n".join([
        f"Setup: GPU {gpu_facts()}. NB201 default cell, width {args.width}, {args.cells} cells per stage, "
        f"{args.images} random 3x32x32 images per trial, batch {args.batch_size}, PGD-7 eps 8/255 step 2/255 "
        "with random start, SGD (lr 0.05, momentum 0.9 Nesterov, weight decay 5e-4); channels-last "
        "(`memory_format: auto`). TrialRunner = `TrialRunner._train_one_epoch()` (one-cycle lr, masks "
        "applied after every step, loss summed on the GPU, library attack through `PrecisionForward`, "
        "deterministic cuDNN kernels); bare loop = constant-lr SGD, attack inline, PyTorch's default "
        "cuDNN settings. Each trial is a spawned process with one torch thread; with 4 trials per GPU "
        "each caps its CUDA memory at 0.25. "
        f"{args.warmup} warm-up epoch(s), then {args.repeats} timed epochs per trial; images/s = all "
        "trials' images / the slowest trial's time, median over "
        f"{args.rounds} round(s) in alternating order. Targets: TrialRunner / bare >= {TARGET_RATIO}; "
        f"bf16 >= {TARGET_BF16}x fp32.",
        "",
        table(rates, args),
        "",
        f"Load average (1 / 5 / 15 min): {load_text}.",
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated subset of fp32,bf16")
    parser.add_argument("--trials", default="1,4", help="comma-separated trials per GPU (worker processes)")
    parser.add_argument("--width", type=int, default=16, help="NB201 width C")
    parser.add_argument("--cells", type=int, default=5, help="cells per stage N")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=2560, help="training images per trial and epoch")
    parser.add_argument("--warmup", type=int, default=1, help="untimed epochs per trial")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per trial")
    parser.add_argument("--rounds", type=int, default=2, help="measurements of every configuration")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    for name in ("width", "cells", "batch_size", "images", "repeats", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if not args.precisions or any(p not in ("fp32", "bf16") for p in args.precisions):
        parser.error(f"--precisions must name fp32 and/or bf16, got {args.precisions}")
    try:
        args.trials = [int(t) for t in args.trials.split(",")]
    except ValueError:
        parser.error(f"--trials must be comma-separated integers, got {args.trials!r}")
    if not args.trials or any(t < 1 for t in args.trials):
        parser.error(f"--trials must be >= 1, got {args.trials}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("no GPU")
        return 0
    loads = [("start", load_average())]
    rates = run_all(args, "cuda")
    loads.append(("end", load_average()))
    text = body(rates, args, loads)
    print("\n" + text)
    publish(TITLE, text, json_path=args.json, record=not args.no_record, raw={
        "gpu": gpu_facts(), "loads": loads,
        "images_per_s": [{"loop": loop, "precision": precision, "trials": trials, "rounds": values}
                         for (loop, precision, trials), values in rates.items()],
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
