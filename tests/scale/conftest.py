"""Fixtures for the scale tests: a `Cluster` of real processes, and a PostgreSQL that is always
brought back up, whatever a test did to it."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepline.store.base import Store
from tests.scale.support import Cluster, database_of, is_postgres

PG_VERSION = "15"
PG_CLUSTER = "main"
PG_READY_SECONDS = 30.0


def pg_ready() -> bool:
    """True when the machine's PostgreSQL accepts connections."""
    done = subprocess.run(
        ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False, timeout=10
    )
    return done.returncode == 0


def pg_ctl(action: str) -> None:
    """`pg_ctlcluster 15 main ACTION` (stop is 'fast': sessions are terminated)."""
    args = ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, PG_CLUSTER, action]
    if action in ("stop", "restart"):
        args += ["-m", "fast"]
    subprocess.run(args, check=True, timeout=60, capture_output=True)


def wait_pg_ready(seconds: float = PG_READY_SECONDS) -> float:
    """Wait (bounded) until PostgreSQL accepts connections; how long that took."""
    began = time.monotonic()
    while not pg_ready():
        if time.monotonic() - began > seconds:
            raise AssertionError(f"PostgreSQL not ready after {seconds:g}s")
        time.sleep(0.1)
    return time.monotonic() - began


@pytest.fixture
def postgres_guard(store: Store) -> Iterator[None]:
    """For tests that stop PostgreSQL: start it again afterwards if the test left it down."""
    yield
    if is_postgres(store) and not pg_ready():
        with contextlib.suppress(subprocess.CalledProcessError):  # already starting
            pg_ctl("start")
        wait_pg_ready()


@pytest.fixture
def cluster(store: Store, tmp_path: Path) -> Iterator[Cluster]:
    """Server and worker processes on the test's database; each stopped by its PID at the end."""
    processes = Cluster(database_of(store), tmp_path)
    try:
        yield processes
    finally:
        processes.close()
