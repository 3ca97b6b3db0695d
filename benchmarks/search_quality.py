"""Search quality of robnas's strategies on a table of published results: regret and hypervolume.

Every strategy is a searcher as ``robnas search --backend table`` builds it (random, TPE,
NSGA-II or MO-TPE, with or without ``--screen``), driven by ``robnas.search._simulate``: one
trial at a time, as Tune drives it with one trial running and a FIFO scheduler (the test suite
checks that both launch the same cells). Ray's actors add time per trial and nothing to the
sequence of configurations, so they are left out. No strategy depends on its budget, so budget ``b`` is
the first ``b`` trials of a run at the largest budget. Proxies are a function of the config
alone; one scorer (and its cache) serves every run.

Two tasks, ``--seeds`` seeds each:

* one objective, the target (max): regret = the table's best target minus the best found, in
  the table's units (points for NAS-RobBench-201); median over seeds and the share of seeds
  with regret <= 0.5;
* two objectives, the target (max) and the parameters of the NB201 network (C=16, N=5, 3x32x32
  input, ``--num-classes`` classes; min): the hypervolume of the found front as a fraction of
  the table's true front's, reference point (median of the table's target, 1.01 x the largest
  parameter count); median over seeds.

``default`` is what ``robnas search`` does when neither ``--searcher`` nor ``--screen`` is
given: TPE on one objective, MO-TPE on several, screening on.

    python benchmarks/search_quality.py                 # ~15 min on 2 cores
    python benchmarks/search_quality.py --seeds 3 --budgets 25 --strategies random,default --json --no-record
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import current_command, record_section  # noqa: E402

from robnas.analysis import hypervolume  # noqa: E402
from robnas.analysis._pareto import pareto_mask  # noqa: E402
from robnas.search._candidate_proxies import CandidateScorer  # noqa: E402
from robnas.search._settings import DEFAULT_SCREEN, SearchSettings  # noqa: E402
from robnas.search._simulate import simulate  # noqa: E402
from robnas.spaces._genotype import Genotype  # noqa: E402
from robnas.trainables._network import nb201_param_count  # noqa: E402
from robnas.trainables._table import ResultTable, replay  # noqa: E402
from robnas.spaces._runtime import scalarize  # noqa: E402

TITLE = "Search quality on NAS-RobBench-201 (table backend)"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SEARCHERS = ("random", "tpe", "nsga2", "motpe")
STRATEGIES = (*SEARCHERS, *(f"{s}+screen" for s in SEARCHERS), "default")
SINGLE = ("random", "tpe")  # searchers of one objective (nsga2 and motpe need two)
MULTI = ("random", "nsga2", "motpe")  # tpe on two objectives would optimise a weighted sum
#: Targets of the default strategy at 25 evaluations.
TARGETS = {"median_regret": 0.3, "share_regret_le_0_5": 0.8, "hypervolume_fraction": 0.85}
TARGET_BUDGET = 25


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(DATA / "nasrobbench201_cifar10.csv"))
    parser.add_argument("--target", default="pgd_eps8_acc", help="metric column to maximise")
    parser.add_argument("--budgets", default="25,50,100", help="evaluated cells, comma-separated")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help=", ".join(STRATEGIES))
    parser.add_argument("--num-classes", type=int, default=10, help="classes of the network whose parameters count")
    parser.add_argument("--json", action="store_true", help="print one JSON object per strategy and budget")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    try:
        args.budgets = sorted({int(b) for b in args.budgets.split(",") if b.strip()})
    except ValueError:
        parser.error(f"--budgets must be comma-separated integers, got {args.budgets!r}")
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown or not args.strategies:
        parser.error(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    if not args.budgets or args.budgets[0] < 1 or args.seeds < 1 or args.num_classes < 2:
        parser.error("budgets and --seeds must be >= 1, --num-classes >= 2")
    return args


class Task:
    """One search task on the table: its objectives and every cell's true values."""

    def __init__(self, table: ResultTable, frame: pd.DataFrame, objectives: tuple[str, ...], num_classes: int):
        self.table = table
        self.objectives = objectives
        self.num_classes = num_classes
        cells = table.cells()
        values = np.array([self.values_of(self.report(cell)) for cell in cells])
        self.best = float(values[:, 0].max())
        self.modes = ("max", "min")[: len(objectives)]
        if len(objectives) == 2:
            self.reference = np.array([float(frame[objectives[0]].median()), 1.01 * values[:, 1].max()])
            front = values[pareto_mask(values, [True, False])]
            self.true_hypervolume = hypervolume(front, [True, False], self.reference)

    def report(self, cell: Genotype, score_weights: dict[str, float] | None = None) -> list[dict[str, Any]]:
        """The replayed reports of ``cell``, with its parameter count for ``num_classes``."""
        params = nb201_param_count(cell, width=16, cells_per_stage=5, num_classes=self.num_classes)
        reports = replay(cell, self.table)
        for report in reports:
            report["params"] = params
            if score_weights:
                report["score"] = scalarize(report, score_weights)
        return reports

    def values_of(self, reports: list[dict[str, Any]]) -> tuple[float, ...]:
        return tuple(float(reports[-1][name]) for name in self.objectives)

    def quality(self, found: np.ndarray) -> float:
        """Regret of the found values ``(n, 1)``, or hypervolume fraction of ``(n, 2)``."""
        if len(self.objectives) == 1:
            return self.best - float(found[:, 0].max())
        return hypervolume(found, [True, False], self.reference) / self.true_hypervolume


