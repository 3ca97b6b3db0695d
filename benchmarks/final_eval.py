"""Final evaluation: the per-epoch robust accuracy against APGD and the full AutoAttack, and its cost.

Part ``accuracy``: five kinds of network trained by robnas on the embedded digits data with the
digits defaults (eps 25.5/255 = 0.1, PGD-7 training, PGD-10 per-epoch evaluation):
PGD adversarial training, FGSM-RS fast AT, TRADES, a 90 %-sparse network (PGD AT, gradual
schedule to sparsity 0.9) and the knee of the README's default search. The first four train
through ``TrialRunner`` (as a search's trial does, one torch thread); the knee is loaded from its
search's checkpoint. Each network is measured with ``robnas.analysis._evaluate.measure``, the
function behind ``robnas evaluate``, on the whole test split: the per-epoch PGD (``pgd``), APGD-CE
+ APGD-T (``apgd``, the default) and the standard AutoAttack (``autoattack``). Beside them: the
robust accuracy the trial reported after its last epoch (validation split), and the per-epoch
PGD made stronger (more steps, restarts; ``pgd_correct``) on the test split, to show what would
close the gap. Targets: APGD within 0.5 points of AutoAttack; the per-epoch number at most 1.5
points above the final APGD number.

``--eval-losses ce,margin,ce+margin`` also runs the per-epoch attack with each ``eval_loss`` at the
trial's own steps, step size and restarts (the same cost) on the same trained networks: on the
test split (its gap to APGD is the attack's alone) and on the validation split (what the trial
would have reported after its last epoch), for ``--eval-seeds`` seeds of the random starts.
``--eval-attacks`` does the same for any per-epoch attack at the trial's cost: ``LOSS:SCHEDULE:STEP``
(``eval_loss``, ``eval_schedule``, first step as a multiple of eps; ``:RxS`` splits the passes
into R restarts of S steps) or pyautoattack's APGD (``apgd-ce``, ``apgd-dlr``, ``apgd-ce+dlr``)
with as many forward-backward passes; ``--skip-autoattack`` leaves out the full AutoAttack.
``--pool`` pools those figures from the ``--json`` files of several runs (e.g. ``--seed 0, 1, 2``:
more networks of each kind) into one table, without training or attacking anything.

Part ``cost``: the wall time of ``robnas evaluate DIR --trials front`` after the README's default
search (``robnas search``, here with ``--storage-path`` and ``--name`` only), and its share of the
search's own wall time. Both are subprocesses timed from outside; rerun on a quiet machine.

    python benchmarks/final_eval.py                            # both parts, ~11-16 min on 2 busy cores
    python benchmarks/final_eval.py --part accuracy --kinds pgd,trades --epochs 6 --no-record
    python benchmarks/final_eval.py --part accuracy --eval-losses ce,margin,ce+margin --eval-seeds 5
    python benchmarks/final_eval.py --part accuracy --skip-autoattack --eval-attacks ce+margin:constant:0.25,ce+margin:cosine:2,apgd-ce
    python benchmarks/final_eval.py --pool run0.json,run1.json   # pool the --eval-losses figures of --json files
    python benchmarks/final_eval.py --part cost --json cost.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import current_command, load_average, machine_info, record_section  # noqa: E402

from robnas.spaces._defaults import DATASET_DEFAULTS  # noqa: E402
from robnas.spaces._evaluation import EVAL_LOSSES, EVAL_SCHEDULES  # noqa: E402

TITLE = "Final evaluation: per-epoch PGD vs. APGD vs. AutoAttack"
POOL_TITLE = "Final evaluation: the per-epoch attack's eval_loss over several trained networks per kind"
COST_TITLE = "Final evaluation cost: robnas evaluate after the default search"
DIGITS = DATASET_DEFAULTS["digits"]
#: kind -> (description, flat trial keys over the digits defaults; None: the search's knee).
KINDS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "pgd": ("PGD-7 adversarial training", {"attack": "pgd"}),
    "fgsm_rs": ("FGSM-RS fast AT", {"attack": "fgsm_rs"}),
    "trades": ("TRADES, beta 6", {"attack": "trades"}),
    "sparse90": ("PGD-7 AT, target sparsity 0.9 (gradual, unstructured)",
                 {"attack": "pgd", "sparsity": 0.9, "sparsity_schedule": "gradual"}),
    "knee": ("knee of the default search's front", None),
}
#: Stronger versions of the per-epoch PGD, tried on the test split: (steps, restarts).
PROBES = ((10, 5), (20, 1), (20, 5), (50, 5))
APGD_TARGET = 0.5  # points: APGD - AutoAttack
PER_EPOCH_TARGET = 1.5  # points: per-epoch (val) - final APGD (test)
SEARCH_NAME = "default"


def robnas_command() -> list[str]:
    """The ``robnas`` console script of this Python, or ``python -m robnas``."""
    script = Path(sys.executable).with_name("robnas")
    return [str(script)] if script.exists() else [sys.executable, "-m", "robnas"]


# --------------------------------------------------------------------------- the default search


def run_default_search(storage: Path) -> dict[str, Any]:
    """README's command 1 (``robnas search``), into ``storage/default``; wall time from outside."""
    command = [*robnas_command(), "search", "--storage-path", str(storage), "--name", SEARCH_NAME]
    log = storage / "search.log"
    load_before = load_average()
    print(f"running {' '.join(command[1:])} (log {log})", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True)
    wall = time.perf_counter() - start
    return {"dir": str(storage / SEARCH_NAME), "command": "robnas search", "wall_s": wall,
            "load_before": load_before, "load_after": load_average(),
            "last_line": log.read_text(encoding="utf-8").strip().splitlines()[-1]}


