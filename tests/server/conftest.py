"""A real Stepline server on a free loopback port, in a thread of the test process; a browser."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

import stepline
from stepline.engine.engine import Engine
from stepline.server.app import create_app
from stepline.server.auth import AuthSettings


def echo_app(event: str) -> stepline.App:
    """An app whose one function, "echo", returns the data of each event named `event`."""
    app = stepline.App("echo-test")

    @app.function(id="echo", triggers=[stepline.event(event)], retries=0)
    def echo(ctx: stepline.Context) -> object:
        return ctx.event["data"]

    return app


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    """A running server: its URL and an HTTP client for it."""

    url: str
    http: httpx.Client
    engine: Engine


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Serve an engine's operations over HTTP; stopped (and joined) after the test."""
    servers: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(engine: Engine, auth: AuthSettings | None = None) -> Served:
        port = free_port()
        config = uvicorn.Config(
            create_app(engine.operations, auth), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.01)
        url = f"http://127.0.0.1:{port}"
        http = httpx.Client(base_url=url, timeout=10)
        servers.append((server, thread, http))
        return Served(url=url, http=http, engine=engine)

    yield start
    for server, thread, http in servers:
        http.close()
        server.should_exit = True
        thread.join(timeout=10)


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
