"""Honest live state in Chromium, on both stores.

A real `stepline dev` process is killed (SIGKILL: a dead engine) under open pages and started
again: the pages say they are reconnecting, mark their live parts stale, keep forms and links
on the page while it is down, and refresh themselves when it is back, without a reload. With an
in-test server: relative times with the exact local time on hover (UTC without JavaScript),
failed htmx requests shown beside their element, and the favicon.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

import stepline
from stepline.engine.engine import Engine
from stepline.store.base import Store
from stepline.store.sqlite import SqliteStore
from tests.loopback import free_port, wait_healthy
from tests.server.conftest import SCREENSHOTS, Served, echo_app

pytestmark = pytest.mark.timeout(90)

APP_FILE = Path(__file__).with_name("live_app.py")
NAP_SECONDS = 4


class Dev:
    """`stepline dev tests/server/live_app.py` on one port and database, killed and restarted."""

    def __init__(self, db: str, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.args = [sys.executable, "-m", "stepline.cli.main", "dev", str(APP_FILE)]
        self.args += ["--db", db, "--port", str(port), "-q"]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=self.log.parent
            )
        wait_healthy(self.url, self.process, self.log)

    def kill(self) -> None:
        """SIGKILL by PID: the engine and server die at once, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


@pytest.fixture
def dev(store: Store, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Dev]:
    """A `stepline dev` on the test's store (its SQLite file, or its PostgreSQL database)."""
    if isinstance(store, SqliteStore):
        db = str(tmp_path / "stepline.db")  # the file the store fixture migrated
    else:
        db = request.getfixturevalue("postgres_url")
    server = Dev(db, free_port(), tmp_path / "dev.log")
    server.start()
    yield server
    server.kill()


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-1280.png"), full_page=True)


def test_pages_say_they_are_reconnecting_and_recover_when_the_engine_is_back(
    dev: Dev, browser: Browser
) -> None:
    with stepline.Client(dev.url, timeout=5) as client:
        run_id = client.invoke("napper", {"seconds": NAP_SECONDS})
    woke_at = time.monotonic() + NAP_SECONDS
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="Africa/Johannesburg"
    )
    context.set_default_timeout(10_000)
    try:
        run, runs, functions = context.new_page(), context.new_page(), context.new_page()
        run.goto(f"{dev.url}/runs/{run_id}")
        expect(run.locator("#run-detail")).to_have_text("SLEEPING")
        runs.goto(f"{dev.url}/runs")
        expect(runs.locator("#runs-rows")).to_contain_text(run_id)
        functions.goto(f"{dev.url}/functions")
        for tab in (run, runs):
            tab.evaluate("window.notReloaded = true")

        dev.kill()
        for tab, region in ((run, "#run-live"), (runs, "[sse-connect]")):
            banner = tab.locator("#live-banner")
            expect(banner).to_be_visible()
            expect(banner.locator("[role=status], .live-message").first).to_have_text(
                "Reconnecting…"
            )
            expect(banner).to_contain_text(re.compile(r"\(last update (\d+ s ago|just now)\)"))
            expect(tab.locator(region)).to_have_class(re.compile(r"\blive-stale\b"))
            expect(tab.locator(".stale-note")).to_contain_text("Stale")
        expect(run.locator("#run-status")).to_have_text("RUNNING")  # what it had, marked stale
        _shot(run, "live-reconnecting")
        run.set_viewport_size({"width": 390, "height": 844})  # a phone: the banner fits
        assert run.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        run.screenshot(path=str(SCREENSHOTS / "live-reconnecting-390.png"))
        run.set_viewport_size({"width": 1280, "height": 900})

        # While it is down, a link stays on the page, and a form says why it was not sent.
        run.get_by_role("navigation", name="Main").get_by_role("link", name="Events").click()
        expect(run.locator("#live-banner")).to_contain_text("Not opened")
        assert run.url.endswith(f"/runs/{run_id}")
        functions.locator("#function-napper").get_by_role("button", name="Run now").click()
        alert = functions.get_by_role("alert")
        expect(alert).to_contain_text("Not sent: Stepline is not answering")
        assert functions.url.endswith("/functions")
        _shot(functions, "live-form-while-down")

        time.sleep(max(0.0, woke_at - time.monotonic()) + 0.5)  # the nap ends while it is down
        dev.start()
        expect(run.locator("#run-status")).to_have_text("COMPLETED", timeout=25_000)
        for tab in (run, runs):
            expect(tab.locator(".live-stale")).to_have_count(0, timeout=25_000)
            expect(tab.locator(".stale-note")).to_have_count(0)
            expect(tab.locator("#live-banner")).not_to_contain_text("Reconnecting")
            assert tab.evaluate("window.notReloaded") is True, "the page reloaded"
        expect(runs.locator("#runs-rows")).to_contain_text("COMPLETED", timeout=15_000)
        _shot(run, "live-reconnected")
    finally:
        context.close()


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    app = echo_app("live/echo")

    @app.function(id="midnight", triggers=[stepline.cron("0 0 * * *", tz="Africa/Johannesburg")])
    def midnight(ctx: stepline.Context) -> None:
        return None

    return serve(make_engine(app))


