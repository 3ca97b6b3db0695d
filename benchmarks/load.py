"""Load: a 1,000-trial search on the table backend; driver peak memory and wall time per trial.

Usage: python benchmarks/load.py [--table PATH] [--trials 1000] [--concurrency 2] [--json]

Replays NAS-RobBench-201 (no training), so the figures are robnas's and Ray Tune's own cost per
trial: suggestion (Optuna TPE + deduplication), scheduling, trial start-up with reused actors,
result handling and experiment checkpoints. Targets: driver peak RSS < 1.5 GB, < 0.25 s a trial.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record_section  # noqa: E402

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nasrobbench201_cifar10.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--searcher", default="random")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import ray

    from robnas.search import run

    ray.init(address="local", num_cpus=args.concurrency, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", _node_ip_address="127.0.0.1")
    with tempfile.TemporaryDirectory() as storage:
        start = time.perf_counter()
        grid = run(backend="table", table=args.table, objectives="clean_acc,pgd_eps8_acc",
                   scheduler="fifo", searcher=args.searcher, screen=0,  # Tune's own cost, no screening
                   num_samples=args.trials,
                   max_concurrent=args.concurrency, cpus_per_trial=1, storage_path=storage, name="load")
        wall = time.perf_counter() - start
        errors = sum(r.error is not None for r in grid)
    ray.shutdown()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {
        "trials": len(grid), "failed": errors, "concurrency": args.concurrency, "searcher": args.searcher,
        "wall_s": round(wall, 1), "s_per_trial": round(wall / max(len(grid), 1), 3),
        "driver_peak_rss_mb": round(peak_mb, 1),
    }
    body = "\n".join([
        "| trials | failed | concurrency | searcher | wall (s) | s / trial | driver peak RSS (MB) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {row['trials']} | {row['failed']} | {row['concurrency']} | {row['searcher']} | {row['wall_s']} "
        f"| {row['s_per_trial']} | {row['driver_peak_rss_mb']} |",
        "",
        "Targets: < 0.25 s per trial, driver peak RSS < 1.5 GB (1536 MB).",
    ])
    print(json.dumps(row) if args.json else body)
    record_section("Load: 1,000 trials on the table backend", body,
                   command="python benchmarks/load.py " + " ".join(argv or sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
