"""Full or read-only storage: refused before a search starts; a search that fills its storage
stops resumable, says so in one line and exit code 2, and continues once there is room."""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from robnas.search._storage import StorageError, check_storage, storage_errno, storage_problem, stopped_for_storage
from robnas.search.cli import main
from tests.test_reliability import checksums, table_search


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *options: str) -> Iterator[Path]:
    """A small tmpfs mounted at ``path`` (needs root and mount(2); skips the test otherwise)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join((f"size={size}", *options)), "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, *options: str) -> None:
    subprocess.run(["mount", "-o", ",".join(("remount", *options)), str(path)], check=True)


def test_storage_problems_are_named(tmp_path):
    assert storage_problem(tmp_path, 0) is None
    assert storage_problem(tmp_path / "not" / "yet", 0) is None  # the nearest existing directory counts
    assert "MiB free, less than" in storage_problem(tmp_path, 2.0**80)
    with pytest.raises(StorageError, match="free space or choose another --storage-path"):
        check_storage(tmp_path, 2.0**80)
    assert storage_problem("s3://bucket/runs", 2.0**80) is None  # remote storage: left to its file system
    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError as error:
            raise RuntimeError("pyarrow copy failed") from error
    except RuntimeError as wrapped:
        assert storage_errno(wrapped) is full
    assert storage_errno(ValueError("a bug")) is None
    assert stopped_for_storage(tmp_path, 0, ValueError("a bug")) is None
    assert "robnas resume" in str(stopped_for_storage(tmp_path, 0, full))


def test_a_read_only_or_full_storage_path_is_refused_before_anything_is_written(ray_session, shared_data, tmp_path, capsys):
    with tmpfs(tmp_path / "ro", "4m") as storage:
        assert main([*table_search(storage, "kept"), "--min-free-mb", "0"]) == 0
        before = checksums(storage)
        remount(storage, "ro")
        capsys.readouterr()
        for argv in (table_search(storage, "new"), [*table_search(storage, "kept"), "--overwrite"],
                     ["resume", str(storage / "kept"), "--num-samples", "5"]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "read-only file system" in err, (argv, err)
        assert checksums(storage) == before
        remount(storage, "rw")
        # 4 MiB is less than twice the default 64 MiB reserve.
        assert main([*table_search(storage, "kept"), "--overwrite", "--min-free-mb", "64"]) == 2
        assert "MiB free, less than the 128 MiB needed" in capsys.readouterr().err
        assert checksums(storage) == before


@pytest.mark.slow
def test_a_search_that_fills_its_storage_stops_resumable_and_continues_after(ray_session, tmp_path, capsys):
    import os
    import time

    def epochs(trial_dir: Path) -> list[int]:
        path = trial_dir / "result.json"
        return [json.loads(line)["epoch"] for line in path.read_text().splitlines()] if path.exists() else []

    with tmpfs(tmp_path / "small", "16m") as storage:
        argv = [sys.executable, "-m", "robnas", "search", "--storage-path", str(storage), "--name", "full",
                "--num-samples", "8", "--max-epochs", "2", "--scheduler", "fifo", "--screen", "0",
                "--space", "cell", "--max-concurrent", "1", "--min-free-mb", "4"]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        experiment = storage / "full"
        deadline = time.monotonic() + 600
        while not any(epochs(d) for d in experiment.glob("trial_*")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.2)
        # Another program fills the disk: 2.5 MiB stay free, below the 4 MiB reserve. That is
        # room for Tune's state and for several of these small trials' checkpoints, so the guard
        # stops the search before anything is cut short, however slowly the machine runs.
        stats = os.statvfs(storage)
        ballast = storage / "ballast"
        ballast.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - int(2.5 * 2**20)))
        out, err = process.communicate(timeout=900)
        assert process.returncode == 2, err[-3000:]
        last = err.splitlines()[-1]
        assert last.startswith("robnas: error: search stopped:") and f"robnas resume {experiment}" in last
        (state,) = experiment.glob("experiment_state-*.json")
        json.loads(state.read_text())  # the state was saved whole: the search can resume
        before = checksums(experiment)
        capsys.readouterr()
        assert main(["resume", str(experiment)]) == 2  # still full: refused, nothing touched
        assert "MiB free" in capsys.readouterr().err and checksums(experiment) == before

        ballast.unlink()
        assert main(["resume", str(experiment)]) == 0
        trials = sorted(experiment.glob("trial_*"))
        assert len(trials) == 8 and all(epochs(d) == [1, 2] for d in trials)
