"""Every dashboard page passes axe-core's WCAG 2.1 A and AA rules in Chromium, in the light and
the dark colour scheme, on both stores: a run with retries, a sleep and branches (its trace and
an open panel), a failed run, a function, the runs and events lists, an event, apps, workers and the
confirmation pages of the risky actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from tests.engine.support import drive, start
from tests.server.conftest import Served

pytestmark = pytest.mark.timeout(120)
EVENT = "a11y/sync"
RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def _app() -> stepline.App:
    app = stepline.App("a11y")
    tries = {"upload": 0}

    def upload() -> str:
        tries["upload"] += 1
        if tries["upload"] < 2:
            raise stepline.RetryAfterError("vendor said 429", delay=30)
        return "uploaded"

    @app.function(id="sync", triggers=[stepline.event(EVENT)], retries=3)
    def sync(ctx: stepline.Context[Step]) -> str:
        ctx.step.run("fetch", lambda: {"rows": list(range(40))})
        ctx.step.run("upload", upload)
        ctx.step.sleep("cool-down", "1m")
        ctx.step.parallel(
            "regions",
            [lambda: ctx.step.run("north", lambda: 1), lambda: ctx.step.run("south", lambda: 2)],
        )
        ctx.log.warning("two regions done")
        return "done"

    @app.function(id="broken", triggers=[stepline.event("a11y/broken")], retries=0)
    def broken(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("parse", lambda: int("not a number"))

    return app


def _violations(page: Page) -> list[str]:
    """Each violated rule with the elements it found, as a reader of the test failure needs."""
    results: Any = Axe().run(page, options=RULES)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(str(node["target"]) for node in v["nodes"][:5])
        for v in results.response["violations"]
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_passes_axe_wcag_21_aa(
    make_engine: Callable[..., Engine],
    serve: Callable[..., Served],
    clock: FakeClock,
    browser: Browser,
    scheme: str,
) -> None:
    served = serve(make_engine(_app()))
    run = drive(served.engine, clock, start(served.engine, EVENT, {"region": "eu"}))
    assert run.status == "COMPLETED", run.error
    [event_id] = served.engine.send({"name": "a11y/other", "data": {"k": "v"}})
    failed = served.engine.wait_for_run(start(served.engine, "a11y/broken"), 10)
    assert failed.status == "FAILED"
    pages = [
        "/functions",
        "/functions/sync",
        "/runs",
        "/runs?status=COMPLETED&since=1h",
        f"/runs/{run.id}",
        f"/runs/{run.id}#panel-run",
        f"/runs/{failed.id}",
        "/events",
        f"/events/{event_id}",
        "/apps",
        "/workers",
        "/functions/sync/pause",
        "/runs/replay?status=COMPLETED",
        "/runs/nope",
    ]
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
        timezone_id="Africa/Johannesburg",
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        found = {}
        for path in pages:
            page.goto(served.url + path)
            page.wait_for_load_state("domcontentloaded")
            violations = _violations(page)
            if violations:
                found[path] = violations
    finally:
        context.close()
    assert found == {}, "\n".join(f"{p}:\n  " + "\n  ".join(v) for p, v in found.items())
