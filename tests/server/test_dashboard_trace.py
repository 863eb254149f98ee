"""The run page's trace in Chromium, on both stores: a run with a retried step, a sleep and
parallel branches shows every attempt, the backoff between them, the sleep and the branches as
spans of their own rows, in the order they ran; a bar opens its attempt's panel; the trigger's
payload is on the page; nothing overflows a 390 px phone."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.events import new_id
from stepline.engine.routing import Routing
from stepline.sdk.step import Step
from stepline.store.base import NewRun, Store
from tests.engine.support import drive, parked, start
from tests.server.conftest import Served, shoot

pytestmark = pytest.mark.timeout(60)
EVENT = "trace/sync"


def _app() -> stepline.App:
    app = stepline.App("trace")
    tries = {"upload": 0}

    def upload() -> str:
        tries["upload"] += 1
        if tries["upload"] < 3:
            raise stepline.RetryAfterError(f"vendor said 429 (try {tries['upload']})", delay=30)
        return "uploaded"

    @app.function(id="sync", triggers=[stepline.event(EVENT)], retries=3)
    def sync(ctx: stepline.Context[Step]) -> str:
        ctx.step.run("fetch", lambda: 12)
        ctx.step.run("upload", upload)
        ctx.step.sleep("cool-down", "1h")
        ctx.step.parallel(
            "regions",
            [
                lambda: ctx.step.run("north", lambda: "n"),
                lambda: ctx.step.run("south", lambda: "s"),
            ],
        )
        return ctx.step.run("report", lambda: "done")

    return app


def test_the_trace_shows_attempts_backoff_sleep_and_branches(
    make_engine: Callable[..., Engine],
    serve: Callable[..., Served],
    clock: FakeClock,
    page: Page,
) -> None:
    served = serve(make_engine(_app()))
    run = drive(served.engine, clock, start(served.engine, EVENT, {"region": "eu", "rows": 12}))
    assert run.status == "COMPLETED", run.error

    page.goto(f"{served.url}/runs/{run.id}")

    labels = page.locator(".trace-label")
    expect(labels).to_have_text(
        [
            "run",
            "fetch",
            "upload",
            "cool-down",
            "regions",
            "regions[0]",
            "north",
            "regions[1]",
            "south",
            "report",
        ]
    )
    upload = page.locator(".trace-row", has=page.locator(".trace-label", has_text="upload"))
    expect(upload.locator(".span-attempt-failed")).to_have_count(2)
    expect(upload.locator(".span-backoff")).to_have_count(2)
    expect(upload.locator(".span-attempt-ok")).to_have_count(1)
    sleep = page.locator(".trace-row", has=page.locator(".trace-label", has_text="cool-down"))
    expect(sleep.locator(".span-sleep")).to_have_count(1)
    expect(page.locator(".trace-row.indent-2")).to_have_count(2)
    expect(page.locator("#run-trigger")).to_contain_text(EVENT)
    expect(page.locator("#run-trigger .payload-preview")).to_have_text(
        '{"region": "eu", "rows": 12}'
    )

    upload.locator(".span-attempt-failed").nth(1).click()
    panel = page.locator(".trace-panel.selected")
    expect(panel).to_have_count(1)
    expect(panel).to_contain_text("attempt 2 failed")
    expect(panel).to_contain_text("vendor said 429 (try 2)")
    page.locator(".trace-label", has_text="north").click()
    expect(page.locator(".trace-panel.selected")).to_contain_text('"n"')
    expect(page.locator(".trace-panel.selected")).to_contain_text("Rerun from here")
    assert page.url.endswith(page.locator(".trace-panel.selected").get_attribute("id") or "?")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "run-trace")


def test_a_step_waiting_to_be_retried_shows_its_failed_attempt_and_the_backoff(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], page: Page
) -> None:
    served = serve(make_engine(_app()))
    run_id = start(served.engine, EVENT, {"region": "eu"})
    parked(served.engine, run_id, "RETRYING")

    page.goto(f"{served.url}/runs/{run_id}")

    upload = page.locator(".trace-row", has=page.locator(".trace-label", has_text="upload"))
    expect(upload.locator(".span-attempt-failed")).to_have_count(1)
    expect(upload.locator(".span-backoff")).to_have_count(1)
    expect(upload.locator(".trace-duration")).to_have_text("retrying")
    upload.locator(".trace-label").click()
    expect(page.locator(".trace-panel.selected")).to_contain_text("vendor said 429 (try 1)")


def test_the_step_executing_now_appears_live_and_ends_as_an_attempt(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], page: Page
) -> None:
    gate = threading.Event()
    app = stepline.App("trace")

    @app.function(id="slow", triggers=[stepline.event(EVENT)])
    def slow(ctx: stepline.Context[Step]) -> str:
        ctx.step.run("prepare", lambda: 1)
        return ctx.step.run("download", lambda: "done" if gate.wait(20) else "late")

    served = serve(make_engine(app))
    run_id = start(served.engine, EVENT)
    try:
        page.goto(f"{served.url}/runs/{run_id}")
        # The worker's heartbeat (a third of the 5 s lease) records the step in flight.
        download = page.locator(".trace-row", has=page.locator(".trace-label", has_text="download"))
        expect(download.locator(".span-in-flight")).to_have_count(1, timeout=8000)
        expect(download.locator(".trace-duration[data-since]")).to_have_count(1)
        expect(page.locator(".span-in-flight")).to_have_count(1)
        in_flight = served.http.get(f"/v1/runs/{run_id}").json()["data"]["in_flight"]
        assert in_flight["step_id"] == "download" and in_flight["since"].endswith("Z")
    finally:
        gate.set()
    expect(page.locator("#run-status")).to_have_text("COMPLETED")
    expect(page.locator(".span-in-flight")).to_have_count(0)
    expect(download.locator(".span-attempt-ok")).to_have_count(1)
    assert served.http.get(f"/v1/runs/{run_id}").json()["data"]["in_flight"] is None


def test_a_run_taken_over_from_a_lost_worker_marks_the_gap(
    store: Store,
    clock: FakeClock,
    make_engine: Callable[..., Engine],
    serve: Callable[..., Served],
    page: Page,
) -> None:
    app = stepline.App("trace")

    @app.function(id="steady", triggers=[stepline.event(EVENT)])
    def steady(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("only", lambda: "done")

    # A worker leased the run, then went silent; a minute later this engine's worker takes over.
    run = NewRun(id=new_id(), function_id="steady", trigger_kind="manual")
    run_id = store.create_run(run, [], clock.now(), Routing())
    assert store.claim_runs("w-gone", 1, clock.now(), 5.0, ["steady"])
    clock.advance(60)
    served = serve(make_engine(app))
    assert served.engine.wait_for_run(run_id, 10).status == "COMPLETED"

    page.goto(f"{served.url}/runs/{run_id}")

    run_row = page.locator(".trace-row").first
    expect(run_row.locator(".span-takeover")).to_have_count(1)
    run_row.locator(".span-takeover").click()
    panel = page.locator(".trace-panel.selected")
    expect(panel).to_contain_text("Worker lost")
    expect(panel).to_contain_text(
        "Worker w-gone stopped renewing its lease (it expired 55.0s before)"
    )
    expect(panel).to_contain_text("1m00s")  # the quiet from the claim to the takeover
    expect(page.locator("#run-logs")).to_contain_text("w-gone stopped renewing its lease")
