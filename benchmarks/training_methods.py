"""Robust-training methods on digits: clean and robust accuracy, and cost, against plain PGD-AT.

Each method trains the default digits trial (default cell, width 8, one cell per stage, PGD-7
at eps 25.5/255, batch 64) for ``--epochs`` epochs with each of ``--seeds`` seeds, one thread,
one trial at a time. Reported: the last epoch's clean and robust accuracy (PGD-10 ce+margin on
all 270 validation images, the per-epoch metric), mean and standard deviation over
seeds; process CPU seconds per epoch (training and evaluation, one thread) relative to PGD-AT
(median over all epochs and seeds); and,
for FGSM-RS, the trials that flagged catastrophic overfitting.

    python benchmarks/training_methods.py                  # 6 epochs, 3 seeds: ~25 min on 2 busy cores
    python benchmarks/training_methods.py --methods PGD,PGD+AWP --seeds 1 --no-record
    python benchmarks/training_methods.py --from-json RUNS.json   # tables again from a --json file
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import publish  # noqa: E402

from robnas.spaces._compose import decode  # noqa: E402
from robnas.trainables._data import load_dataset  # noqa: E402
from robnas.trainables._trial import TrialRunner  # noqa: E402

TITLE = "Robust-training methods on digits"
#: Method name -> the trial keys that select it (everything else: the digits defaults).
METHODS: dict[str, dict[str, Any]] = {
    "PGD": {"attack": "pgd"},
    "PGD+AWP": {"attack": "pgd", "awp_gamma": 0.01},
    "TRADES": {"attack": "trades"},
    "TRADES+AWP": {"attack": "trades", "awp_gamma": 0.005},
    "PGD+EMA": {"attack": "pgd", "weight_averaging": "ema"},
    "PGD+WOT": {"attack": "pgd", "weight_averaging": "wot"},
    "PART": {"attack": "pgd", "part": True},
    "FGSM-RS": {"attack": "fgsm_rs"},
}


def run(method: str, seed: int, epochs: int, dataset) -> list[dict[str, Any]]:
    """The epochs' reports, each with ``cpu_s``: the process CPU time of the epoch (training
    and evaluation), which other work on the machine does not inflate as it does wall time."""
    runner = TrialRunner(decode({**METHODS[method], "seed": seed, "max_epochs": epochs}), dataset=dataset)
    reports = []
    for _ in range(epochs):
        start = time.process_time()
        report = runner.run_epoch()
        reports.append({**report, "cpu_s": time.process_time() - start})
    return reports


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def table(rows: dict[str, list[list[dict[str, Any]]]]) -> str:
    base = statistics.median(r["cpu_s"] for runs in rows["PGD"] for r in runs) if "PGD" in rows else None
    lines = ["| method | clean acc | robust acc | CPU s / epoch | vs. PGD-AT | catastrophic overfit |",
             "|---|---|---|---|---|---|"]
    for method, runs in rows.items():
        seconds = statistics.median(r["cpu_s"] for run in runs for r in run)
        overfit = (f"{sum(run[-1].get('catastrophic_overfit', False) for run in runs)} of {len(runs)}"
                   if method == "FGSM-RS" else "")
        relative = f"{seconds / base:.2f}x" if base else ""
        lines.append(f"| {method} | {_mean_sd([run[-1]['clean_acc'] for run in runs])} | "
                     f"{_mean_sd([run[-1]['robust_acc'] for run in runs])} | {seconds:.2f} | {relative} | {overfit} |")
    return "\n".join(lines)


#: What each method is known for (its paper), to hold the figures against.
KNOWN_EFFECTS = {
    "PGD+AWP": "higher robust accuracy at the end of long training, by curbing robust overfitting",
    "TRADES": "a better clean/robust trade-off than PGD-AT (beta 6 trades clean accuracy for robustness)",
    "TRADES+AWP": "higher robust accuracy than TRADES at the end of long training",
    "PGD+EMA": "higher robust accuracy than the last iterate, mostly late in long training",
    "PGD+WOT": "higher robust and clean accuracy than PGD-AT at the end of long training, by curbing robust overfitting",
    "PART": "higher clean accuracy at about the same robustness",
    "FGSM-RS": "robustness close to PGD-AT at a fraction of the cost, unless it overfits catastrophically",
}


def reading(rows: dict[str, list[list[dict[str, Any]]]]) -> str:
    """One line per method: its known effect, and whether the difference from PGD-AT exceeds
    the seeds' spread (|mean difference| > sd of PGD-AT + sd of the method)."""
    if "PGD" not in rows:
        return ""
    lines = []

    def stats(runs, key):
        values = [run[-1][key] for run in runs]
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    for method, runs in rows.items():
        if method == "PGD":
            continue
        parts = []
        for key, name in (("clean_acc", "clean"), ("robust_acc", "robust")):
            (base, base_sd), (mean, sd) = stats(rows["PGD"], key), stats(runs, key)
            shown = abs(mean - base) > base_sd + sd
            parts.append(f"{name} {mean - base:+.3f} ({'beyond' if shown else 'within'} the seeds' spread)")
        lines.append(f"- {method}: known for {KNOWN_EFFECTS.get(method, 'n/a')}. Here, against PGD-AT: "
                     f"{'; '.join(parts)}.")
    lines.append(
        "\nPlainly: a method's known effect shows here only where a line above says 'beyond the seeds' "
        "spread' in the direction the effect predicts. AWP, EMA and WOT curb robust overfitting, which "
        "sets in after many epochs past a learning-rate drop; a 6-epoch one-cycle run on digits has "
        "none to curb, so these figures test that the methods train correctly and what they cost, not "
        "their benefit.")
    if "FGSM-RS" in rows:
        flagged = sum(bool(run[-1].get("catastrophic_overfit")) for run in rows["FGSM-RS"])
        lines[-1] += (f" FGSM-RS (eps 25.5/255, step 1.25 * eps) overfitted catastrophically in {flagged} of "
                      f"{len(rows['FGSM-RS'])} runs.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--from-json", type=Path, default=None, help="make the tables from a --json file; no training")
    args = parser.parse_args()
    if args.from_json is not None:
        import json

        saved = json.loads(args.from_json.read_text(encoding="utf-8"))
        rows, epochs = saved["runs"], saved["epochs"]
        seeds = len(next(iter(rows.values())))
        trained_by = f"Runs trained by `{saved['command']}`.\n\n" if "command" in saved else ""
        publish(TITLE, trained_by + _body(rows, epochs, seeds), json_path=None, record=not args.no_record, raw={})
        return
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    torch.set_num_threads(1)
    dataset = load_dataset("digits")
    rows: dict[str, list[list[dict[str, Any]]]] = {method: [] for method in methods}
    for seed in range(args.seeds):  # methods interleaved, so a change in load touches them alike
        for method in methods:
            rows[method].append(run(method, seed, args.epochs, dataset))
            last = rows[method][-1][-1]
            print(f"{method} seed {seed}: clean {last['clean_acc']:.3f} robust {last['robust_acc']:.3f}", flush=True)
    body = _body(rows, args.epochs, args.seeds)
    publish(TITLE, body, json_path=args.json, record=not args.no_record,
            raw={"methods": {m: METHODS[m] for m in methods}, "epochs": args.epochs, "runs": rows})


def _body(rows: dict[str, list[list[dict[str, Any]]]], epochs: int, seeds: int) -> str:
    body = (f"{epochs} epochs, {seeds} seeds, default digits trial, 1 thread. Accuracy: last epoch, "
            f"validation split (all 270 images), PGD-10 ce+margin at eps 25.5/255; mean ± sd over seeds. "
            f"Cost: process CPU seconds of an epoch (training and per-epoch evaluation), median.\n\n"
            + table(rows) + "\n\n" + reading(rows))
    print(body)
    return body


if __name__ == "__main__":
    main()
