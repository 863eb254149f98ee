"""The dashboard in Chromium, on both stores, signed in with a named `read` token: every page
renders, live, with no action buttons and no Audit link; an admin's sign-in shows the Audit
page with both sign-ins. Screenshots: test-output/screenshots/dashboard-read-token-*."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

import stepline
from stepline.engine.engine import Engine
from stepline.server.auth import AuthSettings
from tests.server.conftest import Served, shoot

pytestmark = pytest.mark.timeout(60)

BOOTSTRAP = "bootstrap-token-0123456789"


def _app() -> stepline.App:
    app = stepline.App("browser-tokens")

    @app.function(id="report", triggers=[stepline.event("report/requested")], retries=0)
    def report(ctx: stepline.Context) -> Any:
        return ctx.step.run("build", lambda: {"rows": 3})

    return app


def _sign_in(page: Page, url: str, token: str) -> None:
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(url)


def test_a_read_token_sees_every_page_without_actions_and_an_admin_sees_the_audit(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], page: Page
) -> None:
    served = serve(make_engine(_app()), AuthSettings(api_token=BOOTSTRAP))
    admin = {"authorization": f"Bearer {BOOTSTRAP}"}
    created = served.http.post(
        "/v1/tokens", json={"name": "wallboard", "role": "read"}, headers=admin
    )
    reader = created.json()["data"]["secret"]
    run_id = served.http.post("/v1/functions/report/invoke", json={}, headers=admin)
    run_id = run_id.json()["data"]["run_id"]
    served.engine.operations.wait_for_run(run_id, 10)

    run_url = f"{served.url}/runs/{run_id}"
    page.goto(run_url)
    _sign_in(page, run_url, reader)

    expect(page.locator("#run-status")).to_have_text("COMPLETED")
    expect(page.get_by_role("button", name="Replay")).to_have_count(0)
    expect(page.get_by_role("link", name="Rerun with edits…")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit")).to_have_count(0)
    shoot(page, "dashboard-read-token-run")
    page.goto(f"{served.url}/functions/report")
    expect(page.get_by_role("heading", name="Last 24 hours")).to_be_visible()
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)
    page.goto(f"{served.url}/runs")
    expect(page.locator(f'a[href="/runs/{run_id}"]').first).to_be_visible()
    expect(page.get_by_role("button", name="Replay selected…")).to_have_count(0)
    page.goto(f"{served.url}/events")
    expect(page.get_by_role("button", name="Send event")).to_have_count(0)
    shoot(page, "dashboard-read-token-events")

    page.get_by_role("button", name="Sign out").click()
    _sign_in(page, f"{served.url}/", BOOTSTRAP)
    page.get_by_role("link", name="Audit").click()
    rows = page.locator("table.audit tbody tr")
    expect(rows.nth(0)).to_contain_text("dashboard:bootstrap")
    expect(rows.nth(1)).to_contain_text("dashboard:wallboard")
    expect(rows.nth(1)).to_contain_text("login")
    shoot(page, "dashboard-audit")
