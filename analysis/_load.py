"""Read a robnas search (a Ray Tune experiment directory) into DataFrames, without Ray.

The directory holds ``robnas.json`` (the search's settings), Tune's ``experiment_state-*.json``
(trial statuses; JSON whose entries are JSON strings) and one directory per trial with
``params.json`` (the flat config), ``result.json`` (one JSON object per reported epoch) and, for
failed trials, ``error.txt``. Every piece may be missing or half written while a search runs:
what can be read is read, and statuses the state file does not give are inferred. A damaged row
of a ``result.json`` is skipped and named (``Experiment.skipped``, and a
:class:`SkippedRowWarning` each); the rest of the search is read as if it had never been there.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robnas.analysis._activity import active_seconds, idle_gaps
from robnas.spaces._effective import effective_key
from robnas.spaces._defaults import DATASETS
from robnas.spaces._family import DEFAULT_FAMILY, family_named
from robnas.spaces._objectives import DEFAULT_OBJECTIVES, Objective, names_of, parse_objectives
from robnas.trainables._layout import (
    SEARCH_SETTINGS_FILE,
    checkpoint_dirs,
    is_trial_dir,
    read_params,
    read_result_rows,
)

SETTINGS_FILE = SEARCH_SETTINGS_FILE
CONFIG_PREFIX = "config/"
#: Statuses Tune gives a trial; ``ERROR`` trials failed for good.
STATUSES = ("TERMINATED", "ERROR", "RUNNING", "PAUSED", "PENDING")
#: Keys of Tune's result rows that say nothing about the trial.
_DROPPED_RESULT_KEYS = frozenset(
    ("config", "date", "hostname", "node_ip", "pid", "should_checkpoint",
     "time_since_restore", "iterations_since_restore")
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class SkippedRowWarning(UserWarning):
    """A row of a trial's ``result.json`` was damaged and left out of the analysis."""


@dataclass(frozen=True, eq=False)
class Experiment:
    """One search, read from disk.

    ``trials``: one row per trial (see :func:`load_experiment`); ``results``: one row per
    reported epoch with columns ``trial_id``, ``epoch`` and every reported metric;
    ``start_time``: Unix time (s) the search started; ``max_epochs``: the maximum fidelity;
    ``skipped``: one message per damaged result row left out (``"PATH line N: REASON; row skipped"``);
    ``idle_gaps``: ``(begin, end)`` Unix times (s) of the stretches without a trial at work
    (see :mod:`robnas.analysis._activity`), which ``search_time_s`` leaves out.
    """

    path: Path
    settings: dict[str, Any]
    trials: pd.DataFrame
    results: pd.DataFrame
    start_time: float
    max_epochs: int
    skipped: tuple[str, ...] = ()
    idle_gaps: tuple[tuple[float, float], ...] = ()

    @property
    def objectives(self) -> tuple[str, ...]:
        """The objectives the search optimised (from ``robnas.json``)."""
        return tuple(self.settings.get("objectives") or DEFAULT_OBJECTIVES)


