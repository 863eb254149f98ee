"""Risky actions in the dashboard ask first and keep an optional reason: Cancel on the run page,
bulk cancel and replay, Pause; a post without the confirmation does nothing but ask; a reason
over 500 characters is refused with the text kept; a replay a busy singleton refuses is said
on the run page (409), not on an error page. Plain HTTP, no JavaScript (both stores)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import httpx
import pytest

from stepline.engine.engine import Engine
from tests.server.conftest import Served
from tests.server.reasons_support import LONG_REASON, holding_app, sleeping_run

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(holding_app()))


def _html(response: httpx.Response, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def _post(served: Served, path: str, data: dict[str, str]) -> httpx.Response:
    return served.http.post(path, data=data, headers=FORM)


def _text(page: str) -> str:
    """The page's text, tags dropped and spaces folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _hidden_fields(page: str) -> dict[str, str]:
    form = re.search(r'<form class="bulk-confirm".*?</form>', page, re.S)
    assert form is not None, "no confirmation form"
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form[0]))


def test_cancel_asks_first_and_a_bare_post_cancels_nothing(served: Served) -> None:
    run_id = sleeping_run(served.engine)
    run_page = _html(served.http.get(f"/runs/{run_id}"))
    assert f'href="/runs/{run_id}/cancel"' in run_page and "Cancel run…" in run_page

    asked = _html(served.http.get(f"/runs/{run_id}/cancel"))
    bare = _html(_post(served, f"/runs/{run_id}/cancel", {}))

    assert f"Cancel run {run_id} of hold?" in asked
    assert 'name="reason"' in asked and 'name="confirmed" value="true"' in asked
    assert f"Cancel run {run_id} of hold?" in bare, "a post without confirmation only asks"
    assert served.engine.store.get_run(run_id).status == "RUNNING"


def test_a_confirmed_cancel_keeps_its_reason_and_the_run_page_shows_it(served: Served) -> None:
    run_id = sleeping_run(served.engine)

    done = _post(
        served, f"/runs/{run_id}/cancel", {"confirmed": "true", "reason": "  vendor outage "}
    )

    assert done.status_code == 303 and done.headers["location"] == f"/runs/{run_id}"
    run = served.engine.store.get_run(run_id)
    assert (run.status, run.cancel_requested_by, run.cancel_reason) == (
        "CANCELLED",
        "dashboard",
        "vendor outage",
    )
    shown = _text(_html(served.http.get(f"/runs/{run_id}")))
    assert "Cancelled by request (dashboard)," in shown
    assert "“vendor outage”" in shown or ": vendor outage" in shown
    assert "Cancel run…" not in shown
    ended = _text(_html(served.http.get(f"/runs/{run_id}/cancel")))
    assert "has ended (CANCELLED): there is nothing to cancel" in ended


def test_a_cancel_reason_too_long_is_refused_with_the_text_kept(served: Served) -> None:
    run_id = sleeping_run(served.engine)

    refused = _html(
        _post(served, f"/runs/{run_id}/cancel", {"confirmed": "true", "reason": LONG_REASON}),
        400,
    )

    assert "reason: must be at most 500 characters (got 501)" in refused
    assert f">{LONG_REASON}</textarea>" in refused
    assert served.engine.store.get_run(run_id).status == "RUNNING"


def test_a_replay_refused_by_a_busy_singleton_is_said_on_the_run_page(served: Served) -> None:
    run_id = sleeping_run(served.engine)

    refused = _html(_post(served, f"/runs/{run_id}/replay", {}), 409)

    assert 'id="run-action-error"' in refused and 'role="alert"' in refused
    assert f"singleton: run {run_id} is still active" in refused
    assert f"Run {run_id}" in refused  # the run page, not the error page
    assert len(served.engine.list_runs()) == 1


