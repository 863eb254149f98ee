"""The dashboard in Chromium: Run now, live progress over SSE, cancel, replay, events, runs.

Runs that must stay in flight while the test looks at them block in a step on a
`threading.Event` that the test sets; the engine's clock is fake, so sleeps never end by
themselves. Screenshots of every page at 1280 px and 360 px go to test-output/screenshots/.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.store.base import Store
from tests.server.conftest import SCREENSHOTS, Served, shoot

pytestmark = pytest.mark.timeout(15)


def _app(gate: threading.Event, clock: FakeClock) -> stepline.App:
    app = stepline.App("ui-test")

    def fetch(page: int) -> dict[str, int]:
        clock.advance(0.4 * page)  # so that the timeline has something to draw
        return {"page": page, "rows": 10}

    @app.function(id="stepper", name="Page through", triggers=[stepline.event("ui/step")])
    def stepper(ctx: Any) -> dict[str, Any]:
        pages = ctx.event["data"].get("pages", 3)
        for page in range(1, pages + 1):
            ctx.step.run(f"fetch-page-{page}", fetch, page)
            ctx.count("rows", 10)
            ctx.progress(page, pages, f"page {page} of {pages}")
            # Progress, counters and logs are saved with the next step's result.
            ctx.step.run(f"store-page-{page}", lambda: None)
            if page == 1:
                ctx.log.info("first page stored; waiting for the gate")
                ctx.step.run("wait-for-gate", lambda: gate.wait(10))
        return {"pages": pages}

    @app.function(
        id="nightly",
        triggers=[stepline.cron("0 0 * * *", tz="Africa/Johannesburg")],
        retries=0,
    )
    def nightly(ctx: Any) -> str:
        ctx.log.warning("nothing to do")
        return "ok"

    @app.function(id="flaky", retries=0)
    def flaky(ctx: Any) -> None:
        def explode() -> None:
            raise ValueError("the vendor said no")

        ctx.log.error("about to call the vendor")
        ctx.step.run("call-vendor", explode)

    @app.function(id="napper")
    def napper(ctx: Any) -> str:
        ctx.step.sleep("nap", "1h")
        return "rested"

    return app


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a worker blocked


@pytest.fixture
def served(
    make_engine: Callable[..., Engine],
    serve: Callable[..., Served],
    gate: threading.Event,
    clock: FakeClock,
) -> Served:
    return serve(make_engine(_app(gate, clock)))


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_run_now_lands_on_the_run_page_which_completes_live(
    served: Served, page: Page, gate: threading.Event
) -> None:
    page.goto(served.url + "/")
    card = page.locator("#function-stepper")
    card.get_by_label("Payload").fill('{"pages": 3}')
    card.get_by_role("button", name="Run now").click()
    page.wait_for_url(re.compile(r"/runs/\w+$"))
    status = page.locator("#run-status")
    expect(status).to_have_text("RUNNING")
    expect(page.locator("#run-progress-message")).to_have_text("page 1 of 3")
    expect(page.locator("#run-percent")).to_have_text("33.3%")
    # 0.4 s (fake) for the first of three pages: two more take about 0.8 s.
    expect(page.locator("#run-eta")).to_have_text("about 800ms left")
    page.evaluate("window.__notReloaded = true")

    gate.set()
    expect(status).to_have_text("COMPLETED")
    assert page.evaluate("window.__notReloaded") is True, "the page reloaded"
    expect(page.locator("#run-percent")).to_have_text("100%")
    expect(page.locator("#run-counters")).to_contain_text("30")
    expect(page.get_by_role("link", name="Cancel run…")).to_have_count(0)
    expect(page.locator(".trace-row")).to_have_count(8)  # the run and its seven steps
    page.locator(".trace-label", has_text="fetch-page-3").click()
    panel = page.locator("#panel-" + _hash_prefix(served, "fetch-page-3"))
    expect(panel).to_be_visible()
    expect(panel).to_contain_text('"page": 3')
    expect(page.locator("#run-outcome")).to_contain_text('"pages": 3')
    expect(page.locator("#run-logs")).to_contain_text("waiting for the gate")
    # Times read "N s ago" (from the server's clock), with the exact time in the viewer's zone
    # (Johannesburg, UTC+2) and in UTC on hover.
    created = page.locator("#run-summary time").first
    expect(created).to_have_text(re.compile(r"^(now|\d+ s ago)$"))
    expect(created).to_have_attribute("title", re.compile(r"GMT\+2 \(\d{4}-\d\d-\d\d .* UTC\)$"))


def _hash_prefix(served: Served, step_id: str) -> str:
    [run] = served.engine.list_runs()
    steps = served.engine.get_run(run.id).steps
    return next(s.hash[:12] for s in steps if s.id == step_id)


def test_run_now_with_bad_json_shows_the_error_in_the_form(served: Served, page: Page) -> None:
    page.goto(served.url + "/functions")
    card = page.locator("#function-stepper")
    card.get_by_label("Payload").fill('{"pages": ')
    card.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("alert")).to_contain_text("payload: not valid JSON")
    expect(page.locator("#function-stepper textarea")).to_have_value('{"pages": ')


def test_cancel_a_sleeping_run_from_its_page(served: Served, page: Page, store: Store) -> None:
    run_id = served.engine.invoke("napper")
    _wait_for(lambda: store.get_run(run_id).detail == "SLEEPING", "the nap")
    page.goto(f"{served.url}/runs/{run_id}")
    expect(page.locator("#run-detail")).to_have_text("SLEEPING")
    expect(page.locator(".trace-row", has_text="nap").locator(".span-sleep")).to_have_count(1)
    page.get_by_role("link", name="Cancel run…").click()
    page.get_by_role("button", name="Cancel run").click()  # on the confirmation page
    expect(page.locator("#run-status")).to_have_text("CANCELLED")
    assert page.url.endswith(f"/runs/{run_id}")
    expect(page.get_by_role("link", name="Cancel run…")).to_have_count(0)
    assert store.get_run(run_id).status == "CANCELLED"


def test_replay_a_failed_run_from_its_page(served: Served, page: Page) -> None:
    run_id = served.engine.invoke("flaky")
    assert served.engine.wait_for_run(run_id, 10).status == "FAILED"
    page.goto(f"{served.url}/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_text("FAILED")
    error = page.locator("#run-outcome .error-box")
    expect(error).to_contain_text("ValueError: the vendor said no")
    traceback = error.locator("details")
    expect(traceback.locator("pre")).not_to_be_visible()
    traceback.locator("summary").click()
    expect(traceback.locator("pre")).to_contain_text("Traceback")
    expect(page.locator("#run-logs tr.log-error")).to_contain_text("about to call the vendor")

    page.get_by_role("button", name="Replay").click()
    page.wait_for_url(re.compile(r"/runs/(?!" + run_id + r")\w+$"))
    expect(page.get_by_role("link", name=run_id)).to_have_attribute("href", f"/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_text("FAILED")


def test_send_an_event_and_watch_its_run(served: Served, page: Page, gate: threading.Event) -> None:
    page.goto(served.url + "/events")
    page.locator("form.send-event").get_by_label("Name").fill("ui/step")
    page.get_by_label("Data").fill('{"pages": 2}')
    page.get_by_role("button", name="Send event").click()
    page.wait_for_url(re.compile(r"/events/\w+$"))
    expect(page.locator("h1")).to_have_text("ui/step")
    expect(page.locator("pre.json").first).to_contain_text('"pages": 2')
    row = page.locator("#runs-rows tr").first
    expect(row).to_contain_text("stepper")
    expect(row).to_contain_text("RUNNING")
    gate.set()
    expect(row).to_contain_text("COMPLETED")  # live, through the runs stream
    row.get_by_role("link").first.click()
    expect(page.locator("#run-status")).to_have_text("COMPLETED")

    page.goto(served.url + "/events?name=ui%2Fstep")
    expect(page.locator("table.events tbody tr")).to_have_count(1)


def test_runs_page_filters_pages_and_refreshes_live(
    served: Served, page: Page, gate: threading.Event
) -> None:
    gate.set()
    napper = served.engine.invoke("napper")
    stepper = [served.engine.invoke("stepper", {"pages": 1}) for _ in range(3)]
    for run_id in stepper:
        served.engine.wait_for_run(run_id, 10)
    page.goto(served.url + "/runs?limit=2")
    rows = page.locator("#runs-rows tr")
    expect(rows).to_have_count(2)
    page.get_by_role("link", name="Older →").click()
    expect(rows).to_have_count(2)
    expect(page.locator("#runs-rows")).to_contain_text(napper)
    assert "before=" in page.url
    expect(page.get_by_role("link", name="Older →")).to_have_count(0)
    page.get_by_role("link", name="← Newest").click()

    page.goto(served.url + "/runs")
    page.get_by_label("Function").select_option("stepper")
    page.get_by_label("Status").select_option("COMPLETED")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(3)
    assert "function_id=stepper" in page.url and "status=COMPLETED" in page.url
    page.get_by_label("Status").select_option("FAILED")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_text(["No runs."])

    page.goto(served.url + "/runs")
    expect(rows).to_have_count(4)
    fresh = served.engine.invoke("nightly")
    expect(page.locator("#runs-rows")).to_contain_text(fresh)  # no reload
    expect(rows).to_have_count(5)


def test_keyboard_users_can_skip_to_the_content(served: Served, page: Page) -> None:
    page.goto(served.url + "/runs")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_screenshots_of_every_page(
    served: Served, page: Page, gate: threading.Event, store: Store
) -> None:
    gate.set()
    [event_id] = served.engine.send({"name": "ui/step", "data": {"pages": 4}})
    _wait_for(lambda: bool(served.engine.list_runs()), "the event's run")
    [run] = served.engine.list_runs()
    served.engine.wait_for_run(run.id, 10)
    failed = served.engine.invoke("flaky")
    served.engine.wait_for_run(failed, 10)
    served.engine.invoke("nightly")

    page.goto(served.url + "/")
    shoot(page, "functions")
    page.goto(served.url + "/runs")
    shoot(page, "runs")
    page.goto(f"{served.url}/runs/{run.id}")
    expect(page.locator("#run-status")).to_have_text("COMPLETED")
    shoot(page, "run")
    page.goto(f"{served.url}/runs/{failed}")
    shoot(page, "run-failed")
    page.goto(served.url + "/events")
    shoot(page, "events")
    page.goto(f"{served.url}/events/{event_id}")
    shoot(page, "event")
    for name in ("functions", "runs", "run", "events", "event"):
        for width in (1280, 360):
            assert (SCREENSHOTS / f"{name}-{width}.png").stat().st_size > 0
