"""Search quality of robnas's strategies on a table of published results: regret and hypervolume.

Every strategy is a searcher as ``robnas search --backend table`` builds it (random, TPE,
NSGA-II or MO-TPE, with or without ``--screen``), driven by ``robnas.search._simulate``: one
trial at a time, as Tune drives it with one trial running and a FIFO scheduler (the test suite
checks that both launch the same cells). No strategy depends on its budget, so budget ``b`` is
the first ``b`` trials of a run at the largest budget. Proxies are a function of the config
alone; one scorer (and its cache, ``--proxy-cache``) serves every run.

Tasks (``--task``, repeatable; default ``_quality_tasks.DEFAULT_TASKS``) are objective lists in
``robnas search``'s vocabulary; see ``_quality_tasks`` for the quality of each (regret of one
objective, hypervolume fraction of several). Strategies:

* ``default``: what ``robnas search`` does when neither ``--searcher`` nor ``--screen`` is
  given (TPE on one objective, MO-TPE on several, screening on);
* ``bound``: ``default`` with every prediction of the screening replaced by the true value;
* the plain searchers and ``<searcher>+screen``. tpe runs one-objective tasks only, nsga2 and
  motpe several-objective ones.

    python benchmarks/search_quality.py                 # all tasks, seeds 10..19
    python benchmarks/search_quality.py --task clean_acc,pgd_eps8_acc --seeds 3 --budgets 25 \\
        --strategies random,default --no-record
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _quality_tasks import DEFAULT_TASKS, Task, bound_screen  # noqa: E402
from _results import publish  # noqa: E402

from robnas.search._candidate_proxies import CandidateScorer  # noqa: E402
from robnas.search._settings import DEFAULT_SCREEN, SearchSettings  # noqa: E402
from robnas.search._simulate import simulate  # noqa: E402
from robnas.trainables._table import ResultTable  # noqa: E402

TITLE = "Search quality on NAS-RobBench-201 (table backend)"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SEARCHERS = ("random", "tpe", "nsga2", "motpe")
STRATEGIES = (*SEARCHERS, *(f"{s}+screen" for s in SEARCHERS), "default", "bound")
RECORDED = ("default", "motpe", "nsga2", "random", "tpe", "bound")
SINGLE = ("random", "tpe")  # searchers of one objective (nsga2 and motpe need two)
MULTI = ("random", "nsga2", "motpe")  # tpe on several objectives would optimise a weighted sum
#: Targets of the default strategy at 25 evaluations.
TARGETS = {"median_regret": 0.3, "share_regret_le_0_5": 0.8, "hypervolume_fraction": 0.85}
TARGET_BUDGET = 25


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(DATA / "nasrobbench201_cifar10.csv"))
    parser.add_argument("--task", action="append", dest="tasks", metavar="OBJECTIVES",
                        help="objectives of one task, e.g. clean_acc,pgd_eps8_acc,params (repeatable)")
    parser.add_argument("--budgets", default="25,50,100", help="evaluated cells, comma-separated")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=10)
    parser.add_argument("--strategies", default=",".join(RECORDED), help=", ".join(STRATEGIES))
    parser.add_argument("--num-classes", type=int, default=10, help="classes of the network whose size counts")
    parser.add_argument("--input-size", default="3x32x32", help="CxHxW of the network whose size counts")
    parser.add_argument("--proxy-cache", type=Path, help="pickle of proxy scores, read and updated")
    parser.add_argument("--json", type=Path, help="write the raw figures to this JSON file")
    parser.add_argument("--rows-from", type=Path, action="append", default=[],
                        help="JSON of an earlier run (its --json; repeatable): its rows of strategies not run here "
                        "are reported too")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    try:
        args.budgets = sorted({int(b) for b in args.budgets.split(",") if b.strip()})
        args.input_size = tuple(int(side) for side in args.input_size.lower().split("x"))
    except ValueError:
        _fail(f"--budgets and --input-size must be integers (25,50 and 3x32x32), got {args.budgets!r}, {args.input_size!r}")
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown or not (args.strategies or args.rows_from):
        _fail(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)} (none: only with --rows-from)")
    if (not args.budgets or args.budgets[0] < 1 or args.seeds < 1 or args.first_seed < 0 or args.num_classes < 2
            or len(args.input_size) != 3 or min(args.input_size) < 1):
        _fail("budgets and --seeds must be >= 1, --first-seed >= 0, --num-classes >= 2, --input-size CxHxW")
    args.tasks = args.tasks or list(DEFAULT_TASKS)
    return args


def load_tasks(args: argparse.Namespace) -> list[Task]:
    try:
        table = ResultTable.load(args.table)
        channels, height, width = args.input_size
        return [Task(table, spec, in_channels=channels, input_size=(height, width), num_classes=args.num_classes)
                for spec in args.tasks]
    except (OSError, ValueError, KeyError) as error:
        _fail(f"{args.table}: {error}")
        raise  # unreachable


def applies(strategy: str, task: Task) -> bool:
    searcher = strategy.partition("+")[0]
    return strategy in ("default", "bound") or searcher in (SINGLE if task.single else MULTI)


def settings_of(strategy: str, task: Task, table_path: str, seed: int, budget: int) -> SearchSettings:
    searcher, _, screened = strategy.partition("+")
    options: dict[str, Any] = {}
    if strategy not in ("default", "bound"):
        options = {"searcher": searcher, "screen": DEFAULT_SCREEN if screened else 0}
    return SearchSettings(backend="table", table=table_path, objectives=[str(o) for o in task.objectives],
                          seed=seed, num_samples=budget, scheduler="fifo", max_concurrent=1, **options)


def run_search(strategy: str, task: Task, settings: SearchSettings, scorer: CandidateScorer) -> np.ndarray:
    """Objective values ``(n, len(objectives))`` of the trials in launch order."""
    screen = bound_screen(task) if strategy == "bound" else None
    with mock.patch("robnas.search._screening.Screen", screen) if screen else _nothing():
        trials = simulate(settings, task.reports, scorer=scorer)
    return np.array([task.values_of(reports[-1]) for _, reports in trials])


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def evaluate(args: argparse.Namespace, tasks: list[Task]) -> list[dict[str, Any]]:
    """One row per (task, strategy, budget): median quality over the seeds and CPU seconds."""
    scorer = CandidateScorer()
    if args.proxy_cache and args.proxy_cache.exists():
        scorer.cache.update(pickle.loads(args.proxy_cache.read_bytes()))
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    rows = []
    for task in tasks:
        for strategy in (s for s in args.strategies if applies(s, task)):
            started = time.process_time()
            found = [run_search(strategy, task, settings_of(strategy, task, args.table, seed, max(args.budgets)), scorer)
                     for seed in seeds]
            seconds = time.process_time() - started
            for budget in args.budgets:
                quality = np.array([task.quality(f[:budget]) for f in found])
                row = {"task": task.name, "strategy": strategy, "budget": budget, "seeds": list(seeds),
                       "values": quality.tolist(), "median": float(np.median(quality)), "cpu_s": seconds}
                if task.single:
                    row["share_regret_le_0_5"] = float(np.mean(quality <= 0.5))
                rows.append(row)
            print(f"# {task.name} {strategy}: " + " ".join(
                f"@{r['budget']} {r['median']:.3f}" for r in rows[-len(args.budgets):]) + f" ({seconds:.0f} CPU s)",
                file=sys.stderr, flush=True)
        if args.proxy_cache:
            args.proxy_cache.write_bytes(pickle.dumps(scorer.cache))
    return rows


def markdown(rows: list[dict[str, Any]], tasks: list[Task], args: argparse.Namespace) -> str:
    budgets = args.budgets
    seeds = f"{args.first_seed}..{args.first_seed + args.seeds - 1}"
    lines = [
        f"Table `{Path(args.table).name}`, {args.seeds} seeds ({seeds}), budgets {', '.join(map(str, budgets))} "
        "evaluations. Several objectives: median over seeds of the found front's hypervolume as a fraction of "
        "the table's true front's (the front of every cell a search can draw: each member of a row's isomorphism "
        "class, with the row's results and its own parameters; reference: the table's median of a maximised "
        "column, 1.01 x the largest value "
        "of a minimised one; parameters of the C=16, N=5 network with "
        f"{args.num_classes} classes). One objective: median regret (table best - best found, points) and, in "
        "brackets, the share of seeds with regret <= 0.5. `default`: no `--searcher`/`--screen` (TPE on one "
        f"objective, MO-TPE on several, `--screen {DEFAULT_SCREEN}`); `bound`: `default` with the screening's "
        "predictions replaced by the true values. `-`: the strategy does not apply to the task (tpe: one "
        "objective; nsga2, motpe: several) or was not run at that budget.",
        "",
    ]
    by_key = {(r["task"], r["strategy"], r["budget"]): r for r in rows}
    strategies = [s for s in args.strategies if any(r["strategy"] == s for r in rows)]
    head = ["task", "budget", *strategies]
    lines += ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * len(strategies)]
    for task in tasks:
        for budget in budgets:
            cells = []
            for strategy in strategies:
                row = by_key.get((task.name, strategy, budget))
                if row is None:
                    cells.append("-")
                elif task.single:
                    cells.append(f"{row['median']:.2f} ({row['share_regret_le_0_5']:.1f})")
                else:
                    cells.append(f"{row['median']:.3f}")
            lines.append(f"| `{task.name}` | {budget} | " + " | ".join(cells) + " |")
    lines += ["", *verdicts(rows, tasks)]
    return "\n".join(lines)


def verdicts(rows: list[dict[str, Any]], tasks: list[Task]) -> list[str]:
    lines = [f"Targets of the default strategy at {TARGET_BUDGET} evaluations (several objectives: "
             f"HV fraction >= {TARGETS['hypervolume_fraction']}; one: median regret <= {TARGETS['median_regret']} "
             f"and share <= 0.5 >= {TARGETS['share_regret_le_0_5']}):", ""]
    for task in tasks:
        row = next((r for r in rows if r["task"] == task.name and r["strategy"] == "default"
                    and r["budget"] == TARGET_BUDGET), None)
        if row is None:
            continue
        if task.single:
            met = row["median"] <= TARGETS["median_regret"] and row["share_regret_le_0_5"] >= TARGETS["share_regret_le_0_5"]
            value = f"regret {row['median']:.2f}, share {row['share_regret_le_0_5']:.1f}"
        else:
            met = row["median"] >= TARGETS["hypervolume_fraction"]
            value = f"HV fraction {row['median']:.3f}"
        lines.append(f"- `{task.name}`: {value}: {'met' if met else 'NOT met'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tasks = load_tasks(args)
    rows = evaluate(args, tasks)
    ran = list(args.strategies)
    for path in args.rows_from:
        earlier = [r for r in json.loads(path.read_text())["rows"] if r["strategy"] not in ran]
        args.strategies += [s for s in dict.fromkeys(r["strategy"] for r in earlier) if s not in args.strategies]
        rows += earlier
    text = markdown(rows, tasks, args)
    print(text)
    publish(TITLE, text, json_path=args.json, record=not args.no_record, raw={"rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
