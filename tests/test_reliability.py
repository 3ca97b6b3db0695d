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
