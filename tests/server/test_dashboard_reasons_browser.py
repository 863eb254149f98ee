"""Guarded actions in Chromium, on both stores: Cancel run… asks in a dialog (without
JavaScript, on its own page) and the run then says who cancelled it and why; a replay refused
by a busy singleton is said on the run page; Pause… keeps its reason and disables Run now; a
bulk cancel keeps the reason typed on its confirmation. Screenshots: test-output/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from stepline.engine.engine import Engine
from tests.server.conftest import SCREENSHOTS, Served, shoot
from tests.server.reasons_support import holding_app, sleeping_run
from tests.server.test_dashboard_accessibility import _violations

pytestmark = pytest.mark.timeout(40)


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(holding_app()))


@pytest.fixture
def no_js_page(browser: Browser, served: Served) -> Iterator[Page]:
    """A tab with JavaScript off: every action must work as plain pages and forms."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=False
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_cancel_asks_in_a_dialog_then_the_run_says_who_cancelled_it_and_why(
    served: Served, page: Page
) -> None:
    run_id = sleeping_run(served.engine)
    page.goto(f"{served.url}/runs/{run_id}")
    page.get_by_role("link", name="Cancel run…").click()
    dialog = page.get_by_role("dialog", name=f"Cancel run {run_id} of hold?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("link", name="Back").click()
    expect(dialog).to_have_count(0)
    assert served.engine.store.get_run(run_id).status == "RUNNING", "Back cancels nothing"
    page.get_by_role("link", name="Cancel run…").click()
    expect(dialog.get_by_label("Reason")).to_be_focused()
    dialog.get_by_label("Reason").fill("vendor outage")
    page.screenshot(path=str(SCREENSHOTS / "run-cancel-dialog-1280.png"))
    assert _violations(page) == [], "axe-core, WCAG 2.1 A/AA, with the dialog open"

    dialog.get_by_role("button", name="Cancel run").click()

    expect(page.locator("#run-status")).to_have_text("CANCELLED")
    assert page.url == f"{served.url}/runs/{run_id}"
    expect(page.locator("#run-cancellation")).to_contain_text("by request (dashboard), ")
    expect(page.locator("#run-cancellation q")).to_have_text("vendor outage")
    expect(page.get_by_role("link", name="Cancel run…")).to_have_count(0)
    shoot(page, "run-cancelled-with-reason")


def test_cancel_asks_on_its_own_page_without_javascript(served: Served, no_js_page: Page) -> None:
    page, run_id = no_js_page, sleeping_run(served.engine)
    page.goto(f"{served.url}/runs/{run_id}")
    page.get_by_role("link", name="Cancel run…").click()
    page.wait_for_url(f"{served.url}/runs/{run_id}/cancel")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Cancel run {run_id} of hold?")
    page.get_by_label("Reason").fill("no script needed")
    shoot(page, "run-cancel-confirm")

    page.get_by_role("button", name="Cancel run").click()

    page.wait_for_url(f"{served.url}/runs/{run_id}")
    expect(page.locator("#run-cancellation q")).to_have_text("no script needed")
    assert served.engine.store.get_run(run_id).cancel_requested_by == "dashboard"


def test_a_replay_refused_by_a_busy_singleton_is_said_on_the_run_page(
    served: Served, page: Page
) -> None:
    run_id = sleeping_run(served.engine)
    page.goto(f"{served.url}/runs/{run_id}")

    page.get_by_role("button", name="Replay").click()

    alert = page.locator("#run-action-error")
    expect(alert).to_contain_text(f"singleton: run {run_id} is still active")
    expect(alert.get_by_role("link")).to_have_attribute("href", f"/runs/{run_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(run_id)
    shoot(page, "run-replay-refused")


def test_pause_keeps_its_reason_and_disables_run_now(served: Served, page: Page) -> None:
    page.goto(f"{served.url}/functions/hold")
    page.get_by_role("link", name="Pause…").click()
    page.get_by_label("Reason").fill("vendor outage")
    shoot(page, "function-pause-confirm")
    page.get_by_role("button", name="Pause hold").click()

    page.wait_for_url(f"{served.url}/functions/hold")
    expect(page.locator("#function-state")).to_contain_text(re.compile(r"paused .+ by dashboard"))
    expect(page.locator("#function-state")).to_contain_text("by dashboard")
    expect(page.locator("#function-state q")).to_have_text("vendor outage")
    expect(page.get_by_role("button", name="Run now")).to_be_disabled()
    shoot(page, "function-paused-with-reason")
    page.goto(f"{served.url}/functions")
    expect(page.locator(".pause-state q")).to_have_text("vendor outage")
    expect(page.get_by_role("button", name="Run now")).to_be_disabled()


def test_bulk_cancel_keeps_the_reason_typed_on_its_confirmation(served: Served, page: Page) -> None:
    runs = [sleeping_run(served.engine, key) for key in ("a", "b")]
    page.goto(f"{served.url}/runs/cancel?function_id=hold")
    page.get_by_label("Reason").fill("bad deploy")

    page.get_by_role("button", name="Cancel 2 runs").click()

    page.wait_for_url(re.compile(r"/runs\?.*cancelled=2"))
    page.goto(f"{served.url}/runs/{runs[0]}")
    expect(page.locator("#run-cancellation q")).to_have_text("bad deploy")
