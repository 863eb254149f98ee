"""Large outputs on the run page in Chromium, on both stores: the run's output and a step's panel
show the size and a Download link, never the data, and the download is the output's JSON.
Screenshots at 1280 px and 360 px go to test-output/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from stepline._sizes import format_size
from stepline.engine.engine import Engine
from tests.server.conftest import Served, shoot
from tests.server.large_outputs_support import (
    ROWS,
    SMALL_LIMITS,
    finished_report,
    large_outputs_app,
)

pytestmark = pytest.mark.timeout(60)


def test_the_run_page_shows_large_outputs_as_size_and_download(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], page: Page, tmp_path: Path
) -> None:
    engine = make_engine(large_outputs_app(), settings=SMALL_LIMITS)
    served = serve(engine)
    report = finished_report(engine)
    page.goto(f"{served.url}/runs/{report.run.id}")

    outcome = page.locator("#run-outcome")
    expect(outcome).to_contain_text(f"{format_size(report.result.size)} of JSON")
    expect(page.locator("body")).not_to_contain_text("row-00000")
    with page.expect_download() as result:
        outcome.get_by_role("link", name="Download").click()
    saved = tmp_path / "result.json"
    result.value.save_as(saved)
    assert saved.read_bytes() == engine.store.read_blob(report.result)
    assert result.value.suggested_filename == f"{report.run.id}-output.json"

    page.locator(".trace-label", has_text="make-rows").click()
    panel = page.locator(f"#panel-{report.step_hash[:12]}")
    expect(panel).to_be_visible()
    expect(panel.locator(".blob-size")).to_have_text(format_size(report.step.size))
    assert re.fullmatch(r"1\.\d MiB", format_size(report.step.size))
    shoot(page, "run-large-output")
    with page.expect_download() as step:
        panel.get_by_role("link", name="Download").click()
    step.value.save_as(saved)
    assert saved.read_bytes() == engine.store.read_blob(report.step)

    page.locator(".trace-label", has_text="note").click()
    note = page.locator(".trace-panel:visible")
    expect(note).to_contain_text(f'"rows": {ROWS}')  # a small output: shown as before
    expect(note.get_by_role("link", name="Download")).to_have_count(0)