def test_times_read_relative_with_the_exact_local_time_on_hover(served: Served, page: Page) -> None:
    served.engine.invoke("echo", {"n": 1})
    page.goto(served.url + "/runs")
    created = page.locator("#runs-rows time").first
    # The engine's clock stands still; "now" is the server's, so real seconds go by from it.
    expect(created).to_have_text(re.compile(r"^(now|\d s ago)$"))
    expect(created).to_have_attribute("title", re.compile(r"GMT\+2 \(\d{4}-\d\d-\d\d .* UTC\)$"))
    expect(created).to_have_text(re.compile(r"^[1-9] s ago$"), timeout=5_000)  # keeps counting
    page.goto(served.url + "/functions")
    # The fake clock is 2026-01-01 00:00 UTC, 02:00 in Johannesburg: midnight there is 22 h on.
    expect(page.locator("#function-midnight .next-fire time")).to_have_text("in 21 h")
    # A run's log lines and its trace's facts keep the exact local time.
    page.goto(served.url + "/runs")
    page.locator("#runs-rows a").first.click()
    fact = page.locator(".trace-panel time").first
    expect(fact).to_contain_text("GMT+2")
    expect(fact).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d .* UTC$"))


def test_without_javascript_times_read_utc(served: Served, browser: Browser) -> None:
    served.engine.invoke("echo", {"n": 1})
    context = browser.new_context(java_script_enabled=False, timezone_id="Africa/Johannesburg")
    try:
        page = context.new_page()
        page.goto(served.url + "/runs")
        expect(page.locator("#runs-rows time").first).to_have_text(
            re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
        )
    finally:
        context.close()


def test_a_failed_htmx_request_shows_the_servers_message_beside_its_element(
    served: Served, page: Page
) -> None:
    page.goto(served.url + "/functions")
    # No page sends one that can fail yet: add a button as a page would, and press it.
    page.evaluate(
        """() => {
          const b = document.createElement("button");
          b.id = "probe"; b.setAttribute("hx-post", "/runs/NO-SUCH-RUN/cancel");
          b.textContent = "Cancel a run that is not there";
          document.querySelector("main").prepend(b);
          htmx.process(b);
        }"""
    )
    page.locator("#probe").click()
    error = page.locator("#probe + .inline-error")
    expect(error).to_have_attribute("role", "alert")
    expect(error).to_contain_text("Stepline answered 404: no run with id 'NO-SUCH-RUN'")
    assert page.url.endswith("/functions")


def test_the_favicon_is_served_and_linked(served: Served, page: Page) -> None:
    for path in ("/favicon.ico", "/static/favicon.svg"):
        answer = served.http.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("image/svg+xml")
        assert answer.text.startswith("<svg")
    page.goto(served.url + "/")
    icon = page.locator("link[rel=icon]")
    expect(icon).to_have_attribute("href", "/static/favicon.svg")
