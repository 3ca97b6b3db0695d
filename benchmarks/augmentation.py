"""Cost of training augmentation: images/s of a CIFAR-shaped trial epoch with and without it.

The trial is the CIFAR-10 protocol (``decode({"dataset": "npz", ...})``: PGD-7 at 8/255 step
2/255) on random 3x32x32 images read through ``load_dataset("npz", ...)``, with two networks:
``protocol`` (NB201 C=16, N=5, batch 256, the CIFAR default) and ``small`` (C=8, N=1, batch 128,
where augmentation weighs more). ``augment`` (random crop, padding 4, horizontal flip) is the
only difference. Epochs of the two (``TrialRunner._train_one_epoch()``, no evaluation)
alternate A B, B A, ...; warm-up epochs are discarded; images/s come from the median wall time
and from the median process CPU time (the latter holds up when other work shares the cores).
``augment()`` alone is timed too.

    python benchmarks/augmentation.py                          # ~15 min on 2 busy cores
    python benchmarks/augmentation.py --setups small --no-record
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import load_average, publish  # noqa: E402
from throughput import timed, write_images  # noqa: E402

from robnas.spaces._compose import decode  # noqa: E402
from robnas.trainables._augment import augment  # noqa: E402
from robnas.trainables._data import load_dataset  # noqa: E402
from robnas.trainables._trial import TrialRunner  # noqa: E402

TITLE = "Training augmentation: cost in a CIFAR-shaped trial epoch"
#: Setup name -> (width C, cells per stage N, batch size).
SETUPS = {"protocol": (16, 5, 256), "small": (8, 1, 128)}


def runners(data: Path, setup: str, args: argparse.Namespace) -> dict[str, TrialRunner]:
    dataset = load_dataset("npz", data)
    width, cells, batch_size = SETUPS[setup]
    base = {"dataset": "npz", "data_dir": str(data), "width": width, "cells_per_stage": cells,
            "batch_size": batch_size, "max_epochs": args.warmup + args.repeats, "seed": 0}
    return {name: TrialRunner(decode({**base, "augment": on}), dataset=dataset)
            for name, on in (("without", False), ("with", True))}


def augment_only(batch_size: int, calls: int = 50) -> float:
    """Images/s of ``augment`` alone on batches of ``batch_size`` 3x32x32 images (median call)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch_size, 3, 32, 32, generator=generator)
    for _ in range(5):
        augment(x, generator, crop_padding=4, flip=True)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        augment(x, generator, crop_padding=4, flip=True)
        times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times)


def measure(data: Path, setup: str, args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    trials = runners(data, setup, args)
    times = {name: {"wall": [], "cpu": []} for name in trials}
    for r in range(args.warmup + args.repeats):
        for name in (("without", "with") if r % 2 == 0 else ("with", "without")):
            wall, cpu = timed(trials[name]._train_one_epoch)
            if r >= args.warmup:
                times[name]["wall"].append(wall)
                times[name]["cpu"].append(cpu)
            print(f"  {setup} epoch {r + 1}: {name} augmentation {wall:.1f} s (CPU {cpu:.1f} s)", file=sys.stderr, flush=True)
    return times


def body(results, images: int, args: argparse.Namespace, loads) -> str:
    """``results``: setup -> (epoch times per variant, ``augment()``-alone images/s)."""
    rows = ["| network | batch | augmentation | images/s (wall) | images/s (CPU time) "
            "| slowdown (wall / CPU) | `augment()` alone, images/s | its share of the epoch |",
            "|---|---:|---|---:|---:|---:|---:|---:|"]
    for setup, (times, alone) in results.items():
        width, cells, batch_size = SETUPS[setup]
        rate = {name: {kind: images / statistics.median(v) for kind, v in t.items()} for name, t in times.items()}
        cost = {kind: 100 * (1 - rate["with"][kind] / rate["without"][kind]) for kind in ("wall", "cpu")}
        share = 100 * rate["with"]["cpu"] / alone  # augment's seconds per image over the epoch's
        for name in ("without", "with"):
            extra = (f"{cost['wall']:+.1f} % / {cost['cpu']:+.1f} % | {alone:,.0f} | {share:.3f} %"
                     if name == "with" else " | | ")
            rows.append(f"| C={width}, N={cells} | {batch_size} | {name} | {rate[name]['wall']:.1f} "
                        f"| {rate[name]['cpu']:.1f} | {extra} |")
    load_text = "; ".join(f"{when}: {' / '.join(f'{v:.2f}' for v in value)}" for when, value in loads if value)
    return "\n".join([
        f"Setup: NB201 (default cell), PGD-7 at 8/255 step 2/255, {images} random 3x32x32 training "
        f"images (npz), {args.warmup} warm-up epoch(s) discarded, then {args.repeats} epochs each, "
        f"alternating with and without augmentation. torch threads {torch.get_num_threads()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}. Slowdown = 1 - images/s with "
        "/ images/s without; share = seconds of `augment()` per image / seconds of the epoch per image.",
        "",
        *rows,
        "",
        f"Load average (1 / 5 / 15 min): {load_text}. With a load above the 2 cores the wall-clock "
        "figures carry other processes' noise; the CPU-time columns and the `augment()`-alone share "
        "are the reliable ones.",
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setups", default=",".join(SETUPS), help=f"subset of {','.join(SETUPS)}")
    parser.add_argument("--images", type=int, default=512, help="training images per epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", type=Path, help="also write the raw epoch times to this file")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    for name in ("images", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    args.setups = [name.strip() for name in args.setups.split(",") if name.strip()]
    if not args.setups or any(name not in SETUPS for name in args.setups):
        parser.error(f"--setups must name some of {', '.join(SETUPS)}, got {args.setups}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    loads = [("start", load_average())]
    with tempfile.TemporaryDirectory(prefix="robnas-augmentation-") as tmp:
        data = write_images(Path(tmp), args.images)
        images = len(load_dataset("npz", data).x_train)  # the validation split is held out
        results = {}
        for setup in args.setups:
            results[setup] = (measure(data, setup, args), augment_only(SETUPS[setup][2]))
            loads.append((f"after {setup}", load_average()))
    text = body(results, images, args, loads)
    print("\n" + text)
    raw = {setup: {"epoch_s": times, "augment_images_per_s": alone} for setup, (times, alone) in results.items()}
    publish(TITLE, text, json_path=args.json, record=not args.no_record,
            raw={"loads": loads, "images": images, "results": raw})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