def settings_of(strategy: str, task: Task, table_path: str, seed: int, budget: int) -> SearchSettings:
    searcher, _, screened = strategy.partition("+")
    options: dict[str, Any] = {}
    if strategy != "default":
        options = {"searcher": searcher, "screen": DEFAULT_SCREEN if screened else 0}
    return SearchSettings(backend="table", table=table_path, objectives=task.objectives, seed=seed,
                          num_samples=budget, scheduler="fifo", max_concurrent=1, **options)


def run_search(settings: SearchSettings, task: Task, scorer: CandidateScorer) -> np.ndarray:
    """Objective values ``(n, len(objectives))`` of the trials in launch order."""
    def reports_of(config):
        return task.report(Genotype.from_config(config), config["score_weights"])

    return np.array([task.values_of(reports) for _, reports in simulate(settings, reports_of, scorer=scorer)])


def applies(strategy: str, task: Task) -> bool:
    searcher = strategy.partition("+")[0]
    return strategy == "default" or searcher in (SINGLE if len(task.objectives) == 1 else MULTI)


def evaluate(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, float]]:
    table = ResultTable.load(args.table)
    if args.target not in table.metrics:
        raise SystemExit(f"error: table {args.table} has no metric {args.target!r} ({', '.join(table.metrics)})")
    frame = pd.read_csv(args.table) if args.table.endswith(".csv") else pd.read_parquet(args.table)
    tasks = {name: Task(table, frame, objectives, args.num_classes)
             for name, objectives in (("single", (args.target,)), ("two", (args.target, "params")))}
    scorer = CandidateScorer()
    budget = max(args.budgets)
    rows, seconds = [], {}
    for strategy in args.strategies:
        started = time.process_time()
        quality: dict[str, dict[int, list[float]]] = {name: {b: [] for b in args.budgets} for name in tasks}
        for name, task in tasks.items():
            if not applies(strategy, task):
                continue
            for seed in range(args.seeds):
                found = run_search(settings_of(strategy, task, args.table, seed, budget), task, scorer)
                for b in args.budgets:
                    quality[name][b].append(task.quality(found[:b]))
        seconds[strategy] = time.process_time() - started
        for b in args.budgets:
            regrets, fractions = quality["single"][b], quality["two"][b]
            rows.append({
                "strategy": strategy,
                "budget": b,
                "median_regret": float(np.median(regrets)) if regrets else None,
                "share_regret_le_0_5": float(np.mean(np.array(regrets) <= 0.5)) if regrets else None,
                "hypervolume_fraction": float(np.median(fractions)) if fractions else None,
                "seeds": args.seeds,
                "default": strategy == "default",
            })
        print(f"# {strategy}: {seconds[strategy]:.0f} CPU s", file=sys.stderr, flush=True)
    return rows, seconds


def _cell(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(rows: list[dict[str, Any]], seconds: dict[str, float], args: argparse.Namespace) -> str:
    budgets = args.budgets
    head = ["strategy", *(f"regret @{b}" for b in budgets), *(f"<=0.5 @{b}" for b in budgets),
            *(f"HV frac @{b}" for b in budgets), "CPU s"]
    lines = [
        f"Table `{Path(args.table).name}`, target `{args.target}`, {args.seeds} seeds (0..{args.seeds - 1}). "
        f"Regret: median over seeds of (table best - best found), points; `<=0.5`: share of seeds with "
        f"regret <= 0.5. HV frac: median hypervolume of the found front ({args.target} max, parameters of "
        f"the C=16, N=5 network with {args.num_classes} classes min) over the true front's, reference "
        "(median of the table's target, 1.01 x largest parameter count). `+screen`: "
        f"`--screen {DEFAULT_SCREEN}` (proxies params, synflow, jacob_cov on the digits network of the cell, "
        "plus the incumbent's one-change neighbours). `default`: no `--searcher`/`--screen` given "
        "(TPE on one objective, MO-TPE on two, screening on). tpe runs only the one-objective task, "
        "nsga2 and motpe only the two-objective one. CPU s: both tasks, all seeds, proxies of cells "
        "not yet scored by an earlier strategy included.",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 1),
    ]
    by_strategy: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        by_strategy.setdefault(row["strategy"], {})[row["budget"]] = row
    for strategy, cells in by_strategy.items():
        values = [*(_cell(cells[b]["median_regret"]) for b in budgets),
                  *(_cell(cells[b]["share_regret_le_0_5"]) for b in budgets),
                  *(_cell(cells[b]["hypervolume_fraction"], 3) for b in budgets)]
        name = f"**{strategy}**" if strategy == "default" else strategy
        lines.append(f"| {name} | " + " | ".join(values) + f" | {seconds[strategy]:.0f} |")
    lines += ["", *verdicts(rows)]
    return "\n".join(lines)


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    default = next((r for r in rows if r["default"] and r["budget"] == TARGET_BUDGET), None)
    if default is None:
        return [f"Targets not checked: no `default` row at {TARGET_BUDGET} evaluations."]
    lines = [f"Targets of the default strategy at {TARGET_BUDGET} evaluations:", ""]
    for name, bound in TARGETS.items():
        value = default[name]
        met = value is not None and (value <= bound if name == "median_regret" else value >= bound)
        sign = "<=" if name == "median_regret" else ">="
        lines.append(f"- {name}: {_cell(value, 3)} (target {sign} {bound}): {'met' if met else 'NOT met'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows, seconds = evaluate(args)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    text = markdown(rows, seconds, args)
    if not args.json:
        print(text)
    if not args.no_record:
        record_section(TITLE, text, command=current_command())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
