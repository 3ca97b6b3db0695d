"""``robnas tabulate``: train the networks of a space (all NB201 cells, a list or a draw) into a results table."""

from __future__ import annotations

import argparse
import math
from typing import Any

import yaml


def add_tabulate_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "tabulate", help="train the networks of a space (every NB201 cell, a listed subset or a draw) into a results table"
    )
    parser.add_argument("--out", required=True, help="table to write: .csv or .parquet")
    parser.add_argument("--space", default="cell",
                        help="cell (all 6,466 NB201 cells by default) or resnet (needs --archs or --num-samples)")
    parser.add_argument("--archs", help="text file of network descriptions of the space's family, one a line "
                        "(NB201 strings; resnet lines like conv16k3-basic-d2.1-w8.32-k3-relu-se0): tabulate only these")
    parser.add_argument("--num-samples", type=int,
                        help="tabulate N distinct networks drawn from the space's default domains (seeded by --seed)")
    parser.add_argument("--dataset", default="digits", help="digits (embedded), cifar10, svhn, mnist, ...")
    parser.add_argument("--data-dir", help="local directory (or .npz file) holding the data set")
    parser.add_argument("--epochs", type=int, help="epochs per cell (default: the dataset's max_epochs)")
    parser.add_argument("--max-concurrent", type=int, default=2, help="trials running at once")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs reserved per trial")
    parser.add_argument("--address", help="Ray cluster address: auto or HOST:PORT (default: start Ray here)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of every cell")
    parser.add_argument(
        "--trial", action="append", default=[], metavar="KEY=VALUE",
        help="fixed trial key for every cell, e.g. width=16 or attack=fgsm_rs (repeatable)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the tabulation of --out")
    group.add_argument("--overwrite", action="store_true", help="start again, replacing --out")
    parser.add_argument("--quiet", action="store_true", help="no line per finished cell")
    parser.set_defaults(handler=run_tabulate)


def parse_trial_keys(items: list[str]) -> dict[str, Any]:
    """``["width=16", "attack=pgd"]`` -> ``{"width": 16, "attack": "pgd"}`` (values read as YAML)."""
    keys: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--trial {item!r} must look like KEY=VALUE")
        if key in keys:
            raise ValueError(f"--trial key {key!r} given more than once")
        try:
            keys[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise ValueError(f"--trial {item!r}: cannot read the value {text!r}") from None
    return keys


def run_tabulate(args: argparse.Namespace) -> int:
    from robnas.search._tabulate import TabulateSettings, read_archs, tabulate
    from robnas.search._tabulate_archs import SPACES, space_family

    family = space_family(args.space, dataset=args.dataset) if args.space in SPACES else None

    settings = TabulateSettings(
        out=args.out,
        archs=read_archs(args.archs, family) if args.archs else None,
        space=args.space,
        num_samples=args.num_samples,
        dataset=args.dataset,
        data_dir=args.data_dir,
        epochs=args.epochs,
        max_concurrent=args.max_concurrent,
        cpus_per_trial=args.cpus_per_trial,
        address=args.address,
        seed=args.seed,
        trial=parse_trial_keys(args.trial),
    )
    callbacks = [] if args.quiet else [_progress(len(settings.archs))]
    result = tabulate(settings, resume=args.resume, overwrite=args.overwrite, callbacks=callbacks)
    total = len(settings.archs)
    if result.unfinished:
        print(f"interrupted: {len(result.unfinished)} of {total} networks unfinished; continue with --resume")
        return 130
    if result.written:
        print(f"{total - len(result.failed)} networks x {settings.epochs} epochs: {result.path}")
    print(f"experiment: {result.experiment_path}")
    if result.failed:
        print(f"{len(result.failed)} of {total} networks failed and are not in the table; --resume retries them:")
        for arch in result.failed:
            print(f"  {arch}")
        return 1
    return 0


def _progress(total: int):
    """A Ray Tune callback printing one line per finished cell: count, cell, accuracies."""
    from ray.tune import Callback

    class Progress(Callback):
        def __init__(self) -> None:
            self.done = 0

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self.done += 1
            result = trial.last_result or {}
            accuracies = "  ".join(f"{name} {result.get(name, math.nan):.4f}" for name in ("clean_acc", "robust_acc"))
            print(f"[{self.done}/{total}] {trial.config.get('arch')}  {accuracies}", flush=True)

    return Progress()
