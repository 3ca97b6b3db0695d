"""Adversarial-training throughput (images/s) of ``TrialRunner`` against a bare PyTorch loop.

For each training method (PGD-7, FGSM-RS, clean) the trial's training epoch
(``TrialRunner._train_one_epoch()``: ``run_epoch()`` without evaluation) runs side by side
with a loop written here: the same NB201 network (same seed), SGD with the same hyperparameters
and batch size, a hand-written attack, on the same random 3x32x32 images read from an ``.npz``
file through ``load_dataset("npz", ...)``. The two alternate epoch by epoch (A B, B A, ...),
warm-up epochs are discarded, and the table reports median images/s and their ratio, from wall
time and from the process's CPU time (the latter holds up when other work shares the cores).

    python benchmarks/throughput.py                 # ~5 min on 2 cores; records RESULTS.md
    python benchmarks/throughput.py --threads 1,2 --repeats 3 --json out.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import load_average, publish  # noqa: E402

from robnas.spaces._attack import budget_fraction  # noqa: E402
from robnas.spaces._compose import TrialConfig, decode  # noqa: E402
from robnas.trainables._data import load_dataset  # noqa: E402
from robnas.trainables._network import build_network  # noqa: E402
from robnas.trainables._trial import TrialRunner  # noqa: E402

TITLE = "Training throughput: TrialRunner vs. a bare PyTorch loop"
METHODS = {"pgd": "PGD-7", "fgsm_rs": "FGSM-RS (PGD-1)", "none": "clean"}
TARGET_RATIO = 0.9


# --------------------------------------------------------------------------- the bare loop


def bare_attack(model, x, y, *, method: str, eps: float, step_size: float, steps: int,
                generator: torch.Generator) -> torch.Tensor:
    """PGD (``steps`` signed steps) or FGSM-RS (one step) from a uniform random start."""
    model.eval()
    x_adv = (x + (2 * torch.rand(x.shape, generator=generator) - 1) * eps).clamp(0, 1)
    for _ in range(steps if method == "pgd" else 1):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y, reduction="sum"), x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + step_size * grad.sign(), x - eps), x + eps).clamp(0, 1)
    model.train()
    return x_adv.detach()


class BareLoop:
    """A minimal training loop over in-memory tensors: constant-lr SGD, no masks, no logging."""

    def __init__(self, config: TrialConfig, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
        training, attack = config.training, config.attack
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(training.seed)
            self.model = build_network(config.genotype, width=config.macro.width,
                                       cells_per_stage=config.macro.cells_per_stage,
                                       in_channels=x.shape[1], num_classes=num_classes)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=training.lr,
                                         momentum=training.momentum,
                                         weight_decay=training.weight_decay,
                                         nesterov=training.momentum > 0)
        self.generator = torch.Generator().manual_seed(training.seed + 1)
        self.x, self.y, self.batch_size = x, y, training.batch_size
        self.method = attack.method
        self.eps = budget_fraction(attack.eps)
        self.step_size = 1.25 * self.eps if attack.step_size is None else budget_fraction(attack.step_size)
        self.steps = attack.steps

    def epoch(self) -> None:
        """Train one epoch."""
        model, optimizer = self.model, self.optimizer
        order = torch.randperm(len(self.x), generator=self.generator)
        model.train()
        for i in range(0, len(self.x), self.batch_size):
            index = order[i : i + self.batch_size]
            x, y = self.x[index], self.y[index]
            if self.method != "none":
                x = bare_attack(model, x, y, method=self.method, eps=self.eps,
                                step_size=self.step_size, steps=self.steps, generator=self.generator)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


# --------------------------------------------------------------------------- measurement


def write_images(directory: Path, images: int, *, seed: int = 0) -> Path:
    """Random uint8 images (images, 3, 32, 32), 10 classes, and 16 test images, as one .npz."""
    rng = np.random.default_rng(seed)
    path = directory / "random32.npz"
    np.savez(path, x_train=rng.integers(0, 256, (images, 3, 32, 32), dtype=np.uint8),
             y_train=rng.integers(0, 10, images), x_test=rng.integers(0, 256, (16, 3, 32, 32), dtype=np.uint8),
             y_test=rng.integers(0, 10, 16), num_classes=np.int64(10))
    return path


def trial_config(method: str, data: Path, args: argparse.Namespace, epochs: int) -> TrialConfig:
    return decode({"dataset": "npz", "data_dir": str(data), "attack": method, "width": args.width,
                   "cells_per_stage": args.cells, "batch_size": args.batch_size,
                   "max_epochs": epochs, "seed": 0})


def timed(epoch) -> tuple[float, float]:
    """Run ``epoch()``; return (wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    epoch()
    return time.perf_counter() - wall, time.process_time() - cpu


@dataclass
class Measured:
    """Per-epoch times in seconds (warm-up removed): wall clock and process CPU time."""

    method: str
    threads: int
    images: int
    trainable_s: list[float]
    bare_s: list[float]
    trainable_cpu_s: list[float]
    bare_cpu_s: list[float]

    def rate(self, times: list[float]) -> float:
        return self.images / statistics.median(times)

    @property
    def ratio(self) -> float:
        """TrialRunner images/s over bare images/s, from median wall times."""
        return self.rate(self.trainable_s) / self.rate(self.bare_s)

    @property
    def cpu_ratio(self) -> float:
        """The same from median CPU times: insensitive to other processes sharing the cores."""
        return self.rate(self.trainable_cpu_s) / self.rate(self.bare_cpu_s)

    @property
    def paired(self) -> list[float]:
        return [b / t for t, b in zip(self.trainable_s, self.bare_s)]


def measure(method: str, data: Path, args: argparse.Namespace, threads: int) -> Measured:
    """Alternate trial epochs (A: ``TrialRunner._train_one_epoch``, the epoch without
    evaluation) and bare epochs (B) as A B, B A, ...; drop the first ``args.warmup`` of each."""
    epochs = args.warmup + args.repeats
    config = trial_config(method, data, args, epochs)
    dataset = load_dataset("npz", data)
    runner = TrialRunner(config, dataset=dataset)
    bare = BareLoop(config, dataset.x_train, dataset.y_train, dataset.num_classes)
    times: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    for r in range(epochs):
        for which in ("AB" if r % 2 == 0 else "BA"):
            times[which].append(timed(runner._train_one_epoch if which == "A" else bare.epoch))
        print(f"  {METHODS[method]:16s} epoch {r + 1}/{epochs}: trainable {times['A'][-1][0]:.2f} s "
              f"(CPU {times['A'][-1][1]:.2f} s), bare {times['B'][-1][0]:.2f} s "
              f"(CPU {times['B'][-1][1]:.2f} s)", file=sys.stderr, flush=True)
    a, b = times["A"][args.warmup:], times["B"][args.warmup:]
    return Measured(method, threads, len(dataset.x_train), [t for t, _ in a], [t for t, _ in b],
                    [c for _, c in a], [c for _, c in b])


def profile_trainable(method: str, data: Path, args: argparse.Namespace, top: int = 25) -> str:
    """cProfile of one trial epoch after one warm-up epoch: the ``top`` entries by total time."""
    import cProfile
    import io
    import pstats

    config = trial_config(method, data, args, 2)
    runner = TrialRunner(config, dataset=load_dataset("npz", data))
    runner._train_one_epoch()
    profiler = cProfile.Profile()
    profiler.enable()
    runner._train_one_epoch()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --------------------------------------------------------------------------- report


def table(results: list[Measured]) -> str:
    rows = ["| method | torch threads | TrialRunner images/s | bare loop images/s | ratio of medians "
            "| paired ratios: median (min-max) | CPU-time ratio |",
            "|---|---:|---:|---:|---:|---|---:|"]
    for m in results:
        paired = m.paired
        flags = ["" if r >= TARGET_RATIO else " (below target)" for r in (m.ratio, m.cpu_ratio)]
        rows.append(f"| {METHODS[m.method]} | {m.threads} | {m.rate(m.trainable_s):.1f} | "
                    f"{m.rate(m.bare_s):.1f} | {m.ratio:.3f}{flags[0]} | "
                    f"{statistics.median(paired):.3f} ({min(paired):.3f}-{max(paired):.3f}) | "
                    f"{m.cpu_ratio:.3f}{flags[1]} |")
    return "\n".join(rows)


def body(results: list[Measured], args: argparse.Namespace, loads: list[tuple]) -> str:
    load_text = "; ".join(f"{when}: {' / '.join(f'{v:.2f}' for v in value)}"
                          for when, value in loads if value is not None)
    reference = decode({"dataset": "npz", "attack": "pgd"})
    t, a = reference.training, reference.attack
    return "\n".join([
        f"Setup: NB201 network (default cell), width {args.width}, {args.cells} cell(s) per stage, "
        f"{args.images} random 3x32x32 images (npz via `load_dataset`), batch {args.batch_size}, "
        f"SGD (peak lr {t.lr}, momentum {t.momentum} Nesterov, weight decay {t.weight_decay}); "
        f"attacks eps {a.eps:g}/255, PGD-{a.steps} step {a.step_size:g}/255, FGSM-RS step "
        f"{1.25 * a.eps:g}/255, random start. TrialRunner = `TrialRunner._train_one_epoch()` "
        "(the epoch of `run_epoch()` without evaluation: one-cycle lr schedule, pruning-mask "
        "apply after every step, loss accumulation, library attacks with per-module mode "
        "save/restore). Bare loop = constant-lr SGD, attack written inline (eval/train switch), "
        "no masks, no loss accumulation. "
        f"{args.warmup} warm-up epoch(s) discarded, then {args.repeats} epochs each, alternating "
        "A B / B A. images/s from the median wall time per epoch; ratio = TrialRunner / bare "
        f"(target >= {TARGET_RATIO}); paired ratios compare the two epochs of one alternating pair "
        "(bare time / TrialRunner time); the CPU-time ratio uses the process's CPU seconds per "
        "epoch instead of wall seconds. "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}.",
        "",
        table(results),
        "",
        f"Load average (1 / 5 / 15 min) during the run: {load_text}. The machine's 2 cores are "
        "shared with other work: with a load above 2 the wall-clock figures carry the other "
        "processes' noise, and the CPU-time ratio is the more reliable comparison.",
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per loop and method")
    parser.add_argument("--warmup", type=int, default=1, help="discarded epochs per loop and method")
    parser.add_argument("--width", type=int, default=8, help="NB201 width C (channels of stage 1)")
    parser.add_argument("--cells", type=int, default=1, help="cells per stage N")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=512, help="training images per epoch")
    parser.add_argument("--threads", default="1", help="comma-separated torch thread counts, e.g. 1,2")
    parser.add_argument("--methods", default="pgd,fgsm_rs,none", help=f"subset of {','.join(METHODS)}")
    parser.add_argument("--json", type=Path, help="also write the raw epoch times to this file")
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile of the trial epoch for methods below the target")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    for name in ("repeats", "width", "cells", "batch_size", "images"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    try:
        args.threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads must be comma-separated integers, got {args.threads!r}")
    if any(t < 1 for t in args.threads):
        parser.error(f"--threads must be >= 1, got {args.threads}")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown or not args.methods:
        parser.error(f"unknown --methods {unknown or args.methods}; allowed: {', '.join(METHODS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: list[Measured] = []
    loads = [("start", load_average())]
    with tempfile.TemporaryDirectory(prefix="robnas-throughput-") as tmp:
        data = write_images(Path(tmp), args.images)
        for threads in args.threads:
            torch.set_num_threads(threads)
            for method in args.methods:
                results.append(measure(method, data, args, threads))
                print(table(results[-1:]).splitlines()[-1], flush=True)
            loads.append((f"after {threads} thread(s)", load_average()))
        profiles = {}
        if args.profile:
            torch.set_num_threads(args.threads[0])
            for method in dict.fromkeys(m.method for m in results if m.ratio < TARGET_RATIO):
                profiles[method] = profile_trainable(method, data, args)
                print(f"\ncProfile of one {METHODS[method]} trial epoch:\n{profiles[method]}")
    text = body(results, args, loads)
    print("\n" + text)
    publish(TITLE, text, json_path=args.json, record=not args.no_record, raw={
        "loads": loads, "results": [{**asdict(m), "ratio": m.ratio, "cpu_ratio": m.cpu_ratio} for m in results],
        "profiles": profiles,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
