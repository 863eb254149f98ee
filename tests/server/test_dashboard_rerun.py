"""Reruns from the run page: "Rerun from here" on a step and "Replay with edited payload" start a
linked run and go to it; a refused rerun shows the page again with the reason and the text kept
(both stores; over HTTP and in Chromium)."""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlencode

from playwright.sync_api import Page, expect

from stepline.engine.engine import Engine
from stepline.store.base import RunFilter
from tests.cases.test_rerun import EVENT, pipeline_app
from tests.engine.support import start
from tests.server.conftest import Served

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _served(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], calls: Counter[str]
) -> tuple[Served, str]:
    served = serve(make_engine(pipeline_app(calls, set())))
    original = served.engine.wait_for_run(start(served.engine, EVENT, {"n": 1}), 10)
    return served, original.id


def _post(served: Served, run_id: str, fields: dict[str, str]) -> tuple[int, str]:
    response = served.http.post(
        f"/runs/{run_id}/rerun",
        content=urlencode(fields),
        headers={**FORM, "origin": served.url},
    )
    return response.status_code, response.headers.get("location", html.unescape(response.text))


def test_rerun_from_a_step_button_reuses_the_earlier_steps(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    calls: Counter[str] = Counter()
    served, run_id = _served(make_engine, serve, calls)
    page = served.http.get(f"/runs/{run_id}").text
    assert page.count("Rerun from here") == 3
    assert 'name="from_step" value="transform"' in page

    status, location = _post(served, run_id, {"from_step": "transform"})

    assert status == 303
    rerun = served.engine.wait_for_run(location.rsplit("/", 1)[1], 10)
    assert (rerun.trigger_kind, rerun.replay_of, rerun.status) == ("rerun", run_id, "COMPLETED")
    assert calls == Counter({"fetch": 1, "transform": 2, "load": 2})
    assert rerun.event_ids == served.engine.store.get_run(run_id).event_ids, "same event"
    rerun_page = served.http.get(location).text
    assert "Rerun of</dt>" in rerun_page and f"/runs/{run_id}" in rerun_page


def test_the_editor_reruns_with_edited_data_and_unchanged_data_is_not_edited(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served, run_id = _served(make_engine, serve, Counter())
    page = html.unescape(served.http.get(f"/runs/{run_id}").text)
    assert "Replay with edited payload" in page
    assert '"n": 1' in page, "the box holds the original event's data"

    edited = _post(served, run_id, {"payload": '{"n": 5}', "from_step": "", "dry_run": "true"})
    same = _post(served, run_id, {"payload": '{\n  "n": 1\n}', "from_step": "load"})

    edited_run = served.engine.wait_for_run(edited[1].rsplit("/", 1)[1], 10)
    same_run = served.engine.wait_for_run(same[1].rsplit("/", 1)[1], 10)
    assert json.loads(edited_run.output or "")["loaded"] == "10 for 5"
    assert edited_run.dry_run
    assert same_run.event_ids == served.engine.store.get_run(run_id).event_ids
    assert not same_run.dry_run
    [note] = [log.message for log in served.engine.get_run(same_run.id).logs[:1]]
    assert not note.endswith("event data edited")


def test_a_refused_rerun_shows_the_reason_and_keeps_the_text(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served, run_id = _served(make_engine, serve, Counter())

    bad_json = _post(served, run_id, {"payload": '{"n": ', "from_step": "load"})
    served.engine.operations.pause("sync")
    paused = _post(served, run_id, {"from_step": "load"})

    assert bad_json[0] == 400
    assert 'role="alert">payload: not valid JSON' in bad_json[1]
    assert '{"n": </textarea>' in bad_json[1]
    assert '<option value="load" selected>' in bad_json[1]
    assert '<details id="rerun-editor" open>' in bad_json[1]
    assert paused[0] == 409
    assert "is paused" in paused[1]
    runs = served.engine.operations.list_runs(RunFilter(function_id="sync"))
    assert [r.id for r in runs] == [run_id], "nothing was started"


def test_rerun_from_a_step_and_with_an_edited_payload_in_the_browser(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], page: Page
) -> None:
    calls: Counter[str] = Counter()
    served, run_id = _served(make_engine, serve, calls)

    page.goto(f"{served.url}/runs/{run_id}")
    page.locator(".trace-label", has_text="transform").click()
    page.locator(".trace-panel.selected").get_by_role("button", name="Rerun from here").click()
    expect(page.locator("#run-status")).to_have_text("COMPLETED")
    expect(page.locator("#run-summary")).to_contain_text("Rerun of")
    expect(page.locator("#run-logs")).to_contain_text("reused 1 earlier step(s): 'fetch'")
    assert calls["fetch"] == 1

    page.goto(f"{served.url}/runs/{run_id}")
    page.get_by_role("link", name="Rerun with edits…").click()
    expect(page.get_by_label("Event data")).to_be_visible()
    page.get_by_label("Event data").fill('{"n": 3}')
    page.get_by_label("Start from").select_option("load")
    page.get_by_role("button", name="Rerun", exact=True).click()
    expect(page.locator("#run-status")).to_have_text("COMPLETED")
    expect(page.locator("#run-outcome")).to_contain_text("2 for 3")
    expect(page.locator("#run-logs")).to_contain_text("event data edited")
    assert calls == Counter({"fetch": 1, "transform": 2, "load": 3})
