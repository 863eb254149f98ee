"""Fixtures for the scale tests: a `Cluster` of real processes, and stores whose PostgreSQL is a
throwaway server of the test's own, for tests that stop or restart the database (the machine's
server, and every other test session on it, carry on undisturbed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stepline.store.base import Store
from stepline.store.postgres import PostgresStore
from stepline.store.sqlite import SqliteStore
from tests.conftest import STORES
from tests.scale.pg_cluster import ThrowawayPostgres, pg_bin
from tests.scale.support import Cluster, database_of


@pytest.fixture
def own_postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server of the test's own, which it may stop, start and restart."""
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.fail("no PostgreSQL server binaries under /usr/lib/postgresql")
    server = ThrowawayPostgres(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=STORES)
def restartable_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store of each kind; PostgreSQL's is on `own_postgres`."""
    db: Store
    if request.param == "sqlite":
        db = SqliteStore(tmp_path / "stepline.db")
    else:
        db = PostgresStore(request.getfixturevalue("own_postgres").url)
    db.upgrade()
    yield db
    db.close()


@pytest.fixture
def cluster(store: Store, tmp_path: Path) -> Iterator[Cluster]:
    """Server and worker processes on the test's database; each stopped by its PID at the end."""
    processes = Cluster(database_of(store), tmp_path)
    try:
        yield processes
    finally:
        processes.close()
