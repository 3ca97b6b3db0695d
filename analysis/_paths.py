"""Where analysis files may go: a directory (or a place for one), never inside a search."""

from __future__ import annotations

from pathlib import Path

from robnas.analysis._load import SETTINGS_FILE


def check_out_dir(path: Path) -> None:
    """ValueError if ``path`` cannot be a directory: it, or the first of its parents that
    exists, is not a directory (a file, a broken symlink, a symlink loop)."""
    for part in (path, *path.parents):
        if part.is_dir():
            return
        if part.exists() or part.is_symlink():
            what = "is not a directory" if part.exists() else "is a broken symlink or a symlink loop"
            raise ValueError(f"cannot write {path}: {part} {what}")


def check_outside_searches(path: Path, *, own: Path | None = None) -> None:
    """ValueError if ``path`` is a search directory (one holding ``robnas.json``) or inside one;
    ``own`` (a search's ``analysis`` directory) is the one such path allowed."""
    try:
        resolved = path.resolve()
        if own is not None and resolved == own.resolve():
            return
    except (OSError, RuntimeError):  # a symlink loop (Python < 3.13 raises, later ones resolve what they can)
        raise ValueError(f"cannot write {path}: it is a symlink loop") from None
    for part in (resolved, *resolved.parents):
        if (part / SETTINGS_FILE).is_file():
            raise ValueError(f"refusing to write into {path}: it is inside the search directory {part}; "
                             "choose a place outside every search")
