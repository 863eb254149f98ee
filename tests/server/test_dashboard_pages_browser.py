"""The function, workers and events pages in Chromium, on both stores: the chart, Run now's
check before submit, pause behind a confirmation, live workers and events.
Screenshots at 1280 px and 360 px go to test-output/screenshots/."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.events import build_event
from stepline.engine.routing import Routing
from stepline.store.base import Store
from tests.server.conftest import SCREENSHOTS, Served, shoot
from tests.server.pages_support import NOW, seeded_engine, tick, worker

pytestmark = pytest.mark.timeout(40)


@pytest.fixture
def served(store: Store, clock: FakeClock, serve: Callable[..., Served]) -> Iterator[Served]:
    engine = seeded_engine(store, clock)
    yield serve(engine)
    engine.worker.stop(grace_seconds=0)  # never started: this closes its event loop


def _phone(page: Page, name: str) -> None:
    """A 390 px phone's view (a common width), with no sideways scroll."""
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.screenshot(path=str(SCREENSHOTS / f"{name}-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_function_page_from_its_name_with_chart_runs_and_a_checked_run_now(
    served: Served, store: Store, page: Page
) -> None:
    tick(store)
    page.goto(served.url + "/functions")
    page.locator("#function-report").get_by_role("link", name="report", exact=True).click()
    page.wait_for_url(re.compile(r"/functions/report$"))

    expect(page.get_by_role("heading", name="report", level=1)).to_be_visible()
    expect(page.locator("#function-retries")).to_have_text("4 retries (up to 5 attempts)")
    last_fire = page.locator("#function-triggers .last-fire time")
    expect(last_fire).to_have_text("7 h ago")  # the real tick at 02:30 UTC; now is 10:20 UTC
    expect(last_fire).to_have_attribute("title", re.compile(r"^01/02/2026, 04:30:00 AM GMT\+2"))
    expect(page.locator("svg.chart circle.p50")).to_have_count(2)
    expect(page.locator("svg.chart circle.p95")).to_have_count(2)
    expect(page.locator("svg.chart rect.rate")).to_have_count(2)
    expect(page.locator("#runs-rows tr")).to_have_count(5)
    shoot(page, "function-page")
    _phone(page, "function-page")

    before = len(served.engine.list_runs())
    payload = page.get_by_label("Payload")
    payload.fill('{"pages": ')
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#payload-error")).to_contain_text("payload: not valid JSON")
    expect(payload).to_have_attribute("aria-invalid", "true")
    assert page.url.endswith("/functions/report"), "refused before it was sent"
    assert len(served.engine.list_runs()) == before
    shoot(page, "function-run-now-refused")
    payload.fill("[1]")
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#payload-error")).to_contain_text("must be a JSON object")
    payload.fill('{"pages": 2}')
    expect(page.locator("#payload-error")).to_be_hidden()
    page.get_by_role("button", name="Run now").click()
    page.wait_for_url(re.compile(r"/runs/\w+$"))
    assert len(served.engine.list_runs()) == before + 1


def test_pause_needs_a_confirmation_then_run_now_is_disabled(served: Served, page: Page) -> None:
    page.goto(served.url + "/functions/report")
    page.get_by_role("link", name="Pause…").click()
    page.wait_for_url(re.compile(r"/functions/report/pause$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Pause function report?")
    expect(page.locator("#confirm-consequence")).to_contain_text("start no runs")
    assert not served.engine.operations.function("report").paused
    shoot(page, "function-pause-confirm")

    page.get_by_role("button", name="Pause report").click()
    page.wait_for_url(re.compile(r"/functions/report$"))
    assert served.engine.operations.function("report").paused
    expect(page.get_by_role("button", name="Run now")).to_be_disabled()
    page.get_by_role("link", name="Resume…").click()
    page.get_by_role("button", name="Resume report").click()
    page.wait_for_url(re.compile(r"/functions/report$"))
    expect(page.get_by_role("button", name="Run now")).to_be_enabled()


def test_workers_page_shows_runs_in_flight_the_dead_worker_and_new_ones_live(
    served: Served, store: Store, page: Page
) -> None:
    [leased] = store.leased_runs()
    page.goto(served.url + "/functions")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workers").click()
    page.wait_for_url(re.compile(r"/workers$"))

    live = page.locator("#worker-w-live")
    expect(live).to_contain_text("HEALTHY")
    expect(live).to_contain_text("1 busy, 3 free of 4")
    expect(live.get_by_role("link", name=leased.run_id)).to_have_attribute(
        "href", f"/runs/{leased.run_id}"
    )
    expect(page.locator("#worker-w-dead")).to_contain_text("DEAD")
    shoot(page, "workers")
    _phone(page, "workers")

    store.register_worker(worker("w-new", NOW, slots=8))
    expect(page.locator("#worker-w-new")).to_contain_text("0 busy, 8 free of 8")


def test_events_filter_by_prefix_show_previews_and_arrive_live(
    served: Served, store: Store, page: Page
) -> None:
    page.goto(served.url + "/events")
    page.get_by_label("Name starts with").fill("shop/")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"/events\?prefix=shop%2F$"))

    rows = page.locator("#events-rows tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text('{"order": 2}')
    expect(rows.nth(1).locator(".payload-preview")).to_contain_text("…")
    shoot(page, "events-prefix")

    later = NOW + timedelta(seconds=1)
    event = build_event({"name": "shop/order.shipped", "data": {"order": 3}}, now=later)
    store.ingest_events(
        [event, build_event({"name": "stock/x", "data": {}}, now=later)], Routing(), later
    )
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("shop/order.shipped")
    expect(rows.first).to_contain_text('{"order": 3}')


def test_a_running_engines_worker_shows_its_run_in_flight_until_it_ends(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], page: Page
) -> None:
    gate = threading.Event()
    app = stepline.App("gated")

    @app.function(id="gated", retries=0)
    def gated(ctx: stepline.Context) -> None:
        ctx.step.run("wait", lambda: gate.wait(10))

    served = serve(make_engine(app))
    try:
        run_id = served.engine.invoke("gated")
        page.goto(served.url + "/workers")
        row = page.locator(f'[id="worker-{served.engine.worker.id}"]')
        expect(row).to_contain_text("HEALTHY")
        expect(row.get_by_role("link", name=run_id)).to_be_visible()  # live, without a reload
        expect(row).to_contain_text("1 busy, 7 free of 8")
    finally:
        gate.set()
    expect(row.get_by_role("link", name=run_id)).to_have_count(0)
    expect(row).to_contain_text("0 busy, 8 free of 8")


def test_send_event_and_a_cards_run_now_refuse_bad_json_before_sending(
    served: Served, page: Page
) -> None:
    before = len(served.engine.operations.store.list_events(None, 100, None))
    page.goto(served.url + "/events")
    page.get_by_label("Name", exact=True).fill("shop/order.paid")
    page.get_by_label("Data").fill('{"order": ')
    page.get_by_role("button", name="Send event").click()
    expect(page.locator("#event-data-error")).to_contain_text("data: not valid JSON")
    assert len(served.engine.operations.store.list_events(None, 100, None)) == before

    page.goto(served.url + "/functions")
    card = page.locator("#function-report")
    card.get_by_label("Payload").fill("[]")
    card.get_by_role("button", name="Run now").click()
    expect(card.get_by_role("alert")).to_have_text(
        'payload: must be a JSON object, like {"key": "value"}'
    )
    assert page.url.endswith("/functions"), "nothing was posted"
