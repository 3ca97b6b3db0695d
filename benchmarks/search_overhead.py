"""Per-trial overhead of a robnas search on Ray Tune.

Runs ``robnas.search.run(...)`` on digits (fifo scheduler, random searcher, no screening,
>= 40 short trials, 2 concurrent) and compares its wall time with the time the trials spend inside the trainable:

- trial compute ``C`` = sum over trials of Tune's ``time_total_s`` (time inside the function
  trainable, from its first ``step()`` to its last report: config decoding, data set and model
  set-up, training, evaluation and checkpoint writing);
- ratio = wall / (C / concurrency), target <= 1.15;
- per-trial overhead = (wall - C / concurrency) / (trials / concurrency), seconds.

A Tune callback (the search's own progress printer, subclassed here) timestamps trial starts and
ends, which splits the overhead exactly into: start-up before the first trial, idle trial slots
(actor start or reset, scheduling and suggestion latency, the last trials running alone),
time a running trial's slot is held outside the trainable, and shut-down after the last trial.

    python benchmarks/search_overhead.py                       # default settings, ~2-3 min
    python benchmarks/search_overhead.py --variants default,checkpoint-10s,no-reuse

Variants other than ``default`` change one Tune setting of the search for this process only
(they patch ``robnas.search._run`` at run time) to measure where the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import load_average, publish  # noqa: E402

TITLE = "Search overhead: wall time vs. trial compute"
TARGET_RATIO = 1.15
VARIANTS = {
    "default": "as `robnas.search.run` configures Tune (reuse_actors=True, experiment state saved every 2 s)",
    "checkpoint-10s": "experiment state saved every 10 s (TUNE_GLOBAL_CHECKPOINT_S=10)",
    "no-reuse": "reuse_actors=False (a new actor per trial)",
    "quiet": "without the per-trial progress line (callback records times only)",
}


# --------------------------------------------------------------------------- instrumentation


@dataclass
class Timeline:
    """Driver-side times (seconds since ``origin``) of trial starts, results and ends."""

    origin: float = field(default_factory=time.perf_counter)
    starts: dict[str, float] = field(default_factory=dict)
    ends: dict[str, float] = field(default_factory=dict)
    results: dict[str, list[float]] = field(default_factory=dict)
    step_s: float = 0.0  # time inside Tune's control-loop steps (all of the driver's work)
    _step_begin: float | None = None

    def now(self) -> float:
        return time.perf_counter() - self.origin


def _timeline_callback(timeline: Timeline, *, quiet: bool):
    """A subclass of the search's progress callback that also records ``timeline``."""
    from robnas.search import _progress

    base = _progress.FrontProgress

    class TimedProgress(base):
        def on_step_begin(self, iteration, trials, **info):
            timeline._step_begin = time.perf_counter()

        def on_step_end(self, iteration, trials, **info):
            if timeline._step_begin is not None:
                timeline.step_s += time.perf_counter() - timeline._step_begin

        def on_trial_start(self, iteration, trials, trial, **info):
            timeline.starts.setdefault(trial.trial_id, timeline.now())

        def on_trial_result(self, iteration, trials, trial, result, **info):
            timeline.results.setdefault(trial.trial_id, []).append(timeline.now())

        def on_trial_complete(self, iteration, trials, trial, **info):
            timeline.ends[trial.trial_id] = timeline.now()
            if not quiet:
                super().on_trial_complete(iteration, trials, trial, **info)

        def on_trial_error(self, iteration, trials, trial, **info):
            timeline.ends[trial.trial_id] = timeline.now()
            if not quiet:
                super().on_trial_error(iteration, trials, trial, **info)

    return base, TimedProgress


@contextlib.contextmanager
def instrumented(variant: str, timeline: Timeline) -> Iterator[None]:
    """Install the timing callback and the variant's Tune setting; undo both on exit."""
    from ray import tune

    from robnas.search import _progress, _run

    base, timed = _timeline_callback(timeline, quiet=variant == "quiet")
    period, tune_config = _run.STATE_PERIOD_S, tune.TuneConfig
    _progress.FrontProgress = timed
    if variant == "checkpoint-10s":
        _run.STATE_PERIOD_S = "10"
    if variant == "no-reuse":
        tune.TuneConfig = lambda **kw: tune_config(**{**kw, "reuse_actors": False})
    try:
        yield
    finally:
        _progress.FrontProgress, _run.STATE_PERIOD_S, tune.TuneConfig = base, period, tune_config


