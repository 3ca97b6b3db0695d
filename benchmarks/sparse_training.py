"""Sparse training methods against dense PGD adversarial training, on digits.

Each method trains the default digits trial (default cell, C=8, N=1, PGD-7 adversarial
training, batch 64) for ``--epochs`` epochs at sparsity ``--sparsity`` with seeds 0..``--seeds``-1;
clean and robust accuracy (PGD-10 on the validation split) are the last epoch's, seconds per
epoch the median of the trial's ``train_time_s`` (training only, evaluation excluded), reported
relative to dense PGD-AT of the same seed. Methods: ``oneshot`` and ``gradual`` magnitude pruning,
``set``, ``rigl``, ``chase`` (RigL moving whole channels) and ``sup_tickets`` (RigL with the
Sup-tickets cycles). Trials run one after another in this process (one torch thread).

``--first-seed`` and ``--pool`` add seeds to an earlier run: the new seeds' results follow
those of the ``--json`` files given (same epochs, sparsity and methods, other seeds), and the
figures are those of all the seeds. ``--keys`` gives every trial extra keys, e.g. the
evaluation an earlier run's defaults used.

    nice -n 5 python benchmarks/sparse_training.py               # ~21 trials of 6 epochs
    python benchmarks/sparse_training.py --seeds 1 --epochs 2 --no-record
    python benchmarks/sparse_training.py --seeds 1 --first-seed 2 --pool run01.json   # add seed 2
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import load_average, publish  # noqa: E402

from robnas.spaces._compose import decode  # noqa: E402
from robnas.trainables._data import load_dataset  # noqa: E402
from robnas.trainables._trial import TrialRunner  # noqa: E402

TITLE = "Sparse training: SET, RigL, Chase-style channels and Sup-tickets against dense PGD-AT (digits)"
#: Method -> its sparsity keys (``sparsity`` added unless dense).
METHODS = {
    "dense": {"sparsity_schedule": "none"},
    "oneshot": {"sparsity_schedule": "oneshot"},
    "gradual": {"sparsity_schedule": "gradual"},
    "set": {"sparsity_schedule": "set"},
    "rigl": {"sparsity_schedule": "rigl"},
    "chase": {"sparsity_schedule": "rigl", "sparsity_granularity": "channel"},
    "sup_tickets": {"sparsity_schedule": "rigl", "sup_tickets": True},
}


def run(method: str, seed: int, args: argparse.Namespace, dataset) -> dict[str, float]:
    keys = dict(METHODS[method])
    if method != "dense":
        keys["sparsity"] = args.sparsity
    runner = TrialRunner(decode({"max_epochs": args.epochs, "seed": seed, **args.keys, **keys}), dataset=dataset)
    rows = [runner.run_epoch() for _ in range(args.epochs)]
    last = rows[-1]
    result = {"clean_acc": last["clean_acc"], "robust_acc": last["robust_acc"], "sparsity": last["sparsity"],
              "macs": last["macs"], "train_s": statistics.median(r["train_time_s"] for r in rows)}
    print(method, seed, {k: round(v, 4) for k, v in result.items()}, flush=True)
    return result


def body(results: dict[str, list[dict[str, float]]], args: argparse.Namespace, loads, seeds: list[int],
         pooled: list[str]) -> str:
    def mean(method: str, key: str) -> float:
        return statistics.fmean(r[key] for r in results[method])

    def spread(method: str, key: str) -> str:
        values = [r[key] for r in results[method]]
        return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"

    relative = {m: statistics.fmean(r["train_s"] / d["train_s"] for r, d in zip(results[m], results["dense"]))
                for m in results}
    rows = [f"| {m} | {spread(m, 'clean_acc')} | {spread(m, 'robust_acc')} | {mean(m, 'sparsity'):.3f} | "
            f"{mean(m, 'macs'):,.0f} | {relative[m]:.2f} |" for m in results]
    n = len(seeds)
    lines = [
        f"Digits, default cell (C=8, N=1), PGD-7 adversarial training, {args.epochs} epochs, sparsity "
        f"{args.sparsity}, seeds {', '.join(map(str, seeds))} (mean ± standard deviation). Accuracies on the validation "
        "split at the last epoch (robust: PGD-10); `macs` as the trial reports them (dense, except "
        "Chase-style channels: the channels kept); time: median training seconds per epoch over "
        "dense PGD-AT's, same seed.",
        *([f"Seeds {', '.join(pooled)}."] if pooled else []),
        *([f"Extra trial keys of the seeds run here: `{json.dumps(args.keys)}`."] if args.keys else []),
        "",
        "| method | clean acc | robust acc | sparsity (measured) | macs | time / dense |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    load_text = "Load average (1 / 5 / 15 min) " + "; ".join(f"{k}: {v}" for k, v in loads) + "."
    if "rigl" not in results or "set" not in results:
        return "\n".join([*lines, load_text])
    rigl, set_ = mean("rigl", "robust_acc"), mean("set", "robust_acc")
    verdict = ("RigL's robust accuracy is above SET's" if rigl > set_ else "RigL does not beat SET in robust accuracy")
    gap = abs(rigl - set_)
    stds = [statistics.stdev(r["robust_acc"] for r in results[m]) for m in ("rigl", "set")] if n > 1 else [0.0, 0.0]
    return "\n".join([
        *lines,
        f"{verdict} at this scale (difference {gap:.3f}; seed standard deviations {stds[0]:.3f} RigL, "
        f"{stds[1]:.3f} SET): with {n} seeds a difference below about two standard deviations is not "
        "a ranking. " + load_text,
    ])


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first..first+seeds-1 (default 0)")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--methods", default=",".join(METHODS), help="subset of the methods; dense is always run")
    parser.add_argument("--keys", type=json.loads, default={},
                        help='JSON object of extra trial keys, e.g. \'{"eval_schedule": "constant"}\'')
    parser.add_argument("--pool", default="", help="comma-separated --json files of earlier runs whose seeds to add")
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/RESULTS.md")
    return parser


def earlier_runs(files: list[Path], args: argparse.Namespace, methods: list[str]) -> tuple[dict, list[int], list[str]]:
    """Results, seeds and a description of each earlier run in ``files``, checked against ``args``."""
    results: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    seeds: list[int] = []
    described = []
    for file in files:
        raw = json.loads(file.read_text(encoding="utf-8"))
        old = parser().parse_args(shlex.split(raw["command"])[2:])
        if (old.epochs, old.sparsity) != (args.epochs, args.sparsity) or set(raw["results"]) != set(methods):
            raise SystemExit(f"--pool: {file} ran other epochs, sparsity or methods ({raw['command']})")
        old_seeds = raw.get("seeds", list(range(old.first_seed, old.first_seed + old.seeds)))
        for method in methods:
            results[method] += raw["results"][method]
        seeds += old_seeds
        described.append(f"{', '.join(map(str, old_seeds))} from `{raw['command']}`")
    return results, seeds, described


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if args.epochs < 1 or args.seeds < 1 or args.first_seed < 0:
        cli.error("--epochs and --seeds must be >= 1, --first-seed >= 0")
    if not isinstance(args.keys, dict):
        cli.error("--keys must be a JSON object")
    methods = ["dense", *(m.strip() for m in args.methods.split(",") if m.strip() and m.strip() != "dense")]
    if any(m not in METHODS for m in methods):
        cli.error(f"--methods must name some of {', '.join(METHODS)}")
    results, seeds, pooled = earlier_runs([Path(f.strip()) for f in args.pool.split(",") if f.strip()], args, methods)
    new_seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if set(new_seeds) & set(seeds):
        cli.error(f"--first-seed: seeds {sorted(set(new_seeds) & set(seeds))} are already in --pool")
    torch.set_num_threads(1)
    dataset = load_dataset("digits", None)
    loads = [("start", load_average())]
    for m in methods:
        results[m] += [run(m, seed, args, dataset) for seed in new_seeds]
    loads.append(("end", load_average()))
    if pooled:
        pooled.append(f"{', '.join(map(str, new_seeds))} from this command")
    seeds += new_seeds
    text = body(results, args, loads, seeds, pooled)
    print("\n" + text)
    publish(TITLE, text, json_path=args.json, record=not args.no_record,
            raw={"loads": loads, "seeds": seeds, "keys": args.keys, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
