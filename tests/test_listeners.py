"""robnas opens no listening socket of its own (Ray's own servers are Ray's: see README, Security)."""

from __future__ import annotations

import ast
import os
import socket
from pathlib import Path

from robnas.search.cli import main
from tests.test_reliability import table_search

ROOT = Path(__file__).resolve().parents[1]
SERVER_MODULES = {"socketserver", "http.server", "xmlrpc.server", "wsgiref.simple_server", "multiprocessing.connection"}
SERVER_CALLS = {"listen", "bind", "start_server", "create_server", "serve_forever", "start_unix_server"}


def _sources() -> list[Path]:
    return [p for part in ("spaces", "trainables", "analysis", "search") for p in (ROOT / part).rglob("*.py")]


def test_no_robnas_module_serves_or_binds():
    found = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.name}: imports {n}" for n in names if n in SERVER_MODULES]
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SERVER_CALLS:
                found.append(f"{path.name}:{node.lineno}: calls .{node.func.attr}()")
    assert not found, found


def listening_sockets(pid: int) -> set[str]:
    """Local addresses of the TCP sockets in LISTEN state that process ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening = set()
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for fields in (line.split() for line in lines):
            if fields[3] == "0A" and fields[9] in inodes:  # state 0A = LISTEN
                listening.add(f"{table} {fields[1]}")
    return listening


def test_a_search_opens_no_listener_in_the_robnas_process(ray_session, shared_data, tmp_path):
    before = listening_sockets(os.getpid())  # Ray's driver servers, started by the session fixture
    assert main(table_search(tmp_path, "l")) == 0
    assert main(["analyze", str(tmp_path / "l")]) == 0
    assert listening_sockets(os.getpid()) == before
    with socket.socket() as server:  # the check sees a listener when there is one
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert len(listening_sockets(os.getpid()) - before) == 1
