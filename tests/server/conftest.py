"""A real Stepline server on a free loopback port, in a thread of the test process; a browser tab
(Chromium itself is the session's, from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

import stepline
from stepline.engine.engine import Engine
from stepline.server.app import create_app
from stepline.server.auth import AuthSettings
from tests.loopback import Servers


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from a server-sent event stream's lines."""
    event, data = "", []
    for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif not line and event:
            yield event, "\n".join(data)
            event, data = "", []


def echo_app(event: str) -> stepline.App:
    """An app whose one function, "echo", returns the data of each event named `event`."""
    app = stepline.App("echo-test")

    @app.function(id="echo", triggers=[stepline.event(event)], retries=0)
    def echo(ctx: stepline.Context) -> object:
        return ctx.event["data"]

    return app


def options_app() -> stepline.App:
    """An app whose function "sync-script" sets most flow-control options, and "batched" one.

    "sync-script" also has a failure handler, registered as "sync-script-failure".
    """
    app = stepline.App("options-test")

    def report(ctx: stepline.Context) -> None:
        return None

    @app.function(
        id="sync-script",
        triggers=[stepline.event("sync/script.requested")],
        concurrency=[stepline.Concurrency(limit=2, key="event.data.customer")],
        throttle=stepline.Throttle(limit=10, period="1m"),
        rate_limit=stepline.RateLimit(limit=1, period="1h", key="event.data.customer"),
        debounce=stepline.Debounce(period="30s", key="event.data.sku", timeout="5m"),
        priority=stepline.Priority(run="event.data.plan == 'enterprise' ? 120 : 0"),
        idempotency="event.data.order_id",
        singleton=stepline.Singleton(key="event.data.script", mode="skip"),
        cancel_on=stepline.CancelOn("sync/cancelled", match="data.id", timeout="1d"),
        timeouts=stepline.Timeouts(start="5m", finish="1h"),
        on_failure=report,
    )
    def sync_script(ctx: stepline.Context) -> None:
        return None

    @app.function(
        id="batched",
        triggers=[stepline.event("stock/changed")],
        batch_events=stepline.Batch(max_size=100, timeout="5s", key="event.data.warehouse"),
    )
    def batched(ctx: stepline.Context) -> None:
        return None

    return app


OPTION_SUMMARIES = {
    "sync-script": [
        "concurrency 2 per event.data.customer",
        "throttle 10 per 1m (burst 1)",
        "rate limit 1 per 1h per event.data.customer",
        "debounce 30s per event.data.sku (max 5m)",
        "priority event.data.plan == 'enterprise' ? 120 : 0",
        "idempotency event.data.order_id (24h)",
        "singleton: skip per event.data.script",
        "cancel on sync/cancelled if event.data.id == async.data.id (1d)",
        "start within 5m",
        "on failure: sync-script-failure",
    ],
    "batched": ["batch up to 100 events or 5s per event.data.warehouse"],
    "sync-script-failure": [],
}
"""What the API says of each function of `options_app`, in words."""


@dataclass
class Served:
    """A running server: its URL and an HTTP client for it."""

    url: str
    http: httpx.Client
    engine: Engine


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Serve an engine's operations over HTTP; stopped (and joined) after the test."""
    servers = Servers()
    clients: list[httpx.Client] = []

    def start(engine: Engine, auth: AuthSettings | None = None) -> Served:
        url = servers.start(create_app(engine.operations, auth))
        http = httpx.Client(base_url=url, timeout=10)
        clients.append(http)
        return Served(url=url, http=http, engine=engine)

    yield start
    for http in clients:
        http.close()
    servers.stop()


@pytest.fixture
def page(browser: Browser, serve: Callable[..., Served]) -> Iterator[Page]:
    """A fresh browser tab at 1280 px; closed before the servers (hence `serve`) stop.

    Live pages hold server-sent-event streams open; closing the tab first ends them, so the
    server's graceful shutdown does not wait for them.
    """
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="Africa/Johannesburg"
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


def shoot(page: Page, name: str) -> None:
    """Screenshots at 1280 px and 360 px wide (test-output/screenshots/), no sideways scroll."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 800})
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} overflows by {overflow}px at {width}px"
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