# --------------------------------------------------------------------------- one search


@dataclass
class Measured:
    variant: str
    trials: int
    errors: int
    concurrency: int
    wall_s: float
    compute_s: float
    per_trial_compute_s: list[float]
    startup_s: float
    shutdown_s: float
    idle_slot_s: float
    tail_idle_slot_s: float
    setup_in_trainable_s: float
    error_messages: list[str]
    held_outside_s: float
    driver_step_s: float
    load_before: tuple | None
    load_after: tuple | None

    @property
    def ratio(self) -> float:
        return self.wall_s / (self.compute_s / self.concurrency)

    @property
    def overhead_per_trial_s(self) -> float:
        return (self.wall_s - self.compute_s / self.concurrency) / (self.trials / self.concurrency)


def idle_slot_seconds(intervals: list[tuple[float, float]], slots: int, *, after: float | None = None) -> float:
    """Integral of ``slots - running`` from the first start (or ``after``) to the last end, seconds.

    ``intervals`` are (start, end) pairs; running trials never exceed ``slots``.
    """
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    idle, running, last = 0.0, 0, events[0][0]
    for t, change in events:
        lo = last if after is None else max(last, after)
        idle += (slots - running) * max(t - lo, 0.0)
        running, last = running + change, t
    return idle


def run_search(variant: str, args: argparse.Namespace) -> Measured:
    from robnas.search._run import run

    timeline = Timeline()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="robnas-overhead-") as storage, instrumented(variant, timeline):
        timeline.origin = time.perf_counter()
        grid = run(storage_path=storage, name=f"overhead-{variant}", dataset="digits", scheduler="fifo",
                   searcher="random", screen=0,  # orchestration only: no proxy scoring
                   num_samples=args.num_samples, max_epochs=args.max_epochs,
                   max_concurrent=args.concurrency, seed=args.seed)
        wall = timeline.now()
        compute, epochs = {}, {}
        errors, messages = 0, []
        for result in grid:
            trial_id = result.metrics.get("trial_id")
            compute[trial_id] = float(result.metrics.get("time_total_s", 0.0))
            frame = result.metrics_dataframe
            if frame is not None and "epoch_time_s" in frame:
                epochs[trial_id] = float(frame["epoch_time_s"].fillna(0.0).sum())
            if result.error is not None:
                errors += 1
                lines = [line for line in str(result.error).splitlines() if line.strip()]
                messages.append(lines[-1].strip() if lines else type(result.error).__name__)
    intervals = [(timeline.starts[t], timeline.ends[t]) for t in timeline.ends if t in timeline.starts]
    first_start = min(s for s, _ in intervals)
    last_end = max(e for _, e in intervals)
    held = sum(timeline.ends[t] - timeline.starts[t] - compute.get(t, 0.0) for t in timeline.ends)
    return Measured(
        variant=variant, trials=len(compute), errors=errors, concurrency=args.concurrency,
        wall_s=wall, compute_s=sum(compute.values()), per_trial_compute_s=sorted(compute.values()),
        startup_s=first_start, shutdown_s=wall - last_end,
        idle_slot_s=idle_slot_seconds(intervals, args.concurrency), held_outside_s=held,
        tail_idle_slot_s=idle_slot_seconds(intervals, args.concurrency, after=max(s for s, _ in intervals)),
        setup_in_trainable_s=sum(compute[t] - epochs[t] for t in epochs),
        error_messages=sorted(set(messages)),
        driver_step_s=timeline.step_s, load_before=load_before, load_after=load_average(),
    )


# --------------------------------------------------------------------------- report


def _load(value) -> str:
    return "n/a" if value is None else " / ".join(f"{v:.2f}" for v in value)


