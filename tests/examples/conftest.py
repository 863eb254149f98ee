"""Fixtures of the example tests: a portal simulator per test, an engine serving the app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from examples.base_stations import portal
from examples.base_stations.app import app

from stepline.engine.engine import Engine
from tests.inngest.conftest import make_stepline, servers, stepline  # noqa: F401  # for SDK apps


@pytest.fixture(autouse=True)
def fast_portal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's portal answers at once here (`STATIONS_FAST`), not slowly enough to watch."""
    monkeypatch.setenv("STATIONS_FAST", "1")


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[portal.Portal]:
    """A simulator of this test's own, and a fresh stations database, wired in by env."""
    with portal.Portal(portal.PortalSettings(retry_after=30, slow_seconds=10)) as sim:
        monkeypatch.setenv("STATIONS_PORTAL_URL", sim.url)
        monkeypatch.setenv("STATIONS_DB", str(tmp_path / "stations.db"))
        monkeypatch.setenv("STATIONS_HTTP_TIMEOUT", "5")
        monkeypatch.delenv("STATIONS_PORTAL_TOKEN", raising=False)
        yield sim


@pytest.fixture
def engine(make_engine: Callable[..., Engine], vendor: portal.Portal) -> Engine:
    """An engine serving the example app (after the simulator is up)."""
    return make_engine(app)