def measure_cost(search: dict[str, Any]) -> dict[str, Any]:
    """Wall time of ``robnas evaluate DIR --trials front`` (a fresh process, as a user runs it)."""
    command = [*robnas_command(), "evaluate", search["dir"], "--trials", "front"]
    load_before = load_average()
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()  # header, one row per trial, "N trials measured, K already in ..."
    measured = re.match(r"(\d+) trials? measured", lines[-1])
    return {"wall_s": wall, "trials": len(lines) - 2, "measured": int(measured.group(1)) if measured else None,
            "images": int(lines[1].split()[-1]), "output": done.stdout, "share": wall / search["wall_s"],
            "load_before": load_before, "load_after": load_average()}


# --------------------------------------------------------------------------- the accuracy gap


def train_kind(kind: str, overrides: dict[str, Any], *, epochs: int, seed: int):
    """``(TrialModel, per-epoch reports)`` of one trial trained by ``TrialRunner`` on digits."""
    from robnas.analysis._trial_model import TrialModel
    from robnas.spaces._compose import decode
    from robnas.trainables._trial import TrialRunner

    config = {"dataset": "digits", "max_epochs": epochs, "seed": seed, **overrides}
    runner = TrialRunner(decode(config))
    reports = []
    for _ in range(epochs):
        reports.append(runner.run_epoch())
        r = reports[-1]
        print(f"  {kind} epoch {r['epoch']}: clean {r['clean_acc']:.4f} robust {r['robust_acc']:.4f} "
              f"sparsity {r['sparsity']:.3f} ({r['epoch_time_s']:.1f} s)", file=sys.stderr, flush=True)
    model = TrialModel(kind, runner.model.eval(), config, runner.config, f"epoch {epochs}, in memory",
                       runner.epoch, runner.masks.state_dict(), [])
    return model, reports


def knee_model(search_dir: str):
    """``(TrialModel, per-epoch reports)`` of the knee of the search in ``search_dir``."""
    from robnas.analysis._front import analyze_trials, numeric_columns, objectives_of
    from robnas.analysis._load import load_experiment
    from robnas.analysis._trial_model import load_trial_model

    experiment = load_experiment(search_dir)
    trials = experiment.trials
    objectives = objectives_of(experiment.objectives, numeric_columns(trials))
    knee = analyze_trials(trials, objectives, max_epochs=experiment.max_epochs).summary["knee"]["trial_id"]
    directory = trials.loc[trials["trial_id"].astype(str) == knee, "trial_dir"].iloc[0]
    results = experiment.results
    reports = results[results["trial_id"].astype(str) == knee].sort_values("epoch").to_dict("records")
    return load_trial_model(Path(search_dir) / directory, knee), reports


