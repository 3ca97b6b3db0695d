"""Record benchmark figures in ``benchmarks/RESULTS.md``, one ``## title`` section per benchmark.

Every section starts with the date (UTC), the machine, the load, the library versions and the
exact command line, then the benchmark's own Markdown. Benchmarks import this module as
``from _results import record_section`` (run them as ``python benchmarks/<name>.py``; the
script's directory is then on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
import platform
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS_FILE = Path(__file__).resolve().with_name("RESULTS.md")
HEADER = "# Benchmark results"
_LIBRARIES = ("torch", "ray", "optuna", "sklearn", "numpy")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (AttributeError, ValueError, OSError):
        return None


def _version(module: str) -> str:
    try:
        return str(importlib.import_module(module).__version__)
    except Exception:  # not installed, or broken: record that, never fail a benchmark for it
        return "not installed"


def load_average() -> tuple[float, float, float] | None:
    """1, 5 and 15 minute load averages (runnable processes), or ``None`` where unsupported."""
    try:
        return tuple(round(value, 2) for value in os.getloadavg())  # type: ignore[return-value]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict[str, Any]:
    """Machine and software facts a figure depends on.

    Keys: ``platform``, ``cpu`` (model name), ``cpu_count`` (logical CPUs), ``cpu_affinity``
    (CPUs this process may use, or ``None``), ``ram_gib``, ``load_average`` (1/5/15 min) and
    ``versions`` (python, torch, ray, optuna, sklearn, numpy).
    """
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    ram = _ram_gib()
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "ram_gib": None if ram is None else round(ram, 1),
        "load_average": load_average(),
        "versions": {"python": platform.python_version(), **{m: _version(m) for m in _LIBRARIES}},
    }


def current_command() -> str:
    """The command line that started this process, as ``python <script> <args>``."""
    return shlex.join(["python", *sys.argv])


def _preamble(info: dict[str, Any], command: str) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    cpus = f"{info['cpu_count']} logical CPUs"
    if info["cpu_affinity"] not in (None, info["cpu_count"]):
        cpus += f" ({info['cpu_affinity']} usable)"
    ram = "unknown RAM" if info["ram_gib"] is None else f"{info['ram_gib']} GiB RAM"
    load = info["load_average"]
    load_text = "unknown" if load is None else " / ".join(f"{value:.2f}" for value in load)
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    return "\n".join([
        f"- Date: {now.isoformat().replace('+00:00', 'Z')}",
        f"- Machine: {info['platform']}; {info['cpu']}; {cpus}; {ram}",
        f"- Load average when recorded (1 / 5 / 15 min): {load_text}",
        f"- Versions: {versions}",
        f"- Command: `{command}`",
    ])


def replace_section(document: str, title: str, section: str) -> str:
    """``document`` with its ``## title`` section (up to the next ``## ``) replaced by
    ``section``, or with ``section`` appended when there is none. ``section`` includes its
    heading line."""
    heading = f"## {title}"
    lines = document.splitlines()
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    new = section.rstrip("\n").splitlines()
    if start is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", *new]
    else:
        stop = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:stop] = [*new, *([""] if stop < len(lines) else [])]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (POSIX ``flock``), so writers take turns."""
    try:
        import fcntl
    except ImportError:  # no flock: the re-read just before the write is all we have
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def publish(title: str, body_markdown: str, *, json_path: Path | None, record: bool, raw: dict[str, Any]) -> None:
    """The end of every benchmark: write ``raw`` (with the machine and the command first) as JSON
    to ``json_path`` if given, and record ``body_markdown`` as section ``title`` if ``record``."""
    import json

    command = current_command()
    if json_path:
        payload = {"machine": machine_info(), "command": command, **raw}
        json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if record:
        print(f"recorded in {record_section(title, body_markdown, command=command)}")


def record_section(
    title: str, body_markdown: str, *, command: str, path: str | os.PathLike | None = None
) -> Path:
    """Write (or replace) the ``## {title}`` section of the results file; return its path.

    Args:
        title: section title, one line, without the ``## `` prefix.
        body_markdown: the benchmark's figures; ``## `` headings inside it are not allowed
            (they would start a new section), use ``### ``.
        command: the exact command line that produced the figures (see ``current_command()``).
        path: results file (default: ``benchmarks/RESULTS.md`` beside this module).

    The file is created with the header ``# Benchmark results`` if missing, re-read right before
    the write under a lock on its directory, and replaced atomically.
    """
    from robnas.trainables._layout import atomic_write_text

    if not isinstance(title, str) or not title.strip() or "\n" in title:
        raise ValueError(f"title must be one non-empty line, got {title!r}")
    if re.search(r"^## ", body_markdown, flags=re.MULTILINE):
        raise ValueError("body_markdown must not contain '## ' headings; use '### '")
    if not isinstance(command, str) or not command.strip():
        raise ValueError(f"command must be the command line that produced the figures, got {command!r}")
    title = title.strip()
    target = Path(path) if path is not None else RESULTS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    section = f"## {title}\n\n{_preamble(machine_info(), command)}\n\n{body_markdown.strip()}\n"
    with _locked(target.parent):
        existed = target.exists()
        mode = target.stat().st_mode & 0o777 if existed else 0o644
        document = target.read_text(encoding="utf-8") if existed else f"{HEADER}\n"
        atomic_write_text(target, replace_section(document, title, section))
        os.chmod(target, mode)  # the temporary file behind the atomic write is private (0600)
    return target
