"""Shared fixtures: a real store per test (SQLite file in WAL mode), a fake clock, engines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.retry import RetryPolicy
from stepline.engine.worker import WorkerSettings
from stepline.store.base import Store
from stepline.store.sqlite import SqliteStore

STORES = ["sqlite"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store of each kind."""
    if request.param == "sqlite":
        db: Store = SqliteStore(tmp_path / "stepline.db")
    else:  # pragma: no cover - PostgreSQL arrives with its store
        raise NotImplementedError(request.param)
    db.upgrade()
    yield db
    db.close()


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test moves it."""
    return FakeClock()


FAST_SETTINGS = EngineSettings(
    worker=WorkerSettings(slots=8, lease_seconds=5.0, poll_seconds=0.05),
    retry=RetryPolicy(base_seconds=1.0, factor=2.0, cap_seconds=60.0, jitter=0.0),
    scheduler_poll_seconds=0.05,
)


@pytest.fixture
def make_engine(store: Store, clock: FakeClock) -> Iterator[Callable[..., Engine]]:
    """Start an engine for some apps on the test's store and fake clock; stopped afterwards."""
    engines: list[Engine] = []

    def make(apps: stepline.App | list[stepline.App], **kwargs: Any) -> Engine:
        kwargs.setdefault("settings", FAST_SETTINGS)
        kwargs.setdefault("clock", clock)
        engine = Engine(apps, db=store, upgrade=False, **kwargs)
        engines.append(engine)
        return engine.start()

    yield make
    for engine in engines:
        engine.worker.stop(grace_seconds=2)
        engine.scheduler.stop()
