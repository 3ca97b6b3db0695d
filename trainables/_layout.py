"""A trial's files on disk: names, atomic writes, checkpoints with their SHA-256, Tune's records.

A trial directory (Tune writes it) holds ``params.json`` (the flat config), ``result.json`` (one
JSON object per report) and ``checkpoint_<k>/`` directories, each holding ``trial.pt`` (a
``torch.save`` of a ``TrialRunner`` state) with ``trial.pt.sha256`` beside it, or ``replay.json``
for the table backend. Every file robnas writes is written atomically (a temporary file, then a
rename), so a reader or a kill never sees half of it. Readers skip what is missing or half
written, and damaged rows of ``result.json`` (see :func:`read_result_rows`). torch is imported
only to write or read a ``trial.pt``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "CHECKPOINT_FILE", "PARAMS_FILE", "REPLAY_CHECKPOINT", "RESULT_FILE", "CorruptCheckpointError",
    "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "checkpoint_dirs", "checkpoint_files",
    "first_good", "is_trial_dir", "read_checkpoint", "read_params", "read_replay_checkpoint",
    "read_result_rows", "read_results", "write_checkpoint", "write_replay_checkpoint",
]

#: ``torch.save`` of a trial's state, in each ``checkpoint_<k>/`` directory.
CHECKPOINT_FILE = "trial.pt"
#: Suffix of the file beside a checkpoint holding its SHA-256 (hex digest and a newline).
DIGEST_SUFFIX = ".sha256"
#: The table backend's checkpoint: ``{"epoch": k}``, the last epoch reported.
REPLAY_CHECKPOINT = "replay.json"
#: Tune's files in a trial directory: one JSON object per report; the flat config.
RESULT_FILE = "result.json"
PARAMS_FILE = "params.json"
#: A robnas search's own settings and versions, beside Tune's files in the experiment directory.
SEARCH_SETTINGS_FILE = "robnas.json"
_CHECKPOINT_DIRS = "checkpoint_*"

T = TypeVar("T")


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, altered or unreadable.

    Attributes:
        path: the checkpoint file.
        reason: what is wrong, a phrase after "it" (``"does not match trial.pt.sha256"``).
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"checkpoint {path} {reason}")
        self.path = Path(path)
        self.reason = reason


# ----------------------------------------------------------------------------- atomic writes


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that a reader (or a kill) never sees half a file.

    The temporary file is created with mode 0o666, so the process's umask applies as it would
    to any new file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


# ----------------------------------------------------------------------------- checkpoints


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + DIGEST_SUFFIX)


def write_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """``torch.save`` ``state`` to ``path`` and its SHA-256 to ``<path>.sha256``, each atomically."""
    import torch

    path = Path(path)
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    atomic_write_text(_digest_path(path), hashlib.sha256(data).hexdigest() + "\n")
    return path


def read_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """The state ``write_checkpoint`` wrote, loaded with ``weights_only=True`` (no code runs).

    A checkpoint without a ``.sha256`` file beside it is read unchecked.

    Raises:
        CorruptCheckpointError: the file is missing, differs from its recorded SHA-256, or is
            not a ``torch.save`` of a dict.
    """
    import torch

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CorruptCheckpointError(path, f"cannot be read: {error}") from None
    digest = _digest_path(path)
    if digest.is_file() and digest.read_text().strip() != hashlib.sha256(data).hexdigest():
        raise CorruptCheckpointError(path, f"does not match {digest.name}")
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as error:  # truncated zip, refused global, ...
        raise unreadable(path, error) from None
    if not isinstance(state, dict):
        raise CorruptCheckpointError(path, f"holds a {type(state).__name__}, not a trial state")
    return state


def unreadable(path: Path, error: BaseException) -> CorruptCheckpointError:
    """The error for a checkpoint whose content cannot be loaded as a trial state."""
    return CorruptCheckpointError(path, f"is not a readable trial checkpoint: {type(error).__name__}")


def checkpoint_dirs(trial_dir: str | os.PathLike) -> list[Path]:
    """The ``checkpoint_*`` directories of a trial directory, oldest first ([] if none)."""
    trial_dir = Path(trial_dir)
    if not trial_dir.is_dir():
        return []
    return sorted(p for p in trial_dir.glob(_CHECKPOINT_DIRS) if p.is_dir())


def checkpoint_files(trial_dir: str | os.PathLike, *, before: str | None = None) -> list[Path]:
    """``checkpoint_*/trial.pt`` of a trial directory, newest first; with ``before``, only those
    of directories named before it (the earlier checkpoints of the one named ``before``)."""
    dirs = [p for p in checkpoint_dirs(trial_dir) if before is None or p.name < before]
    return [p / CHECKPOINT_FILE for p in reversed(dirs)]


def first_good(
    paths: Iterable[Path], load: Callable[[Path], T]
) -> tuple[Path | None, T | None, list[CorruptCheckpointError]]:
    """``(path, load(path), skipped)`` for the first path that ``load`` reads without a
    ``CorruptCheckpointError``; ``(None, None, skipped)`` if none does. ``skipped`` holds the
    errors of the paths tried before, in order."""
    skipped = []
    for path in paths:
        try:
            return path, load(path), skipped
        except CorruptCheckpointError as error:
            skipped.append(error)
    return None, None, skipped


def write_replay_checkpoint(directory: str | os.PathLike, epoch: int) -> Path:
    """Write the table backend's checkpoint (the last epoch reported) into ``directory``."""
    return atomic_write_text(Path(directory) / REPLAY_CHECKPOINT, json.dumps({"epoch": int(epoch)}))