def table(results: list[Measured]) -> str:
    rows = [
        "| variant | trials | wall s | trial compute s (sum) | median trial s | ratio | overhead s/trial "
        "| start-up s | idle slot-s (tail) | slot held outside trainable s | shut-down s "
        "| in-trainable outside epochs s | load before -> after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for m in results:
        flag = "" if m.ratio <= TARGET_RATIO else " (above target)"
        errors = f" ({m.errors} errored)" if m.errors else ""
        rows.append(
            f"| {m.variant} | {m.trials}{errors} | {m.wall_s:.1f} | {m.compute_s:.1f} | "
            f"{statistics.median(m.per_trial_compute_s):.2f} | {m.ratio:.3f}{flag} | "
            f"{m.overhead_per_trial_s:.2f} | {m.startup_s:.1f} | {m.idle_slot_s:.1f} "
            f"({m.tail_idle_slot_s:.1f}) | {m.held_outside_s:.1f} | {m.shutdown_s:.1f} | "
            f"{m.setup_in_trainable_s:.1f} | {_load(m.load_before)} -> {_load(m.load_after)} |"
        )
    return "\n".join(rows)


def body(results: list[Measured], args: argparse.Namespace) -> str:
    variants = "\n".join(f"- `{m.variant}`: {VARIANTS[m.variant]}" for m in results)
    return "\n".join([
        f"Setup: `robnas.search.run` on digits, default space (cell, macro, sparsity, attack), "
        f"fifo scheduler, random searcher without screening (seed {args.seed}), {args.num_samples} trials x "
        f"{args.max_epochs} epoch(s), {args.concurrency} concurrent, 1 CPU per trial, "
        f"`ray.init(num_cpus={args.concurrency}, include_dashboard=False)` before timing; wall = the "
        "`run(...)` call only. Trial compute = sum of Tune's `time_total_s` per trial (time inside "
        "the function trainable: set-up, training, evaluation, checkpoint writing). "
        f"ratio = wall / (compute / {args.concurrency}) (target <= {TARGET_RATIO}); "
        f"overhead per trial = (wall - compute / {args.concurrency}) / (trials / {args.concurrency}).",
        "",
        "Exact split of the overhead: wall = start-up + shut-down + (compute + slot held outside "
        f"trainable + idle slot-s) / {args.concurrency}. Start-up: `run()` to the first trial start "
        "(space, searcher, Tuner, first actor). Idle slot-s: trial slots without a running trial "
        "between the first start and the last end (actor start or reset, scheduling, the tail where "
        "one trial runs alone; in brackets the part after the last trial started, the tail). Slot held "
        "outside trainable: per trial, Tune's start-to-end time minus `time_total_s` (result and "
        "checkpoint handling in the driver). In-trainable outside epochs: `time_total_s` minus the "
        "trial's summed `epoch_time_s` (decoding, data set and model set-up, checkpoint writing and "
        "reporting); it is part of trial compute, listed for information.",
        "",
        variants,
        "",
        table(results),
        *errors_note(results),
    ])


def errors_note(results: list[Measured]) -> list[str]:
    messages = sorted({message for m in results for message in m.error_messages})
    if not messages:
        return []
    return ["", "Errored trials count with the time they ran; their errors: "
            + "; ".join(f"`{message}`" for message in messages)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-samples", type=int, default=40, help="trials (>= 40 for the recorded figure)")
    parser.add_argument("--max-epochs", type=int, default=1, help="epochs per trial")
    parser.add_argument("--concurrency", type=int, default=2, help="concurrent trials = Ray CPUs")
    parser.add_argument("--seed", type=int, default=0, help="searcher seed")
    parser.add_argument("--variants", default="default", help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    for name in ("num_samples", "max_epochs", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or not args.variants:
        parser.error(f"unknown --variants {unknown or args.variants}; allowed: {', '.join(VARIANTS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray

    ray.init(address="local", num_cpus=args.concurrency, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", _node_ip_address="127.0.0.1")
    results = []
    try:
        for variant in args.variants:
            print(f"--- variant {variant}", file=sys.stderr, flush=True)
            results.append(run_search(variant, args))
            print(table(results[-1:]), flush=True)
    finally:
        ray.shutdown()
    text = body(results, args)
    print("\n" + text)
    publish(TITLE, text, json_path=args.json, record=not args.no_record, raw={
        "results": [{**asdict(m), "ratio": m.ratio, "overhead_per_trial_s": m.overhead_per_trial_s}
                    for m in results],
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
