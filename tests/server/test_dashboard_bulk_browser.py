"""Bulk replay in Chromium, on both stores: filter the runs page by status, error class and
"last 24 hours", preview what "Replay matching runs…" would touch, confirm, read the notice
and follow it to the new replays. Screenshots at 1280 px and 360 px go to
test-output/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from stepline.engine.engine import Engine
from tests.server.conftest import Served, shoot
from tests.server.test_dashboard_bulk import _app, _runs

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(_app()))


def test_filter_preview_confirm_then_see_the_new_replays(served: Served, page: Page) -> None:
    runs = _runs(served, ["timeout", "value", "timeout", "ok", "timeout"])
    timeouts = [runs[4], runs[2], runs[0]]  # newest first
    page.goto(served.url + "/runs")
    expect(page.get_by_text("select them below, or set a filter")).to_be_visible()
    expect(page.get_by_role("link", name="Replay matching runs…")).to_have_count(0)

    page.get_by_label("Status").select_option("FAILED")
    page.get_by_label("Error class").fill("TimeoutError")
    page.locator("select[name=since]").select_option("24h")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"error_name=TimeoutError"))
    expect(page.locator("#runs-rows tr")).to_have_count(3)
    shoot(page, "runs-bulk-actions")
    page.get_by_role("link", name="Replay matching runs…").click()

    expect(page.get_by_role("heading", name="Replay matching runs", level=1)).to_be_visible()
    expect(page.locator(".criteria li")).to_have_text(
        ["status FAILED", "error class TimeoutError", re.compile(r"^created at or after ")]
    )
    expect(page.locator("#bulk-count")).to_have_text(
        "3 runs would be replayed, each as a new run linked to its original."
    )
    sample = page.get_by_role("table", name="All 3")
    expect(sample.locator("tbody tr")).to_have_count(3)
    expect(sample.locator("tbody tr td:nth-child(2) code")).to_have_text(timeouts)
    expect(sample.locator("tbody tr").first).to_contain_text("the vendor did not answer")
    assert len(served.engine.list_runs()) == len(runs)  # the preview touched nothing
    shoot(page, "runs-bulk-preview")

    page.get_by_role("button", name="Replay 3 runs").click()

    page.wait_for_url(re.compile(r"/runs\?.*replayed=3"))
    notice = page.locator("p.flash[role=status]")
    expect(notice).to_have_text("Replayed 3 runs. See the new replays")
    replays = [run for run in served.engine.list_runs() if run.replay_of is not None]
    assert sorted(run.replay_of or "" for run in replays) == sorted(timeouts)
    notice.get_by_role("link", name="See the new replays").click()
    page.wait_for_url(re.compile(r"trigger_kind=replay"))
    expect(page.locator("#runs-rows tr")).to_have_count(3)
    expect(page.locator("#runs-rows td[data-label=Trigger] .tag")).to_have_text(["replay"] * 3)