def read_replay_checkpoint(directory: str | os.PathLike) -> int:
    """The epoch recorded by ``write_replay_checkpoint`` in ``directory``."""
    return int(json.loads((Path(directory) / REPLAY_CHECKPOINT).read_text())["epoch"])


# ----------------------------------------------------------------------------- Tune's records


def is_trial_dir(directory: Path) -> bool:
    """Whether ``directory`` holds a trial's ``params.json`` or ``result.json``."""
    return (directory / PARAMS_FILE).is_file() or (directory / RESULT_FILE).is_file()


def read_results(trial_dir: str | os.PathLike, *, numbers: Collection[str] = ()) -> list[dict[str, Any]]:
    """The reports in a trial directory's ``result.json``, in order ([] if there is none);
    bad rows (see :func:`read_result_rows`) are skipped without a word."""
    return read_result_rows(trial_dir, numbers=numbers)[0]


def read_result_rows(
    trial_dir: str | os.PathLike, *, numbers: Collection[str] = ()
) -> tuple[list[dict[str, Any]], list[str]]:
    """``(reports, skipped)``: the good rows of a trial's ``result.json`` in order, and one
    message per bad row, ``"PATH line N: REASON; row skipped"``.

    A line is a bad row when it

    - is not JSON, or is JSON but not an object;
    - has no ``epoch`` (rows without one fall back to Tune's ``training_iteration``), or one
      that is not an integer (``"3"``, ``2.5``, ``true``, ``null``; ``3.0`` is read as 3) or is
      below 1;
    - holds a metric named in ``numbers`` that is not a number (a string, ``null``, a bool, a
      list, ...) or is infinite. NaN is a number here: it is how a diverged trial reports. A
      metric missing from a row is not checked.

    Blank lines carry no row and are passed over. So is a last line without its newline that
    does not parse: Tune is writing it right now (a running search always has one for an
    instant), and a reader cannot tell it from a line cut by a kill, which nothing can recover
    either. Repeated epochs (a resumed trial reporting an epoch again) keep their last report.
    """
    file = Path(trial_dir) / RESULT_FILE
    try:
        text = file.read_text(encoding="utf-8", errors="replace") if file.is_file() else ""
    except OSError:
        return [], []
    lines = text.split("\n")  # the last item is what follows the last newline
    by_epoch: dict[int, dict[str, Any]] = {}
    skipped = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        found = _result_row(line, numbers)
        if isinstance(found, str):
            being_written = number == len(lines) and found.startswith(_NOT_JSON)
            if not being_written:
                skipped.append(f"{file} line {number}: {found}; row skipped")
            continue
        epoch, row = found
        by_epoch.pop(epoch, None)
        by_epoch[epoch] = row
    return list(by_epoch.values()), skipped


_NOT_JSON = "not valid JSON"
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


def _result_row(line: str, numbers: Collection[str]) -> tuple[int, dict[str, Any]] | str:
    """``(epoch, row)`` for a good line of ``result.json``, else why it is bad."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError) as error:
        return _not_json(error)
    if not isinstance(row, dict):
        return f"JSON {_JSON_KINDS[type(row)]}, not an object"
    key = "epoch" if "epoch" in row or "training_iteration" not in row else "training_iteration"
    if key not in row:
        return "no epoch"
    epoch = row[key]
    integral = isinstance(epoch, int) or isinstance(epoch, float) and epoch.is_integer()
    if isinstance(epoch, bool) or not integral:
        return f"{key} {_shown(epoch)} is not an integer"
    if epoch < 1:
        return f"{key} {_shown(epoch)} is below 1"
    for name in numbers:
        reason = _number_problem(row[name]) if name in row else None
        if reason is not None:
            return f"{name} {_shown(row[name])} {reason}"
    return int(epoch), {**row, key: int(epoch)} if isinstance(epoch, float) else row


def _not_json(error: ValueError | RecursionError) -> str:
    """Why ``json.loads`` refused a line, in a few words."""
    if isinstance(error, json.JSONDecodeError):
        what = error.msg.removesuffix(" at").removesuffix(" starting")  # "... string starting at"
        return f"{_NOT_JSON} at column {error.colno} ({what})"
    if isinstance(error, RecursionError):  # [[[[...]]]]
        return f"{_NOT_JSON} (nested too deeply)"
    return f"{_NOT_JSON} ({str(error).split(':')[0]})"  # an integer of 5000 digits


def _number_problem(value: Any) -> str | None:
    """Why ``value`` is no metric value (None: it is a finite number or NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "is not a number"
    return "is not finite" if math.isinf(value) else None


def _shown(value: Any, limit: int = 40) -> str:
    """``value`` as JSON, cut to ``limit`` characters."""
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_params(trial_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The flat config in a trial directory's ``params.json``; None if missing, not a regular
    file (a FIFO would block) or unreadable."""
    file = Path(trial_dir) / PARAMS_FILE
    try:
        config = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
    except (OSError, ValueError, RecursionError):
        return None
    return config if isinstance(config, dict) else None
