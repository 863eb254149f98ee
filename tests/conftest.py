"""Shared fixtures: a real store per test (SQLite file, PostgreSQL database), a fake clock.

Browser tests share one Chromium per session (`browser`): Playwright's sync API runs once per
process.

PostgreSQL tests use the server named by STEPLINE_TEST_POSTGRES_DSN: one fresh database per
test session (dropped afterwards), emptied before each test. Without the DSN they are skipped,
unless STEPLINE_REQUIRE_POSTGRES=1 (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import URL, text

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.retry import RetryPolicy
from stepline.engine.worker import WorkerSettings
from stepline.store import schema
from stepline.store.base import Store
from stepline.store.postgres import PostgresStore
from stepline.store.sqlite import SqliteStore

STORES = ["sqlite", "postgres"]
POSTGRES_DSN = os.environ.get("STEPLINE_TEST_POSTGRES_DSN")
REQUIRE_POSTGRES = os.environ.get("STEPLINE_REQUIRE_POSTGRES") == "1"


def _admin(dsn: str, sql: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated database for this test session; dropped at the end."""
    if not POSTGRES_DSN:
        message = "STEPLINE_TEST_POSTGRES_DSN is not set"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    name = f"stepline_test_{uuid.uuid4().hex[:12]}"
    _admin(POSTGRES_DSN, f'CREATE DATABASE "{name}"')
    params = psycopg.conninfo.conninfo_to_dict(POSTGRES_DSN)
    url = URL.create(
        "postgresql",
        username=str(params.get("user") or "postgres"),
        password=str(params["password"]) if params.get("password") else None,
        host=str(params.get("host") or "127.0.0.1"),
        port=int(params.get("port") or 5432),
        database=name,
    ).render_as_string(hide_password=False)
    store = PostgresStore(url)
    store.upgrade()
    store.close()
    yield url
    _admin(POSTGRES_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty(store: PostgresStore) -> None:
    # The registry version's single row stays: the store expects it, as a migration leaves it.
    kept = {schema.registry_version.name}
    tables = ", ".join(t.name for t in schema.metadata.sorted_tables if t.name not in kept)
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store of each kind."""
    db: Store
    if request.param == "sqlite":
        db = SqliteStore(tmp_path / "stepline.db")
        db.upgrade()
    else:
        url = request.getfixturevalue("postgres_url")
        db = PostgresStore(url)
        _empty(db)
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With STEPLINE_NO_SKIPS=1 (CI), a skipped test fails the run: skips are not passes."""
    if os.environ.get("STEPLINE_NO_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter:
            reporter.write_line(f"STEPLINE_NO_SKIPS=1: {skipped} test(s) were skipped", red=True)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()