def load_experiment(
    path: str | os.PathLike, *, objectives: str | Sequence[str | Objective] | None = None
) -> Experiment:
    """Read every trial of the search in ``path``; works on running and resumed searches.

    ``trials`` has one row per trial, ordered by start time: ``trial_id``, ``status`` (one of
    ``STATUSES``), ``epoch`` (epochs reported, 0 if none), ``complete`` (reached ``max_epochs``
    and did not fail), ``stopped_early`` (terminated before ``max_epochs``), ``diverged``,
    ``error`` (one line; failed or diverged trials), ``arch`` (NB201 string), ``duplicate_of``
    (the trial that trained the same network and stands for it, ``""`` if none: see
    ``robnas.spaces._effective``), ``network_key``, ``started_at`` and ``finished_at``
    (Unix time, s, of its start and of the last result or failure), ``wall_time_s``
    (``finished_at`` minus the search start, pauses included), ``search_time_s`` (the same
    without the search's idle gaps: the time the search was running), ``trial_dir``, ``checkpoint`` (last checkpoint directory name), the last
    reported metrics, and the flat config as ``config/<key>`` columns.

    A damaged row of a trial's ``result.json`` (not a JSON object, no epoch or not a positive
    integer one, or an objective that is not a finite number or NaN: the rules are those of
    :func:`robnas.trainables._layout.read_result_rows`) is left out, as if the trial had never
    reported it; each is named in ``Experiment.skipped`` and by a :class:`SkippedRowWarning`.
    ``objectives`` (names, or ``name:max``/``name:min``; default: the search's) are the metrics
    checked; another metric that is not a number stays in its row as it was written.

    Raises:
        ValueError: ``path`` does not exist, is not a directory (or a symlink loop), is not a
            robnas search or cannot be read.
    """
    path = Path(path).expanduser()
    settings = read_search_settings(path)
    checked = _checked_objectives(path, settings, objectives)
    state = _read_state(path)
    # The search started at the earliest of: the state's start, any trial's start, any first
    # result minus the time its epoch took (a resumed search keeps its original start).
    start_times = [state.get("start_time", math.nan)]
    rows, histories, skipped, spans = [], [], [], []
    for trial_id, entry in _trial_entries(path, state, checked).items():
        skipped.extend(entry["skipped"])
        history = [{**row, "trial_id": trial_id} for row in entry["history"]]
        if history:
            first = history[0]
            start_times.append(_float(first.get("timestamp")) - _float(first.get("time_this_iter_s"), 0.0))
        start_times.append(_float(entry.get("start_time")))
        histories.extend(history)
        rows.append(_trial_row(trial_id, entry, history))
        spans.extend(_busy_spans(history, rows[-1]))
    max_epochs = _max_epochs(settings, rows)
    trials = _trials_frame(rows, max_epochs)
    start_time = min((t for t in start_times if math.isfinite(t)), default=math.nan)
    trials["wall_time_s"] = trials["finished_at"] - start_time
    gaps = idle_gaps([(start_time, start_time), *spans])
    trials["search_time_s"] = active_seconds(trials["finished_at"].astype(float), start_time, gaps)
    for message in skipped:
        warnings.warn(message, SkippedRowWarning, stacklevel=2)
    results = _results_frame(histories)
    return Experiment(path, settings, trials, results, start_time, max_epochs, tuple(skipped),
                      tuple((float(b), float(e)) for b, e in gaps))


def _busy_spans(history: list[dict[str, Any]], row: dict[str, Any]) -> list[tuple[float, float]]:
    """When a trial was at work: each reported epoch (``timestamp - time_this_iter_s`` to
    ``timestamp``), its start and its finish (instants)."""
    spans = [(row["started_at"], row["started_at"]), (row["finished_at"], row["finished_at"])]
    for result in history:
        end = _float(result.get("timestamp"))
        spans.append((end - _float(result.get("time_this_iter_s"), 0.0), end))
    return spans


def read_search_settings(path: Path) -> dict[str, Any]:
    """The ``settings`` mapping of ``path/robnas.json``; ValueError if it is no robnas search."""
    _check_search_dir(path)
    file = path / SETTINGS_FILE
    if not file.is_file():
        raise ValueError(f"{path} is not a robnas search (no {SETTINGS_FILE})")
    try:
        settings = json.loads(file.read_text(encoding="utf-8"))["settings"]
    except OSError as error:
        raise ValueError(f"cannot read {file}: {error.strerror or error}") from None
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise ValueError(f"{file} is not a valid robnas settings file ({error})") from None
    if not isinstance(settings, dict):
        raise ValueError(f"{file} is not a valid robnas settings file (settings is not a mapping)")
    return settings


def _checked_objectives(
    path: Path, settings: dict[str, Any], spec: str | Sequence[str | Objective] | None
) -> tuple[str, ...]:
    """The names of the objectives ``spec`` (default: the search's), which result rows must
    hold as numbers; ValueError if the search's are not a list of names."""
    own = settings.get("objectives", [])
    if not isinstance(own, list) or not all(isinstance(o, str) for o in own):
        raise ValueError(f"{path / SETTINGS_FILE} is not a valid robnas settings file "
                         "(objectives is not a list of names)")
    return names_of(parse_objectives(spec if spec is not None else own or DEFAULT_OBJECTIVES, None))


def _check_search_dir(path: Path) -> None:
    """ValueError unless ``path`` is a directory (or a symlink to one)."""
    try:
        path.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise ValueError(f"search directory {path} does not exist") from None
    except RuntimeError:  # Python < 3.13: a symlink loop
        raise ValueError(f"search directory {path} is a symlink loop") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ValueError(f"search directory {path} is a symlink loop") from None
        raise ValueError(f"search directory {path} cannot be reached: {error.strerror or error}") from None
    if not path.is_dir():
        raise ValueError(f"search directory {path} is not a directory")