def evaluate_kind(kind: str, trial, reports: list[dict[str, Any]], *, losses: list[str] = (),
                  eval_seeds: int = 1, autoattack: bool = True) -> dict[str, Any]:
    """Every figure of one row: per-epoch curve, test-split PGD, APGD, AutoAttack, probes, and
    the per-epoch attack under each of ``losses`` (val and test, seeds 0 .. eval_seeds - 1)."""
    from robnas.analysis._evaluate import measure
    from robnas.trainables._adversarial import pgd_correct
    from robnas.trainables._data import load_split

    x, y = load_split("digits", "test")
    row: dict[str, Any] = {
        "kind": kind, "arch": trial.trial_config.genotype.to_str(), "trial_id": trial.trial_id,
        "epochs": trial.epoch, "images": len(x),
        "val_robust_by_epoch": [float(r["robust_acc"]) for r in reports],
        "val_clean_by_epoch": [float(r["clean_acc"]) for r in reports],
        "sparsity": float(reports[-1]["sparsity"]), "robust_val": float(reports[-1]["robust_acc"]),
        "train_seed": trial.trial_config.training.seed,
    }
    row["autoattack_test"] = row["autoattack_s"] = None
    for attack in ("pgd", "apgd", "autoattack") if autoattack else ("pgd", "apgd"):
        start = time.perf_counter()
        measured = measure(trial, x, y, attack=attack)
        row[f"{attack}_test"], row[f"{attack}_s"] = measured["robust_acc"], time.perf_counter() - start
        row["clean_test"], row["eps"] = measured["clean_acc"], measured["eps"]
        print(f"  {kind} {attack}: clean {measured['clean_acc']:.4f} robust {measured['robust_acc']:.4f} "
              f"({row[f'{attack}_s']:.1f} s)", file=sys.stderr, flush=True)
    evaluation = trial.trial_config.evaluation
    row["probes"] = {}
    for steps, restarts in PROBES:
        stronger = dataclasses.replace(evaluation, steps=steps, restarts=restarts, schedule="constant",
                                       step_size=2.5 * evaluation.eps / steps)  # Madry et al.'s rule
        _, robust = pgd_correct(trial.model, x, y, stronger)
        row["probes"][f"PGD-{steps} x{restarts}"] = int(robust.sum()) / len(x)
    row["eval_attack"] = (f"{evaluation.loss}:{evaluation.schedule}:"
                          f"{round(evaluation.step_size / evaluation.eps, 4):g}")  # the trial's own
    row["losses"] = {spelled_out(loss, row["eval_attack"]): loss_figures(trial, loss, eval_seeds) for loss in losses}
    for loss, figures in row["losses"].items():
        print(f"  {kind} per-epoch attack, eval_loss {loss}: test {figures['test']} val {figures['val']} "
              f"({figures['s']:.1f} s per run)", file=sys.stderr, flush=True)
    return row


def parse_attack(spec: str) -> dict[str, Any]:
    """An ``--eval-attacks`` spec: ``LOSS`` (an ``eval_loss``, the trial's own schedule and step),
    ``LOSS:SCHEDULE:STEP`` (``eval_loss``, ``eval_schedule`` and the first step as a multiple of
    eps), ``LOSS:SCHEDULE:STEP:RxS`` (the same as R restarts of S steps: give R x S = the
    trial's steps for the same number of passes), or ``apgd-ce``, ``apgd-dlr``, ``apgd-ce+dlr`` (pyautoattack's ``APGDAttack``: one run,
    or two runs of half the budget each, so that every image gets ``eval_steps`` forward-backward
    passes: ``n_iter`` = passes - 1, its first pass is at the start point)."""
    if spec in APGD_RUNS:
        return {"pyautoattack": APGD_RUNS[spec]}
    parts = spec.split(":")
    if parts[0] not in EVAL_LOSSES or len(parts) not in (1, 3, 4) or (len(parts) > 1 and parts[1] not in EVAL_SCHEDULES):
        raise ValueError(f"bad --eval-attacks entry {spec!r}: LOSS, LOSS:SCHEDULE:STEP[:RxS] (losses "
                         f"{', '.join(EVAL_LOSSES)}; schedules {', '.join(EVAL_SCHEDULES)}; STEP a multiple of eps; "
                         f"R restarts of S steps) or {', '.join(APGD_RUNS)}")
    if len(parts) == 1:
        return {"loss": spec}
    split = re.fullmatch(r"([1-9]\d*)x([1-9]\d*)", parts[3]) if len(parts) == 4 else None
    try:
        step = float(parts[2])
    except ValueError:
        step = -1.0
    if not 0.0 < step <= 4.0 or (len(parts) == 4 and split is None):
        raise ValueError(f"bad --eval-attacks entry {spec!r}: STEP a multiple of eps in (0, 4], RxS like 2x5")
    attack = {"loss": parts[0], "schedule": parts[1], "step": step}
    if split:
        attack.update(restarts=int(split.group(1)), steps=int(split.group(2)))
    return attack


#: ``--eval-attacks`` names of pyautoattack's APGD -> the loss of each of its runs.
APGD_RUNS = {"apgd-ce": ("ce",), "apgd-dlr": ("dlr",), "apgd-ce+dlr": ("ce", "dlr")}


def spelled_out(spec: str, own: str) -> str:
    """``spec`` as ``LOSS:SCHEDULE:STEP``: a bare ``LOSS`` takes the schedule and step of the
    trial's own attack ``own`` (itself spelled out)."""
    return spec if spec in APGD_RUNS or ":" in spec else f"{spec}:{own.split(':', 1)[1]}"


#: The digits per-epoch attack before ``eval_schedule`` (``--json`` rows without ``eval_attack``).
OLD_DIGITS_ATTACK = "ce+margin:constant:0.25"


