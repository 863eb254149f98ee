"""The stations page in Chromium: its times in the viewer's zone, named, and what it says while
Stepline does not answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from examples.base_stations import web
from playwright.sync_api import Browser, Page, expect
from starlette.types import ASGIApp

from tests.examples.test_web import (  # noqa: F401  # fixtures
    Demo,
    clock,
    demo,
    serve,
    sync_now,
    wait_for_status,
)
from tests.loopback import free_port

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def tab(browser: Browser) -> Iterator[Page]:
    """A tab in Johannesburg (UTC+2 all year)."""
    context = browser.new_context(timezone_id="Africa/Johannesburg")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_times_are_local_and_the_page_names_the_zone(demo: Demo, tab: Page) -> None:  # noqa: F811
    assert sync_now(demo).status_code == 202
    wait_for_status(demo, lambda sync: not sync["active"])
    tab.goto(str(demo.page.base_url))
    expect(tab.locator("#zone-note")).to_have_text(
        "Times are in your time zone (GMT+2); hover one for UTC."
    )
    for moment in (tab.locator("#sync time"), tab.locator("table time").first):
        expect(moment).to_contain_text("GMT+2")
        expect(moment).to_have_attribute(
            "title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
        )


def test_while_stepline_is_down_the_page_says_so_and_keeps_trying(
    serve: Callable[[ASGIApp], str],  # noqa: F811
    tab: Page,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("STATIONS_DB", str(tmp_path / "stations.db"))
    page_url = serve(web.create_app(f"http://127.0.0.1:{free_port()}"))
    tab.goto(page_url)
    expect(tab.locator("#sync")).to_contain_text(
        "The last sync is unknown while Stepline is not answering."
    )
    problem = tab.locator("#live-problem")
    expect(problem).to_contain_text("Stepline is not answering: cannot reach Stepline at")
    expect(problem).to_contain_text(re.compile(r"Reconnecting… \(last update \d+ s ago"))
    expect(tab.locator("#sync")).to_have_class(re.compile(r"\bstale\b"))