def test_pause_asks_for_a_reason_and_the_function_pages_show_it(served: Served) -> None:
    asked = _html(served.http.get("/functions/hold/pause"))
    bare = _html(_post(served, "/functions/hold/pause", {}))
    assert 'name="reason"' in asked and "Pause function hold?" in bare
    assert served.engine.store.list_functions()[0].paused is False, "a bare post only asks"

    done = _post(served, "/functions/hold/pause", {"confirmed": "true", "reason": "vendor outage"})

    assert done.status_code == 303 and done.headers["location"] == "/functions/hold"
    for path in ("/functions/hold", "/functions"):
        page = _html(served.http.get(path))
        shown = _text(page)
        when = r"paused \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by dashboard: vendor outage"
        assert re.search(when, shown, re.I), (path, shown)
        assert re.search(r"<button type=\"submit\" disabled[^>]*>Run now</button>", page), path
    too_long = {"confirmed": "true", "reason": LONG_REASON}
    assert _post(served, "/functions/hold/resume", {}).status_code == 200  # asks
    assert _post(served, "/functions/hold/resume", too_long).status_code == 303  # no reason box
    assert "vendor outage" not in _html(served.http.get("/functions/hold"))
    refused = _html(_post(served, "/functions/hold/pause", too_long), 400)
    assert "reason: must be at most 500 characters" in refused
    assert served.engine.store.list_functions()[0].paused is False


def test_bulk_cancel_and_replay_keep_the_reason_given_on_their_confirmation(
    served: Served,
) -> None:
    runs = [sleeping_run(served.engine, key) for key in ("a", "b")]
    preview = _html(served.http.get("/runs/cancel", params={"function_id": "hold"}))
    fields = _hidden_fields(preview)
    assert 'name="reason"' in preview

    refused = _post(served, "/runs/cancel", {**fields, "reason": LONG_REASON})
    done = _post(served, "/runs/cancel", {**fields, "reason": "bad deploy"})

    assert "reason: must be at most 500 characters" in _html(refused, 400)
    assert done.status_code == 303, done.text
    for run_id in runs:
        run = served.engine.store.get_run(run_id)
        assert (run.cancel_requested_by, run.cancel_reason) == ("dashboard", "bad deploy")
    replay_fields = _hidden_fields(
        _html(served.http.get("/runs/replay", params={"function_id": "hold"}))
    )
    replayed = _post(served, "/runs/replay", {**replay_fields, "reason": "deploy fixed"})
    assert replayed.status_code == 303, replayed.text
    new_runs = [r for r in served.engine.list_runs() if r.replay_of is not None]
    assert [r.trigger_reason for r in new_runs] == ["deploy fixed", "deploy fixed"]
    shown = _text(_html(served.http.get(f"/runs/{new_runs[0].id}")))
    assert "deploy fixed" in shown


def test_a_rerun_from_the_editor_keeps_its_reason(served: Served) -> None:
    run_id = sleeping_run(served.engine)
    _post(served, f"/runs/{run_id}/cancel", {"confirmed": "true"})

    done = _post(
        served,
        f"/runs/{run_id}/rerun",
        {"payload": '{"key": "b"}', "from_step": "", "reason": "with key b"},
    )

    assert done.status_code == 303, done.text
    new_id = done.headers["location"].removeprefix("/runs/")
    assert served.engine.store.get_run(new_id).trigger_reason == "with key b"
    assert "with key b" in _text(_html(served.http.get(f"/runs/{new_id}")))


def test_a_bulk_replay_that_a_busy_singleton_refuses_says_so_on_the_runs_page(
    served: Served,
) -> None:
    active = sleeping_run(served.engine, "a")
    fields = _hidden_fields(_html(served.http.get("/runs/replay", params={"function_id": "hold"})))

    done = _post(served, "/runs/replay", fields)

    assert done.status_code == 303, done.text
    assert "skipped=1" in done.headers["location"]
    notice = _text(_html(served.http.get(done.headers["location"])))
    assert "Replayed 1 run: 1 of the new runs skipped by flow control" in notice
    [replay] = [r for r in served.engine.list_runs() if r.replay_of == active]
    assert replay.status == "SKIPPED" and f"run {active} is still active" in (replay.reason or "")
