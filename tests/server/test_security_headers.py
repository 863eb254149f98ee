"""Security headers: every response is nosniff and not framable; HTML pages carry a Content
Security Policy that their own scripts and styles live within — in Chromium, on both stores,
no page of the dashboard reports a violation, and its scripts still work under the policy."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from tests.engine.support import drive, start
from tests.server.conftest import Served

pytestmark = pytest.mark.timeout(90)
EVENT = "headers/sync"
VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


def _app() -> stepline.App:
    app = stepline.App("headers")

    @app.function(id="sync", triggers=[stepline.event(EVENT)], retries=2)
    def sync(ctx: stepline.Context[Step]) -> str:
        ctx.step.run("fetch", lambda: {"rows": 3})
        ctx.step.sleep("pause", "1m")
        return "done"

    return app


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(_app()))


def test_pages_are_not_framable_or_sniffed_and_html_has_a_policy(served: Served) -> None:
    page = served.http.get("/functions")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "same-origin"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy and "script-src 'self' 'unsafe-inline'" not in policy
    api = served.http.get("/v1/runs")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers, "JSON needs no page policy"
    assert served.http.get("/static/dashboard.css").headers["x-frame-options"] == "DENY"


def test_no_page_breaks_the_policy_and_its_scripts_still_run(
    served: Served, clock: FakeClock, page: Page
) -> None:
    run = drive(served.engine, clock, start(served.engine, EVENT, {"region": "eu"}))
    assert run.status == "COMPLETED"
    page.add_init_script(VIOLATIONS)
    for path in ("/functions", "/functions/sync", "/runs", "/events", "/apps", "/workers"):
        page.goto(served.url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__violations") == [], path
    page.goto(f"{served.url}/runs/{run.id}")
    # trace.js opens a span's panel; times.js shows times in the viewer's zone.
    page.locator(".trace-label", has_text="fetch").click()
    expect(page.locator(".trace-panel.selected")).to_contain_text("Step fetch")
    expect(page.locator("time[data-local]").first).to_be_attached()
    assert page.evaluate("window.__violations") == []
