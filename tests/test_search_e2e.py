"""End-to-end searches on digits through Ray Tune: default, multi-objective, resume, cluster."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robnas.search import SearchSettings, read_settings, resume, run
from robnas.spaces._keys import config_key

pytestmark = pytest.mark.slow

SMALL = {"trial": {"eval_steps": 5}}


def results_of(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def trial_dirs(experiment: Path) -> list[Path]:
    return sorted(p for p in experiment.iterdir() if p.is_dir() and p.name.startswith("trial_"))


def searched_keys(grid) -> list[str]:
    settings_keys = {"dataset", "data_dir", "max_epochs", "score_weights", "eval_steps"}
    return [config_key({k: v for k, v in r.config.items() if k not in settings_keys}) for r in grid]


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_default_search_completes(ray_session, tmp_path):
    grid = run(storage_path=str(tmp_path), name="default")
    defaults = SearchSettings()
    assert len(grid) == defaults.num_samples
    assert all(r.error is None for r in grid)
    epochs = [r.metrics["epoch"] for r in grid]
    assert max(epochs) == defaults.max_epochs
    assert len(set(searched_keys(grid))) == len(grid)  # no configuration trained twice
    for result in grid:
        assert 0 <= result.metrics["robust_acc"] <= result.metrics["clean_acc"] <= 1
    experiment = tmp_path / "default"
    saved = json.loads((experiment / "robnas.json").read_text())
    assert saved["settings"]["num_samples"] == defaults.num_samples
    assert set(saved["versions"]) >= {"robnas", "ray", "optuna", "torch"}
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(str(experiment))
    assert len(analysis.trials) == defaults.num_samples


def test_moasha_with_nsga2_stops_dominated_trials_early(ray_session, tmp_path):
    grid = run(
        storage_path=str(tmp_path), name="mo", scheduler="moasha", searcher="nsga2",
        num_samples=8, max_epochs=3, grace_period=1, reduction_factor=2, space="cell,sparsity", seed=1, **SMALL,
    )
    assert len(grid) == 8 and all(r.error is None for r in grid)
    epochs = sorted(r.metrics["epoch"] for r in grid)
    assert epochs[0] < 3 and epochs[-1] == 3  # some stopped at a rung, some promoted to the end
    assert len(set(searched_keys(grid))) == 8


def test_same_seed_same_sequence_of_configurations(ray_session, tmp_path):
    options = dict(num_samples=4, max_epochs=1, scheduler="fifo", searcher="tpe", max_concurrent=1,
                   space="cell", seed=7, **SMALL)
    first = run(storage_path=str(tmp_path), name="a", **options)
    second = run(storage_path=str(tmp_path), name="b", **options)
    order = lambda grid: [config_key({k: r.config[k] for k in r.config if k.startswith("edge_")})
                          for r in sorted(grid, key=lambda r: r.metrics["trial_id"])]  # noqa: E731
    by_start = lambda grid: sorted(order(grid))  # noqa: E731
    assert by_start(first) == by_start(second)


def test_existing_experiment_is_refused_and_left_untouched(ray_session, tmp_path):
    run(storage_path=str(tmp_path), name="x", num_samples=1, max_epochs=1, scheduler="fifo",
        searcher="random", space="cell", **SMALL)
    before = checksums(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "robnas", "search", "--storage-path", str(tmp_path), "--name", "x"],
        capture_output=True, text=True,
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "--resume" in out.stderr and "--overwrite" in out.stderr
    assert checksums(tmp_path) == before


def _wait_for_finished(experiment: Path, epochs: int, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if experiment.exists():
            done = [d for d in trial_dirs(experiment) if any(r.get("epoch") == epochs for r in results_of(d))]
            if len(done) >= count:
                return
        time.sleep(0.5)
    raise TimeoutError(f"fewer than {count} trials finished in {timeout} s")


def _finished(experiment: Path, epochs: int) -> dict[str, list[dict]]:
    """Per finished trial (its result.json reached ``epochs``), every row as written. A row of a
    finished trial is never rewritten, whenever the driver is killed (see search/_reconcile.py)."""
    return {
        d.name: results_of(d)
        for d in trial_dirs(experiment)
        if any(r.get("epoch") == epochs for r in results_of(d))
    }


def test_driver_killed_three_times_then_resumed_and_extended(ray_session, tmp_path):
    """SIGKILL the driver at three random moments; each time `robnas resume` continues."""
    import random

    experiment = tmp_path / "killed"
    start = [
        sys.executable, "-m", "robnas", "search", "--storage-path", str(tmp_path), "--name", "killed",
        "--num-samples", "6", "--max-epochs", "3", "--scheduler", "fifo", "--searcher", "random",
        "--space", "cell,sparsity", "--seed", "3",
    ]
    again = [sys.executable, "-m", "robnas", "resume", str(experiment)]
    rng = random.Random(0)
    finished: dict[str, list[tuple]] = {}
    for kill in range(3):
        driver = subprocess.Popen(start if kill == 0 else again, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            # One more finished trial, unless all six have (then the kill falls during the resume).
            _wait_for_finished(experiment, epochs=3, count=min(len(finished) + 1, 6), timeout=300)
            time.sleep(rng.uniform(0.0, 3.0))  # a random moment: mid-epoch, mid-checkpoint, ...
        finally:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        now = _finished(experiment, epochs=3)
        for name, content in finished.items():
            assert now[name] == content, f"{name} changed after kill {kill + 1}"
        finished = now
    assert 3 <= len(finished) <= 6

    grid = resume(experiment)
    assert len(grid) == 6 and all(r.error is None for r in grid)
    assert all(r.metrics["epoch"] == 3 for r in grid)
    assert all(_finished(experiment, epochs=3)[name] == rows for name, rows in finished.items())
    # A trial Tune created after its last state save, before a kill, leaves an empty directory
    # that the resume does not continue (it launches a new trial instead); it holds no result.
    # The rows of a trial that was still running at a kill can be missing: Ray uploads its state
    # and the trials' result files separately, and a kill between the two leaves a state that
    # continues the trial from a checkpoint whose rows never reached the storage.
    trained = [d for d in trial_dirs(experiment) if results_of(d)]
    for directory in trained:
        epochs = [r["epoch"] for r in results_of(directory)]
        assert epochs.count(1) <= 1 and epochs[-1] == 3, f"{directory.name} trained from scratch twice: {epochs}"
    assert len(trained) == 6
    assert len(set(searched_keys(grid))) == 6

    extended = resume(experiment, num_samples=8)
    assert len(extended) == 8 and all(r.error is None for r in extended)
    assert all(_finished(experiment, epochs=3)[name] == rows for name, rows in finished.items())
    assert read_settings(experiment).num_samples == 8
    assert len(set(searched_keys(extended))) == 8


def test_two_node_cluster(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        out = subprocess.run(
            [sys.executable, "-m", "robnas", "search", "--address", cluster.address,
             "--storage-path", str(tmp_path), "--name", "cluster", "--num-samples", "4",
             "--max-epochs", "1", "--max-concurrent", "2", "--scheduler", "fifo",
             "--searcher", "random", "--space", "cell"],
            capture_output=True, text=True, timeout=600,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        nodes = {r["node_id"] for d in trial_dirs(tmp_path / "cluster") for r in results_of(d)}
        assert len(nodes) == 2
    finally:
        cluster.shutdown()
