"""An exclusive lock on an experiment directory for the whole of a search or a resume.

The lock is ``fcntl.flock`` on the experiment directory itself (created if needed, so that a
new experiment's directory is created atomically by whoever locks it first). The kernel releases
it when the process ends, however it ends: a lock is never stale, and no lock file is left
behind. ``--overwrite`` empties the locked directory rather than replacing it. A second robnas
process on the same directory fails at once with a one-line ``ExperimentLockedError``. Locks
are advisory and hold between processes of one machine (as ``flock`` does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


class ExperimentLockedError(ValueError):
    """Another robnas process is running a search or resume in the same experiment directory."""


@contextlib.contextmanager
def experiment_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive lock of experiment directory ``path`` while the block runs."""
    import fcntl

    path = Path(path)
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        raise ValueError(f"cannot use experiment directory {path}: {error.strerror or error}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExperimentLockedError(
                f"experiment {path} is in use by another robnas process; wait for it to end"
            ) from None
        try:
            yield path
        except BaseException:
            if created and not any(path.iterdir()):
                path.rmdir()  # a search that never started leaves nothing behind
            raise
    finally:
        os.close(fd)  # releases the lock


def empty_directory(path: Path) -> None:
    """Delete everything inside ``path``, keeping the (locked) directory itself."""
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