def attack_robust(trial, x, y, spec: str, seed: int):
    """Bool (N,): images of ``x`` that ``trial`` classifies correctly clean and under the
    ``--eval-attacks`` attack ``spec`` with random-start seed ``seed``, at the trial's own eps,
    steps (forward-backward passes per image) and restarts."""
    import torch

    from robnas.spaces._attack import budget_fraction
    from robnas.trainables._adversarial import pgd_correct
    from robnas.trainables._pgd import attack_mode

    evaluation = trial.trial_config.evaluation
    attack = parse_attack(spec)
    if "pyautoattack" not in attack:
        changes = {"loss": attack["loss"], "seed": seed}
        if "schedule" in attack:
            changes.update(schedule=attack["schedule"], step_size=attack["step"] * evaluation.eps)
        if "restarts" in attack:  # the same passes split into restarts, e.g. 2x5 for PGD-10
            changes.update(restarts=attack["restarts"], steps=attack["steps"])
        return pgd_correct(trial.model, x, y, dataclasses.replace(evaluation, **changes))[1]
    from pyautoattack.autopgd_base import APGDAttack

    runs = attack["pyautoattack"]
    passes = evaluation.steps // len(runs)
    eps = budget_fraction(evaluation.eps, name="eval_eps")
    robust = pgd_correct(trial.model, x, y, dataclasses.replace(evaluation, eps=0.0))[0]
    with attack_mode(trial.model), torch.random.fork_rng(devices=[]):
        for restart in range(evaluation.restarts):
            for loss in runs:
                alive = robust.nonzero().squeeze(1)
                if not len(alive):
                    break
                apgd = APGDAttack(trial.model, n_iter=max(passes - 1, 1), norm="Linf", eps=eps, loss=loss,
                                  n_restarts=1, seed=seed + restart, device="cpu")
                x_adv = apgd.perturb(x[alive], y[alive])
                with torch.no_grad():
                    robust[alive] = trial.model(x_adv).argmax(1) == y[alive]
    return robust


def loss_figures(trial, spec: str, eval_seeds: int) -> dict[str, Any]:
    """Robust accuracy of ``trial`` under the ``--eval-attacks`` attack ``spec`` (an ``eval_loss``
    alone: the trial's own steps, step size, schedule, restarts), on the test and validation
    splits, for seeds 0 .. eval_seeds - 1; ``s``: mean seconds per test-split run."""
    from robnas.trainables._data import load_split

    figures: dict[str, Any] = {"test": [], "val": [], "s": 0.0}
    for split in ("test", "val"):
        x, y = load_split("digits", split)
        for seed in range(eval_seeds):
            start = time.perf_counter()
            robust = attack_robust(trial, x, y, spec, seed)
            if split == "test":
                figures["s"] += (time.perf_counter() - start) / eval_seeds
            figures[split].append(int(robust.sum()) / len(x))
    return figures


def points(a: float, b: float) -> float:
    return round(100 * (a - b), 1)


