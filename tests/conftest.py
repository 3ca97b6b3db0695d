"""Shared fixtures: one Ray instance per test session, and the reference data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Ray starts trial workers at niceness 15, so that on a busy machine other processes win every
# time slice and a test's trials crawl; the suite runs its workers at normal priority (also in
# the `robnas` processes some tests start, which inherit the environment).
os.environ.setdefault("RAY_worker_niceness", "0")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Training in the test process uses one thread: Ray's trial workers use the other core."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository (reference tables of published results)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_session():
    """Ray started once for the whole session: 2 CPUs, no dashboard, loopback only."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray.init(
        address="local",  # always a new instance: never another process's cluster
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        _node_ip_address="127.0.0.1",
    )
    yield
    ray.shutdown()
