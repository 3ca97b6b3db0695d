"""Room to write: a search checks its storage before it starts and stops before it fills up.

Ray Tune writes its experiment state without an atomic rename, so a disk that fills up during a
save leaves a truncated state that no resume can read. robnas therefore keeps a reserve: a
search starts only with at least twice ``min_free_mb`` free (and a writable directory), and
:class:`~robnas.search._storage_guard.StorageGuard` stops it the way Ctrl-C does (every finished epoch kept, state saved) as
soon as free space falls below ``min_free_mb``. The search then ends with a one-line
:class:`StorageError`; free space and ``robnas resume`` continues it.

Only local paths are checked; a pyarrow URI (``s3://...``) is left to its file system.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

#: ``OSError`` numbers that mean "this storage cannot take the write", not a bug.
STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.EFBIG}
)
_MIB = 2**20


class StorageError(OSError):
    """The storage of a search is full, read-only or not writable (one line)."""


def is_local(path: str | os.PathLike) -> bool:
    return "://" not in str(path)


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def storage_problem(path: str | os.PathLike, min_free_bytes: float) -> str | None:
    """Why ``path`` (or the nearest existing directory above it) cannot take a search's writes,
    or ``None``: it is on a read-only file system, not writable, or has fewer than
    ``min_free_bytes`` free for unprivileged users."""
    if not is_local(path):
        return None
    base = _existing_ancestor(Path(path))
    if not base.is_dir():
        return f"{base}: Not a directory"
    try:
        stats = os.statvfs(base)
    except OSError as error:
        return f"{base}: {error.strerror or error}"
    if stats.f_flag & os.ST_RDONLY:
        return f"{base} is on a read-only file system"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"{base} is not writable"
    free = stats.f_bavail * stats.f_frsize
    if free < min_free_bytes:
        return f"{base} has {free / _MIB:.1f} MiB free, less than the {min_free_bytes / _MIB:g} MiB needed"
    return None


def check_storage(path: str | os.PathLike, min_free_bytes: float) -> None:
    """Raise a one-line :class:`StorageError` if ``path`` has a :func:`storage_problem`."""
    problem = storage_problem(path, min_free_bytes)
    if problem:
        raise StorageError(f"{problem}; free space or choose another --storage-path")


def storage_errno(error: BaseException | None) -> OSError | None:
    """The first ``OSError`` with a :data:`STORAGE_ERRNOS` number in ``error``'s cause chain."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
            return error
        error = error.__cause__ or error.__context__
    return None


def stopped_for_storage(path: Path, min_free_bytes: float, error: BaseException | None = None) -> StorageError | None:
    """The error to end an unfinished search with if its storage ran out (else ``None``)."""
    cause = storage_errno(error)
    problem = storage_problem(path, min_free_bytes) or (cause and f"{path}: {cause.strerror or cause}")
    if not problem:
        return None
    return StorageError(f"search stopped: {problem}; free space, then: robnas resume {path}")
