"""The runs list in Chromium, on both stores: a click on a row opens its run (but not a click
on its checkbox or links); runs selected by checkbox (and "select all") go through the
preview and confirmation, and exactly those are cancelled; a time typed into the filters in a
browser in New York selects in New York time and is shown again so; at a 390 px phone width
each run is a card and nothing scrolls sideways. Screenshots go to test-output/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from tests.server.conftest import SCREENSHOTS, Served, shoot
from tests.server.test_dashboard_runs_list import list_app, send

pytestmark = pytest.mark.timeout(40)


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(list_app()))


@pytest.fixture
def new_york(browser: Browser, serve: Callable[..., Served]) -> Iterator[Page]:
    """A tab in a browser whose time zone is America/New_York (UTC-5 in January)."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="America/New_York"
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_a_row_click_opens_the_run_but_not_a_click_on_its_checkbox(
    served: Served, page: Page
) -> None:
    run_id = send(served, {"order": "R-1"})
    page.goto(served.url + "/runs")
    row = page.locator(f'tr.run-row[data-href="/runs/{run_id}"]')
    expect(row.locator(".payload-preview")).to_have_text('{"order": "R-1"}')

    row.get_by_role("checkbox").check()
    expect(page).to_have_url(served.url + "/runs")
    expect(page.locator("#selected-count")).to_have_text("1 run selected")
    row.locator("td[data-label=Duration]").click()

    page.wait_for_url(re.compile(f"/runs/{run_id}$"))


def test_select_preview_confirm_cancels_exactly_the_selected_runs(
    served: Served, page: Page
) -> None:
    naps = [send(served, {"order": f"N-{n}", "nap": True}) for n in range(3)]
    page.goto(served.url + "/runs")
    cancel = page.get_by_role("button", name="Cancel selected…")
    expect(cancel).to_be_disabled()

    page.get_by_label("Select every run on this page").check()
    expect(page.locator("#selected-count")).to_have_text("3 runs selected")
    page.get_by_label(f"Select run {naps[1]}").uncheck()
    expect(page.get_by_label("Select every run on this page")).not_to_be_checked()
    newer = send(served, {"order": "N-3", "nap": True})  # a live update replaces the rows
    expect(page.locator("#runs-rows tr.run-row")).to_have_count(4)
    expect(page.get_by_label(f"Select run {newer}")).not_to_be_checked()
    for run_id, checked in zip(naps, [True, False, True], strict=True):
        expect(page.get_by_label(f"Select run {run_id}")).to_be_checked(checked=checked)
    shoot(page, "runs-selected")
    cancel.click()

    expect(page.get_by_role("heading", name="Cancel selected active runs", level=1)).to_be_visible()
    expect(page.locator("#bulk-count")).to_have_text("2 active runs would be cancelled.")
    assert not any(served.engine.store.get_run(run_id).ended for run_id in naps)
    page.get_by_role("button", name="Cancel 2 runs").click()

    page.wait_for_url(re.compile(r"/runs\?.*cancelled=2"))
    expect(page.get_by_role("status").filter(has_text="Cancelled 2 runs.")).to_be_visible()
    statuses = [served.engine.store.get_run(run_id).status for run_id in [*naps, newer]]
    assert [status == "CANCELLED" for status in statuses] == [True, False, True, False]


def test_a_time_typed_in_new_york_selects_in_new_york_time(
    served: Served, new_york: Page, clock: FakeClock
) -> None:
    early = send(served, {"order": "T-1"})  # 2026-01-01 00:00 UTC: 19:00 the day before in NY
    clock.advance(timedelta(hours=2))
    late = send(served, {"order": "T-2"})  # 02:00 UTC: 21:00 in New York
    page = new_york
    page.goto(served.url + "/runs")
    expect(page.locator(".tz-zone").first).to_have_text("America/New_York")

    page.get_by_label("Created from").fill("2025-12-31T20:00:00")  # 01:00 UTC
    page.get_by_role("button", name="Filter").click()

    page.wait_for_url(re.compile(r"created_after=2025-12-31T20%3A00%3A00-05%3A00"))
    expect(page.locator("#runs-rows tr.run-row")).to_have_count(1)
    expect(page.locator(f'tr[data-href="/runs/{late}"]')).to_be_visible()
    expect(page.locator(f'tr[data-href="/runs/{early}"]')).to_have_count(0)
    expect(page.get_by_label("Created from")).to_have_value(re.compile(r"^2025-12-31T20:00"))
    assert "function_id=" not in page.url  # empty fields are left out of the URL

    page.get_by_label("Created from").fill("")
    page.locator("select[name=since]").select_option("15m")  # 01:45 UTC on: the later run
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"since=15m"))
    expect(page.locator("#runs-rows tr.run-row")).to_have_count(1)


def test_at_a_phone_width_runs_are_cards_without_sideways_scroll(
    served: Served, page: Page
) -> None:
    send(served, {"order": "P-1", "note": "a long note " * 40})
    send(served, {"order": "P-2", "fail": True})
    page.goto(served.url + "/runs")
    wrap = page.locator(".runs-wrap")
    assert wrap.evaluate("el => el.scrollWidth - el.clientWidth") <= 0  # at 1280 px, all fits
    page.set_viewport_size({"width": 390, "height": 844})

    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert wrap.evaluate("el => el.scrollWidth - el.clientWidth") <= 0
    expect(
        page.locator("#runs-rows tr.run-row").first.locator("td[data-label=Trigger]")
    ).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "runs-list-390.png"), full_page=True)
    shoot(page, "runs-list")