def accuracy_tables(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """(main table, gap decomposition table), figures in percent and percentage points."""
    main = ["| kind | clean (test) | per-epoch robust (val) | per-epoch PGD (test) | final APGD (test) "
            "| full AA (test) | per-epoch - AA | APGD - AA |", "|---|" + "---:|" * 7]
    probes = list(rows[0]["probes"]) if rows else []
    gaps = ["| kind | per-epoch (val) - APGD (test), target <= +1.5 | split: PGD val - PGD test "
            "| attack: PGD test - APGD test | " + " | ".join(f"{p} (test) - APGD" for p in probes) + " |",
            "|---|" + "---:|" * (3 + len(probes))]
    for r in rows:
        aa = r["autoattack_test"]
        if aa is None:
            aa_cells = "not run | | |"
        else:
            flag_aa = "" if points(r["apgd_test"], aa) <= APGD_TARGET else " (missed)"
            aa_cells = (f"{100 * aa:.1f} | {points(r['robust_val'], aa):+.1f} | "
                        f"{points(r['apgd_test'], aa):+.1f}{flag_aa} |")
        main.append(f"| {r['kind']} | {100 * r['clean_test']:.1f} | {100 * r['robust_val']:.1f} | "
                    f"{100 * r['pgd_test']:.1f} | {100 * r['apgd_test']:.1f} | {aa_cells}")
        gap = points(r["robust_val"], r["apgd_test"])
        gaps.append(f"| {r['kind']} | {gap:+.1f}{'' if gap <= PER_EPOCH_TARGET else ' (missed)'} | "
                    f"{points(r['robust_val'], r['pgd_test']):+.1f} | {points(r['pgd_test'], r['apgd_test']):+.1f} | "
                    + " | ".join(f"{points(v, r['apgd_test']):+.1f}" for v in r["probes"].values()) + " |")
    return "\n".join(main), "\n".join(gaps)


def loss_table(rows: list[dict[str, Any]]) -> str:
    """Per kind and ``eval_loss``: per-epoch attack minus APGD on the test split (the attack's own
    gap) and per-epoch (val) minus APGD (test), as seed 0 / mean over the seeds; then the largest
    and the mean over the kinds."""
    losses = list(rows[0]["losses"]) if rows else []
    if not losses:
        return ""
    head = ("| kind | " + " | ".join(f"`{loss}`: test - APGD" for loss in losses) + " | "
            + " | ".join(f"`{loss}`: val - APGD (test)" for loss in losses) + " |")
    lines = [head, "|---|" + "---:|" * (2 * len(losses))]

    def gaps(r, loss, split) -> tuple[float, float]:
        values = r["losses"][loss][split]
        return points(values[0], r["apgd_test"]), points(statistics.mean(values), r["apgd_test"])

    for r in rows:
        cells = [f"{a:+.1f} / {m:+.1f}" for split in ("test", "val") for a, m in (gaps(r, loss, split) for loss in losses)]
        lines.append(f"| {r['kind']} | " + " | ".join(cells) + " |")
    for name, reduce in (("largest", max), ("mean", statistics.mean)):
        cells = []
        for split in ("test", "val"):
            for loss in losses:
                pairs = [gaps(r, loss, split) for r in rows]
                cells.append(f"{reduce(p[0] for p in pairs):+.1f} / {reduce(p[1] for p in pairs):+.1f}")
        lines.append(f"| **{name}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cost_line(rows: list[dict[str, Any]], losses: list[str] | None = None) -> str:
    """Mean seconds of one test-split run (270 images) of each per-epoch attack (``losses``,
    default: the first row's) over ``rows``, and its ratio to the first attack's, measured side by
    side in the same process."""
    losses = (list(rows[0]["losses"]) if rows else []) if losses is None else losses
    if not losses:
        return ""
    seconds = {loss: statistics.mean(r["losses"][loss]["s"] for r in rows) for loss in losses}
    base = seconds[losses[0]]
    return ("Seconds per run on the 270 test images (mean over the networks; ratio to "
            f"`{losses[0]}`): " + "; ".join(f"`{loss}` {s:.2f} s ({s / base:.2f}x)" for loss, s in seconds.items()) + ".")


def loss_verdict(rows: list[dict[str, Any]]) -> str:
    """One sentence per loss: does its test-split gap (seed 0) stay within the target on every kind."""
    losses = list(rows[0]["losses"]) if rows else []
    parts = []
    for loss in losses:
        gaps = {r["kind"]: points(r["losses"][loss]["test"][0], r["apgd_test"]) for r in rows}
        missed = {k: g for k, g in gaps.items() if g > PER_EPOCH_TARGET}
        parts.append(f"`{loss}` " + ("within the target on every kind" if not missed else
                     f"misses on {', '.join(missed)} by up to {max(missed.values()) - PER_EPOCH_TARGET:.1f} points"))
    return (f"Per-epoch attack on the test split at most {PER_EPOCH_TARGET} points above APGD (seed 0): "
            + "; ".join(parts) + "." if parts else "")


def pooled_body(files: list[Path]) -> str:
    """One row per network (kind, training seed) of the ``--json`` files: per ``eval_loss``, its
    per-epoch attack minus APGD on the test split (eval_seed 0 / mean over the seeds); then the
    largest and mean gap, the networks within the target, and paired comparisons."""
    networks: list[tuple[str, dict[str, Any]]] = []
    runs = []
    for file in files:
        data = json.loads(file.read_text(encoding="utf-8"))
        runs.append(f"- `{file.name}`: `{data.get('command', 'unknown command')}`")
        seed = re.search(r"--seed[ =](\d+)", data.get("command", ""))
        for r in data.get("accuracy", []):
            if not r.get("losses"):
                continue
            label = r["kind"] if r["kind"] == "knee" else f"{r['kind']}, seed {r.get('train_seed', seed.group(1) if seed else 0)}"
            own = r.get("eval_attack", OLD_DIGITS_ATTACK)
            r = {**r, "losses": {spelled_out(k, own): v for k, v in r["losses"].items()}}
            networks.append((f"{label} ({file.name})", r))
    if not networks:
        raise ValueError(f"no --eval-losses figures in {', '.join(map(str, files))}")
    losses = [loss for loss in networks[0][1]["losses"] if all(loss in r["losses"] for _, r in networks)]
    gap: dict[str, list[tuple[float, float]]] = {loss: [] for loss in losses}
    lines = ["| network | final APGD (test) | " + " | ".join(f"`{loss}`: test - APGD" for loss in losses) + " |",
             "|---|---:|" + "---:|" * len(losses)]
    for label, r in networks:
        cells = []
        for loss in losses:
            values = r["losses"][loss]["test"]
            pair = (points(values[0], r["apgd_test"]), points(statistics.mean(values), r["apgd_test"]))
            gap[loss].append(pair)
            cells.append(f"{pair[0]:+.1f} / {pair[1]:+.1f}")
        lines.append(f"| {label} | {100 * r['apgd_test']:.1f} | " + " | ".join(cells) + " |")
    for name, reduce in (("largest", max), ("mean", statistics.mean)):
        lines.append(f"| **{name}** | | " + " | ".join(
            f"{reduce(p[0] for p in gap[loss]):+.1f} / {reduce(p[1] for p in gap[loss]):+.1f}" for loss in losses) + " |")
    if len(files) > 1:  # each run alone, e.g. the networks an attack was chosen on vs. held-out ones
        for file in files:
            mine = [i for i, (label, _) in enumerate(networks) if label.endswith(f"({file.name})")]
            lines.append(f"| **{file.name}: largest / mean of the seed means** | | " + " | ".join(
                f"{max(gap[loss][i][1] for i in mine):+.1f} / {statistics.mean(gap[loss][i][1] for i in mine):+.1f}"
                for loss in losses) + " |")
    lines.append(f"| **within +{PER_EPOCH_TARGET}** | | " + " | ".join(
        f"{sum(p[0] <= PER_EPOCH_TARGET for p in gap[loss])} / {sum(p[1] <= PER_EPOCH_TARGET for p in gap[loss])} "
        f"of {len(networks)}" for loss in losses) + " |")
    pairs = []
    for i, a in enumerate(losses[:1]):  # each attack against the first (the baseline)
        for b in losses[i + 1:]:
            diffs = [pa[1] - pb[1] for pa, pb in zip(gap[a], gap[b])]
            pairs.append(f"`{a}` vs. `{b}` (seed means): `{a}` smaller on {sum(d < 0 for d in diffs)}, "
                         f"`{b}` smaller on {sum(d > 0 for d in diffs)}, tied on {sum(d == 0 for d in diffs)} "
                         f"networks, mean difference {statistics.mean(diffs):+.2f} points")
    seeds = len(networks[0][1]["losses"][losses[0]]["test"])
    return "\n".join([
        f"{len(networks)} networks from {len(files)} runs of `--part accuracy --eval-attacks`, each attacked "
        f"at its own eps, {DIGITS['eval_steps']} forward-backward passes per image and 1 restart (the digits "
        "per-epoch cost) by each per-epoch attack: `LOSS:SCHEDULE:STEP` is robnas's evaluation PGD with "
        "`eval_loss` LOSS, `eval_schedule` SCHEDULE and first step STEP x eps (`ce+margin:constant:0.25` "
        "was the digits default before `eval_schedule`); `apgd-ce`, `apgd-dlr`, `apgd-ce+dlr`: pyautoattack's "
        "APGD with as many passes. Points above the final APGD-CE + APGD-T (100 iterations each) on the "
        "270 test images (one image = "
        f"0.37 points); each cell is eval_seed 0 / the mean over eval_seed 0-{seeds - 1}.",
        "",
        *lines,
        "",
        "; ".join(pairs) + ".",
        "",
        cost_line([r for _, r in networks], losses),
        "",
        "Runs:",
        "",
        *runs,
    ])


def verdict(rows: list[dict[str, Any]]) -> str:
    """One line: which targets hold on which kinds."""
    def which(test) -> str:
        missed = [r["kind"] for r in rows if not test(r)]
        return "held on every kind" if not missed else f"MISSED on {', '.join(missed)}"
    return (f"Targets: APGD within {APGD_TARGET} points of AutoAttack: "
            f"{which(lambda r: r['autoattack_test'] is None or points(r['apgd_test'], r['autoattack_test']) <= APGD_TARGET)}"
            f"{' (AutoAttack not run)' if any(r['autoattack_test'] is None for r in rows) else ''}; "
            f"per-epoch (val) at most {PER_EPOCH_TARGET} points above the final APGD (test): "
            f"{which(lambda r: points(r['robust_val'], r['apgd_test']) <= PER_EPOCH_TARGET)}; "
            f"the same on the test split alone (per-epoch PGD vs. APGD): "
            f"{which(lambda r: points(r['pgd_test'], r['apgd_test']) <= PER_EPOCH_TARGET)}.")


def split_note(rows: list[dict[str, Any]]) -> str:
    """How much of the split column sampling alone explains: the standard error of the
    difference of two independent accuracies on ``n`` images each, at the mean test PGD accuracy."""
    if not rows:
        return ""
    p, n = statistics.mean(r["pgd_test"] for r in rows), rows[0]["images"]
    se = 100 * math.sqrt(2 * p * (1 - p) / n)
    return (f"Val and test are different {n}-image samples: near {100 * p:.0f} % robust accuracy the "
            f"difference of two such accuracies has a standard error of {se:.1f} points, so the split "
            f"column is mostly sampling noise and a {PER_EPOCH_TARGET}-point target across the splits cannot "
            "hold reliably on digits whatever the attack; the attack column (same images) is what a "
            "stronger per-epoch attack can close.")


def accuracy_body(rows: list[dict[str, Any]], args: argparse.Namespace, loads: list) -> str:
    main, gaps = accuracy_tables(rows)
    eps = DIGITS["eval_eps"]
    losses = loss_table(rows)
    loss_part = [] if not losses else [
        "",
        f"Each per-epoch attack at the same cost ({DIGITS['eval_steps']} forward-backward passes per image, "
        "1 restart; `LOSS:SCHEDULE:STEP`: `eval_loss`, `eval_schedule`, first step STEP x eps; `apgd-*`: "
        "pyautoattack's APGD), on the same trained networks, in points above the final APGD (test); each cell is "
        f"eval_seed 0 / the mean over eval_seed 0-{args.eval_seeds - 1}. `test - APGD`: the same test "
        "images, so the attack's own gap; `val - APGD (test)`: what the trial would report after its last "
        "epoch (validation split) against the final number:",
        "",
        losses,
        "",
        loss_verdict(rows),
        "",
        cost_line(rows),
    ]
    curves = [f"- {r['kind']} ({KINDS[r['kind']][0]}; `{r['arch']}`, {r['epochs']} epochs, sparsity "
              f"{r['sparsity']:.2f}): " + ", ".join(f"{100 * v:.1f}" for v in r["val_robust_by_epoch"])
              + f"; APGD {r['apgd_s']:.0f} s" + ("" if r["autoattack_s"] is None else f", AutoAttack {r['autoattack_s']:.0f} s")
              for r in rows]
    load_text = "; ".join(f"{when}: {' / '.join(f'{v:.2f}' for v in value)}" for when, value in loads if value)
    return "\n".join([
        f"Digits defaults: eps {eps:g}/255 ({eps / 255:.2f}), width {DIGITS['width']}, "
        f"{DIGITS['cells_per_stage']} cell per stage, batch {DIGITS['batch_size']}, PGD-{DIGITS['attack_steps']} "
        f"training, per-epoch PGD-{DIGITS['eval_steps']} (`eval_schedule` {DIGITS['eval_schedule']}, first step "
        f"{DIGITS['eval_step_size']:g}/255, one random start, worst case over its iterates, `eval_loss` "
        f"{DIGITS['eval_loss']}) on all "
        f"{rows[0]['images'] if rows else 270} validation images. "
        f"Trials trained through `TrialRunner`, {args.epochs} epochs, seed {args.seed}, one torch thread; "
        "the knee is the default search's (`robnas search`, 4 epochs). Test split: the same "
        f"{rows[0]['images'] if rows else 270} images for every attack, measured by "
        "`robnas.analysis._evaluate.measure` (what `robnas evaluate` runs): `pgd` = the per-epoch attack, "
        "APGD = APGD-CE + APGD-T (default), AA = standard AutoAttack (+ FAB-T, Square). Accuracies in %, "
        "gaps in percentage points (one test image = 0.37 points).",
        "",
        main,
        "",
        "Where the per-epoch gap comes from (split + attack = total); the last columns make the "
        "per-epoch PGD stronger (steps x restarts, step 2.5 eps / steps) on the test images:",
        "",
        gaps,
        "",
        split_note(rows),
        *loss_part,
        "",
        "Per-epoch robust accuracy (val, %) as the trial reported it, epoch by epoch:",
        "",
        *curves,
        "",
        verdict(rows),
        "",
        f"Load average (1 / 5 / 15 min): {load_text}.",
    ])


def cost_body(search: dict[str, Any], cost: dict[str, Any]) -> str:
    def load(value) -> str:
        return " / ".join(f"{v:.2f}" for v in value) if value else "unknown"
    per_trial = cost["wall_s"] / max(cost["measured"] or cost["trials"], 1)
    return "\n".join([
        "| step | wall time | load before | load after |",
        "|---|---:|---|---|",
        f"| `robnas search` (README command 1: 12 trials, <= 4 epochs, MO-ASHA, MO-TPE, screening) | "
        f"{search['wall_s']:.0f} s | {load(search['load_before'])} | {load(search['load_after'])} |",
        f"| `robnas evaluate DIR --trials front` ({cost['measured']} trials, {cost['images']} test images, "
        f"APGD-CE + APGD-T) | {cost['wall_s']:.0f} s ({per_trial:.0f} s per trial) | "
        f"{load(cost['load_before'])} | {load(cost['load_after'])} |",
        "",
        f"The final evaluation took {100 * cost['share']:.0f} % of the search's own wall time "
        f"(search: `{search['last_line']}`). Both are whole processes timed from outside (Python and "
        "torch start-up included; Ray's start-up in the search). The machine's 2 cores were shared with "
        "other work at the loads shown: rerun `--part cost` on a quiet machine before quoting the times.",
    ])


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("accuracy", "cost", "all"), default="all")
    parser.add_argument("--epochs", type=int, default=int(DIGITS["max_epochs"]),
                        help="epochs of the TrialRunner kinds (default: the digits default, as a search trains)")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"subset of {','.join(KINDS)}")
    parser.add_argument("--seed", type=int, default=0, help="training seed of the TrialRunner kinds")
    parser.add_argument("--storage", type=Path,
                        help="where the default search goes (kept); default: a temporary directory")
    parser.add_argument("--eval-losses", default="",
                        help="also run the per-epoch attack with each of these eval_loss values "
                             "(e.g. ce,margin,ce+margin) at the same cost, on the same networks")
    parser.add_argument("--eval-attacks", default="",
                        help="also run these per-epoch attacks at the trial's cost (steps, restarts): "
                             "LOSS:SCHEDULE:STEP[:RxS] (STEP: first step as a multiple of eps, e.g. "
                             "ce+margin:apgd:2; RxS: R restarts of S steps, e.g. 2x5) or apgd-ce, apgd-dlr, apgd-ce+dlr (pyautoattack)")
    parser.add_argument("--skip-autoattack", action="store_true",
                        help="measure APGD-CE + APGD-T but not the full AutoAttack (minutes per network)")
    parser.add_argument("--eval-seeds", type=int, default=1,
                        help="random-start seeds per --eval-losses figure (0 .. N-1)")
    parser.add_argument("--pool", default="",
                        help="comma-separated --json files of earlier --eval-losses runs: record their "
                             "figures pooled in one table, and nothing else")
    parser.add_argument("--pool-title", default=POOL_TITLE, help="section title of the --pool figures")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.seed < 0 or args.eval_seeds < 1:
        parser.error(f"--epochs and --eval-seeds must be >= 1 and --seed >= 0, got {args.epochs}, "
                     f"{args.eval_seeds} and {args.seed}")
    args.eval_losses = list(dict.fromkeys(k.strip() for k in args.eval_losses.split(",") if k.strip()))
    if any(loss not in EVAL_LOSSES for loss in args.eval_losses):
        parser.error(f"unknown --eval-losses {args.eval_losses}; allowed: {', '.join(EVAL_LOSSES)}")
    args.eval_attacks = list(dict.fromkeys(k.strip() for k in args.eval_attacks.split(",") if k.strip()))
    for spec in args.eval_attacks:
        try:
            parse_attack(spec)
        except ValueError as error:
            parser.error(str(error))
    args.eval_losses = list(dict.fromkeys(args.eval_losses + args.eval_attacks))
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown or not args.kinds:
        parser.error(f"unknown --kinds {unknown or args.kinds}; allowed: {', '.join(KINDS)}")
    if args.storage is not None and (args.storage / SEARCH_NAME).exists():
        parser.error(f"{args.storage / SEARCH_NAME} exists; give an empty --storage")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.pool:
        text = pooled_body([Path(name.strip()) for name in args.pool.split(",") if name.strip()])
        print(text, flush=True)
        if not args.no_record:
            print(f"recorded in {record_section(args.pool_title, text, command=current_command())}")
        return 0
    accuracy, cost = args.part in ("accuracy", "all"), args.part in ("cost", "all")
    out: dict[str, Any] = {"machine": machine_info(), "command": current_command()}
    with contextlib.ExitStack() as stack:
        storage = args.storage or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="robnas-final-")))
        storage.mkdir(parents=True, exist_ok=True)
        search = None
        if cost or "knee" in args.kinds:
            search = out["search"] = run_default_search(storage)
            print(f"search: {search['wall_s']:.0f} s; {search['last_line']}", flush=True)
        if cost:  # before the accuracy part, which reads the knee's checkpoint without writing final.csv
            out["cost"] = measure_cost(search)
            text = cost_body(search, out["cost"])
            print("\n" + text, flush=True)
            if not args.no_record:
                print(f"recorded in {record_section(COST_TITLE, text, command=current_command())}")
        if accuracy:
            import torch

            torch.set_num_threads(1)  # as a search's trial and `robnas evaluate` run
            loads, rows = [("start", load_average())], []
            for kind in args.kinds:
                overrides = KINDS[kind][1]
                start = time.perf_counter()
                trial, reports = (knee_model(search["dir"]) if overrides is None
                                  else train_kind(kind, overrides, epochs=args.epochs, seed=args.seed))
                rows.append({**evaluate_kind(kind, trial, reports, losses=args.eval_losses, eval_seeds=args.eval_seeds,
                                             autoattack=not args.skip_autoattack),
                             "seconds": time.perf_counter() - start})
                loads.append((f"after {kind}", load_average()))
                print(accuracy_tables(rows[-1:])[0].splitlines()[-1], flush=True)
            out["accuracy"] = rows
            text = accuracy_body(rows, args, loads)
            print("\n" + text, flush=True)
            if not args.no_record:
                print(f"recorded in {record_section(TITLE, text, command=current_command())}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