def _float(value: Any, default: float = math.nan) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _read_state(path: Path) -> dict[str, Any]:
    """Trial entries of the newest ``experiment_state-*.json`` (Tune's choice: the largest
    name); an unreadable file gives ``{}``, and entries that do not parse are skipped."""
    files = sorted(path.glob("experiment_state-*.json"))
    if not files:
        return {}
    try:
        data = json.loads(files[-1].read_text(encoding="utf-8"))
        entries = data["trial_data"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return {}
    trials = {}
    for entry in entries:
        try:
            trial = json.loads(entry[0]) if isinstance(entry[0], str) else entry[0]
            meta = json.loads(entry[1]) if isinstance(entry[1], str) else entry[1]
            trials[str(trial["trial_id"])] = {
                "status": str(trial.get("status", "")),
                "relative_logdir": trial.get("relative_logdir"),
                "config": trial.get("config") if isinstance(trial.get("config"), dict) else None,
                "start_time": meta.get("start_time"),
                "last_result_time": meta.get("last_result_time"),
                "error_filename": meta.get("error_filename"),
            }
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError):
            continue
    stats = data.get("stats") if isinstance(data, dict) else None
    start = _float(stats.get("start_time")) if isinstance(stats, dict) else math.nan
    return {"trials": trials, "start_time": start}


def _trial_entries(path: Path, state: dict[str, Any], numbers: Sequence[str]) -> dict[str, dict[str, Any]]:
    """trial_id -> what the state says, its directory (or None), its good result rows
    (``history``) and the messages of its bad ones (``skipped``).

    Trials the state does not know yet (it is saved every few seconds) are found by their
    directories: any directory holding ``params.json`` or ``result.json``.
    """
    entries: dict[str, dict[str, Any]] = {}
    for trial_id, info in state.get("trials", {}).items():
        directory = path / (info.get("relative_logdir") or f"trial_{trial_id}")
        entries[trial_id] = {**info, "dir": directory if directory.is_dir() else None}
    claimed = {entry["dir"].name for entry in entries.values() if entry["dir"] is not None}
    for directory in _subdirectories(path):
        if directory.name not in claimed and is_trial_dir(directory):
            history, skipped = read_result_rows(directory, numbers=numbers)
            trial_id = str(history[0].get("trial_id") or "") if history else ""
            entry = {"dir": directory, "history": history, "skipped": skipped}
            entries.setdefault(trial_id or directory.name.removeprefix("trial_"), entry)
    for entry in entries.values():
        if "history" not in entry:
            found = read_result_rows(entry["dir"], numbers=numbers) if entry["dir"] else ([], [])
            entry["history"], entry["skipped"] = found
    return dict(sorted(entries.items()))


def _subdirectories(path: Path) -> list[Path]:
    """The directories in ``path``, by name (symlink loops, dangling links and files left out)."""
    try:
        children = list(path.iterdir())
    except OSError as error:
        raise ValueError(f"cannot list search directory {path}: {error.strerror or error}") from None
    return sorted(p for p in children if p.is_dir())


def _read_config(entry: dict[str, Any]) -> dict[str, Any]:
    directory = entry.get("dir")
    config = read_params(directory) if directory is not None else None
    return config if config is not None else dict(entry.get("config") or {})


