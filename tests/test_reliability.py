"""No run is lost: one process per experiment, validation before deletion, flags on resume."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from robnas.search._lock import ExperimentLockedError, experiment_lock
from robnas.search.cli import main


def checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_the_lock_is_exclusive_and_released_with_its_holder(tmp_path):
    path = tmp_path / "exp"
    with experiment_lock(path):
        with pytest.raises(ExperimentLockedError, match="in use by another robnas process"):
            with experiment_lock(path):
                pass
    with experiment_lock(path):  # released: taken again
        pass
    assert list(path.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["exp"]


def table_search(storage: Path, name: str, *extra: str) -> list[str]:
    table = Path(__file__).resolve().parents[2] / "shared" / "data" / "nasrobbench201_cifar10.csv"
    return ["search", "--backend", "table", "--table", str(table), "--objectives", "pgd_eps8_acc,params",
            "--num-samples", "3", "--screen", "0", "--storage-path", str(storage), "--name", name, *extra]


def test_a_second_process_on_a_running_experiment_gets_exit_2(ray_session, shared_data, tmp_path, capsys):
    assert main(table_search(tmp_path, "busy")) == 0
    before = checksums(tmp_path / "busy")
    capsys.readouterr()
    with experiment_lock(tmp_path / "busy"):  # as a running search holds it
        assert main(["resume", str(tmp_path / "busy"), "--num-samples", "4"]) == 2
        assert "in use by another robnas process" in capsys.readouterr().err
        assert main([*table_search(tmp_path, "busy"), "--overwrite"]) == 2
        assert "in use" in capsys.readouterr().err
        assert main(table_search(tmp_path, "busy2")) == 0  # other experiments are free
    assert checksums(tmp_path / "busy") == before


def test_overwrite_replaces_a_run_only_once_the_new_one_starts(ray_session, shared_data, tmp_path, capsys):
    assert main(table_search(tmp_path, "x")) == 0
    before = checksums(tmp_path / "x")
    for bad in (["--seed", "99999999999"], ["--cpus-per-trial", "1e-300"], ["--objectives", "nope"]):
        assert main([*table_search(tmp_path, "x"), "--overwrite", *bad]) == 2
    assert checksums(tmp_path / "x") == before
    assert main([*table_search(tmp_path, "x"), "--overwrite", "--seed", "5"]) == 0
    assert checksums(tmp_path / "x") != before


def test_search_resume_applies_a_new_budget_and_refuses_other_changes(ray_session, shared_data, tmp_path, capsys):
    assert main(table_search(tmp_path, "r")) == 0
    before = checksums(tmp_path / "r")
    capsys.readouterr()
    assert main([*table_search(tmp_path, "r"), "--resume", "--seed", "7"]) == 2
    err = capsys.readouterr().err
    assert "seed differ from its robnas.json" in err and err.count("\n") == 1
    assert checksums(tmp_path / "r") == before
    assert main([*table_search(tmp_path, "r"), "--resume", "--num-samples", "5"]) == 0
    assert "5 trials" in capsys.readouterr().out


@pytest.mark.slow
def test_ctrl_c_says_how_to_resume_and_loses_no_finished_epoch(ray_session, tmp_path):
    import json
    import signal
    import subprocess
    import sys
    import time

    argv = [sys.executable, "-m", "robnas", "search", "--storage-path", str(tmp_path), "--name", "c",
            "--num-samples", "4", "--max-epochs", "4", "--scheduler", "fifo", "--screen", "0"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    experiment = tmp_path / "c"

    def epochs(trial_dir: Path) -> list[int]:
        lines = (trial_dir / "result.json").read_text().splitlines() if (trial_dir / "result.json").exists() else []
        return [json.loads(line)["epoch"] for line in lines if line.strip()]

    deadline = time.monotonic() + 600
    # Interrupt once some trial has finished epoch 1 and not yet epoch 4 (during its epoch 2 or later).
    while not any(1 <= len(epochs(d)) < 4 for d in experiment.glob("trial_*")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 130, (out, err)
    assert f"of 4 trials done; robnas resume {experiment}" in err.splitlines()[-1]
    partial = {d.name: len(epochs(d)) for d in experiment.glob("trial_*") if 1 <= len(epochs(d)) < 4}
    assert partial
    assert main(["resume", str(experiment)]) == 0
    trials = sorted(experiment.glob("trial_*"))
    assert len(trials) == 4 and all(epochs(d) == [1, 2, 3, 4] for d in trials)
    for name, finished in partial.items():  # continued from a checkpoint, not from scratch
        rows = [json.loads(line) for line in (experiment / name / "result.json").read_text().splitlines()]
        assert all(row["resumed_from_epoch"] >= 1 for row in rows[finished:]), name


@pytest.mark.parametrize("damaged", ["experiment_state-*.json", "robnas-searcher-state-*.json"])
def test_a_damaged_experiment_is_refused_and_left_as_it_was(ray_session, shared_data, tmp_path, capsys, damaged):
    assert main(table_search(tmp_path, "d")) == 0
    state = max((tmp_path / "d").glob(damaged))
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    before = checksums(tmp_path)
    capsys.readouterr()
    assert main(["resume", str(tmp_path / "d"), "--num-samples", "5"]) == 2
    err = capsys.readouterr().err
    assert state.name in err and err.count("\n") == 1
    assert checksums(tmp_path) == before


def test_more_gpus_than_the_cluster_has_is_refused_before_anything_is_written(ray_session, shared_data, tmp_path, capsys):
    assert main([*table_search(tmp_path, "g"), "--gpus-per-trial", "1"]) == 2
    assert "GPUs but the Ray cluster has 0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_trial_finished_after_tunes_last_state_save_is_never_trained_again(ray_session, shared_data, tmp_path, capsys):
    """As after a kill between Tune's result copy and its state save: the state lists a trial as
    running whose result.json ends with its last epoch. The resume keeps it finished."""
    import json

    experiment = tmp_path / "lag"
    assert main(table_search(tmp_path, "lag")) == 0
    (state_file,) = experiment.glob("experiment_state-*.json")
    state = json.loads(state_file.read_text())
    trial = json.loads(state["trial_data"][0][0])
    trial["status"] = "RUNNING"
    state["trial_data"][0][0] = json.dumps(trial)
    state_file.write_text(json.dumps(state))
    searcher_file = max(experiment.glob("robnas-searcher-state-*.json"))
    searcher = json.loads(searcher_file.read_text())
    launch = searcher["launched"][trial["trial_id"]]
    launch["done"] = False
    searcher["trials"][launch["number"]].update(state="RUNNING", values=None)
    searcher_file.write_text(json.dumps(searcher))
    trial_dir = experiment / trial["relative_logdir"]
    before = checksums(trial_dir)
    capsys.readouterr()

    assert main(["resume", str(experiment), "--num-samples", "4"]) == 0
    assert "4 trials, 0 failed" in capsys.readouterr().out
    assert checksums(trial_dir) == before  # not trained again: every file as it was
    searcher = json.loads(max(experiment.glob("robnas-searcher-state-*.json")).read_text())
    assert searcher["launched"][trial["trial_id"]]["done"] is True
    assert searcher["trials"][launch["number"]]["state"] == "COMPLETE"


def test_a_resume_frees_the_concurrency_slot_a_finished_trial_still_holds(ray_session, shared_data, tmp_path, capsys):
    """As after a stop that robnas reconciled: the limiter's saved state holds a trial that the
    searcher knows finished. With every slot held the restored search would wait for ever; the
    restore frees the slot, and the resume runs two more trials, one at a time."""
    import ray.cloudpickle as cloudpickle

    experiment = tmp_path / "slot"
    assert main([*table_search(tmp_path, "slot"), "--max-concurrent", "1"]) == 0
    saved = max(experiment.glob("search_gen_state-*.json"))
    state = cloudpickle.loads(saved.read_bytes())  # the test's own fault injection
    (limiter,) = [v for k, v in state.items() if k.startswith("name:ConcurrencyLimiter")]
    assert limiter["max_concurrent"] == 1 and not limiter["live_trials"]
    finished = sorted(d.name.removeprefix("trial_") for d in experiment.glob("trial_*"))
    limiter["live_trials"], limiter["num_unfinished_live_trials"] = {finished[0]}, 1
    saved.write_bytes(cloudpickle.dumps(state))
    capsys.readouterr()
    assert main(["resume", str(experiment), "--num-samples", str(len(finished) + 2)]) == 0
    assert f"{len(finished) + 2} trials, 0 failed" in capsys.readouterr().out


def test_release_slots_frees_only_the_finished_trials():
    from ray.tune.search import ConcurrencyLimiter, Searcher

    from robnas.search._ray_compat import release_slots

    limiter = ConcurrencyLimiter(Searcher(metric="score", mode="max"), max_concurrent=2)
    limiter.live_trials, limiter.num_unfinished_live_trials = {"a", "b"}, 2
    assert release_slots(limiter, lambda t: t == "a") == ["a"]
    assert limiter.live_trials == {"b"} and limiter.num_unfinished_live_trials == 1
    assert release_slots(limiter, lambda t: t == "a") == [] and limiter.live_trials == {"b"}