def error_message(file: Path) -> str:
    """The exception line (``Type: message``) of the last failure recorded in Tune's
    ``error.txt``; falls back to the failure's first line."""
    try:
        text = _ANSI.sub("", file.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ""
    blocks = re.split(r"^Failure # \d+.*$", text, flags=re.MULTILINE)
    lines = [line for line in blocks[-1].splitlines() if line.strip()]
    last_frame = max((i for i, line in enumerate(lines) if line.startswith("  File ")), default=None)
    if last_frame is not None:
        for line in lines[last_frame + 1:]:
            if not line.startswith(" "):
                return line.strip()
    return lines[0].strip() if lines else ""


def _arch(config: dict[str, Any]) -> str:
    """The network's one-line description by its family (an NB201 string), or ``""`` when the
    config names no network or a malformed one."""
    try:
        family = family_named(config.get("family", DEFAULT_FAMILY))
        keys = {key: value for key, value in config.items() if key in family.keys}
        if not keys:
            return ""
        dataset = config.get("dataset", "digits")
        return family.describe(family.decode(keys, dataset=dataset if dataset in DATASETS else "digits"))
    except (ValueError, TypeError, KeyError):
        return ""


def _status(entry: dict[str, Any], history: list[dict[str, Any]]) -> str:
    status = entry.get("status")
    error_file = entry["dir"] / "error.txt" if entry.get("dir") is not None else None
    done = bool(history and history[-1].get("done"))
    if status in STATUSES:
        # The state is saved every few seconds: a result marked done is newer.
        return "TERMINATED" if status in ("RUNNING", "PAUSED", "PENDING") and done else status
    if error_file is not None and error_file.is_file():
        return "ERROR"
    if done:
        return "TERMINATED"
    return "RUNNING" if history else "PENDING"


def _trial_row(trial_id: str, entry: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """One row of the trials table: status, flags, times, last result, ``config/`` columns."""
    status = _status(entry, history)
    config = _read_config(entry)
    last = history[-1] if history else {}
    directory = entry.get("dir")
    error = ""
    finished = [_float(last.get("timestamp")), _float(entry.get("last_result_time"))]
    if status == "ERROR" and directory is not None:
        file = directory / (entry.get("error_filename") or "error.txt")
        error = error_message(file)
        if file.is_file():
            finished.append(file.stat().st_mtime)
    diverged = bool(last.get("diverged") is True)
    if diverged and not error:
        error = str(last.get("error", "diverged"))
    finished = [t for t in finished if math.isfinite(t)]
    checkpoints = [p.name for p in checkpoint_dirs(directory)] if directory else []
    row = {
        "trial_id": trial_id,
        "status": status,
        "epoch": int(_float(last.get("epoch", last.get("training_iteration")), 0.0)),
        "diverged": diverged,
        "error": error,
        "arch": _arch(config),
        "started_at": _float(entry.get("start_time"), _float((history or [{}])[0].get("timestamp"))),
        "finished_at": max(finished) if finished else math.nan,
        "trial_dir": directory.name if directory is not None else "",
        "checkpoint": checkpoints[-1] if checkpoints else "",
        "network_key": effective_key(config) if config else f"unknown config of {trial_id}",
    }
    row.update((k, v) for k, v in last.items() if k not in _DROPPED_RESULT_KEYS and k not in row)
    for key, value in config.items():
        nested = isinstance(value, (dict, list))
        row[CONFIG_PREFIX + key] = json.dumps(value, sort_keys=True) if nested else value
    return row


def _max_epochs(settings: dict[str, Any], rows: list[dict[str, Any]]) -> int:
    """The search's ``max_epochs``; else the largest in the trials' configs; else 1."""
    values = [settings.get("max_epochs"), *(r.get(CONFIG_PREFIX + "max_epochs") for r in rows)]
    values = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0]
    return values[0] if values else 1


def _results_frame(histories: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{k: v for k, v in row.items() if k not in _DROPPED_RESULT_KEYS} for row in histories]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame({"trial_id": pd.Series(dtype=str), "epoch": pd.Series(dtype=int)})
    if "epoch" not in frame:
        frame["epoch"] = frame.get("training_iteration", 0)
    first = ["trial_id", "epoch"]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    return frame.sort_values(["trial_id", "epoch"], kind="stable").reset_index(drop=True)


def _trials_frame(rows: list[dict[str, Any]], max_epochs: int) -> pd.DataFrame:
    columns = ["trial_id", "status", "epoch", "complete", "stopped_early", "diverged", "error", "arch"]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns + ["finished_at"]})
    frame = pd.DataFrame(rows)
    frame["complete"] = (frame["epoch"] >= max_epochs) & (frame["status"] != "ERROR")
    frame["stopped_early"] = (frame["status"] == "TERMINATED") & (frame["epoch"] < max_epochs)
    config = sorted(c for c in frame.columns if c.startswith(CONFIG_PREFIX))
    rest = [c for c in frame.columns if c not in columns and c not in config]
    frame = frame[columns + rest + config]
    started = frame["started_at"].astype(float).fillna(np.inf).to_numpy()
    order = np.lexsort((frame["trial_id"].to_numpy(str), started))
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(columns.index("arch") + 1, "duplicate_of", _duplicate_of(frame))
    return frame


def _duplicate_of(frame: pd.DataFrame) -> pd.Series:
    """Per trial, the trial that trained the same network (``effective_key``) and stands for
    it, or ``""``: of each group, the one with the most epochs, the first started on ties."""
    stands = {}
    for i in frame.sort_values("epoch", ascending=False, kind="stable").index:
        stands.setdefault(frame.at[i, "network_key"], frame.at[i, "trial_id"])
    return pd.Series([
        "" if stands[key] == trial else stands[key] for key, trial in zip(frame["network_key"], frame["trial_id"])
    ], index=frame.index, dtype=object)
