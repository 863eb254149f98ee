"""Bulk replay and cancel in the dashboard, over HTTP on both stores: the runs page offers them
once a filter is set; the preview (GET) touches nothing and shows the count and the newest runs;
Confirm acts on exactly the previewed count, or, when the selection changed since, does nothing
and says so; refusals (a paused function, too many runs, no filter) are shown in words."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from datetime import UTC, timedelta

import httpx
import pytest

import stepline
from stepline.engine import operations
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from stepline.server.auth import AuthSettings
from stepline.store.base import RunRecord
from tests.server.conftest import Served

pytestmark = pytest.mark.timeout(20)

EVENT = "bulk/work"
FORM = {"content-type": "application/x-www-form-urlencoded"}
FAILED_TIMEOUTS = {"status": "FAILED", "error_name": "TimeoutError"}


def _app() -> stepline.App:
    app = stepline.App("bulk-ui")

    @app.function(id="work", triggers=[stepline.event(EVENT)], retries=0)
    def work(ctx: stepline.Context[Step]) -> str:
        kind = ctx.event["data"].get("kind")
        if kind == "timeout":
            raise TimeoutError("the vendor did not answer")
        if kind == "value":
            raise ValueError("a broken record")
        if kind == "nap":
            ctx.step.sleep("nap", "1h")  # the clock is fake: the run stays active
        return "ok"

    return app


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(_app()))


def _runs(served: Served, kinds: list[str]) -> list[str]:
    """Start a run per kind; wait until each has ended, or is asleep for a "nap"."""
    ids = served.engine.send([{"name": EVENT, "data": {"kind": kind}} for kind in kinds])
    runs = [served.engine.operations.runs_for_event(event_id)[0].id for event_id in ids]
    for run_id, kind in zip(runs, kinds, strict=True):
        if kind == "nap":
            _wait_until_asleep(served, run_id)
        else:
            served.engine.wait_for_run(run_id, 10)
    return runs


def _run(served: Served, run_id: str) -> RunRecord:
    return served.engine.store.get_run(run_id)


def _wait_until_asleep(served: Served, run_id: str) -> None:
    deadline = time.monotonic() + 10
    while _run(served, run_id).detail != "SLEEPING":
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _snapshot(served: Served) -> list[tuple[str, str]]:
    return sorted((run.id, run.status) for run in served.engine.list_runs())


def _text(response: httpx.Response, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    return html.unescape(response.text)


def _confirm_fields(page: str) -> dict[str, str]:
    """The hidden fields of the preview's Confirm form."""
    form = re.search(r'<form class="bulk-confirm".*?</form>', page, re.S)
    assert form is not None, "no Confirm form"
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form[0]))


def _post(served: Served, path: str, data: dict[str, str], **headers: str) -> httpx.Response:
    return served.http.post(path, data=data, headers={**FORM, "origin": served.url, **headers})


def test_preview_touches_nothing_and_confirm_replays_exactly_the_previewed_runs(
    served: Served,
) -> None:
    runs = _runs(served, ["timeout", "value", "timeout", "ok", "timeout"])
    timeouts = {runs[0], runs[2], runs[4]}
    before = _snapshot(served)

    page = _text(served.http.get("/runs/replay", params=FAILED_TIMEOUTS))

    assert _snapshot(served) == before  # nothing touched
    assert "status FAILED" in page and "error class TimeoutError" in page
    assert "3 runs would be replayed" in page and "All 3" in page
    assert all(f'href="/runs/{run_id}"' in page for run_id in timeouts)
    assert runs[1] not in page and "TimeoutError: the vendor did not answer" in page
    fields = _confirm_fields(page)
    assert re.fullmatch(r"[0-9a-f]{32}", fields.pop("selection"))
    assert fields == {**FAILED_TIMEOUTS, "count": "3"}
    fields = _confirm_fields(page)
    assert ">Replay 3 runs</button>" in page and 'href="/runs?status=FAILED' in page

    done = _post(served, "/runs/replay", fields)

    assert done.status_code == 303, done.text
    location = done.headers["location"]
    assert location.startswith("/runs?status=FAILED&error_name=TimeoutError&replayed=3")
    replays = [run for run in served.engine.list_runs() if run.replay_of is not None]
    assert sorted(run.replay_of or "" for run in replays) == sorted(timeouts)
    after = _text(served.http.get(location))
    assert "Replayed 3 runs." in after
    link = re.search(r'<a href="([^"]+)">See the new replays</a>', after)
    assert link is not None
    listed = _text(served.http.get(link[1]))
    assert all(run.id in listed for run in replays)
    assert not any(f'class="run-link" href="/runs/{run_id}"' in listed for run_id in runs)


def test_a_selection_changed_since_the_preview_is_refused_with_a_notice(served: Served) -> None:
    _runs(served, ["timeout"])
    fields = _confirm_fields(_text(served.http.get("/runs/replay", params=FAILED_TIMEOUTS)))
    assert fields["count"] == "1"
    _runs(served, ["timeout"])  # one more failure since the preview
    before = _snapshot(served)

    refused = _post(served, "/runs/replay", fields)

    page = _text(refused, 409)
    assert "The selection changed since the preview: 2 runs match now, not 1." in page
    assert "Nothing was done" in page
    assert _snapshot(served) == before
    assert _confirm_fields(page)["count"] == "2"  # confirm again, knowing what it does
    assert _post(served, "/runs/replay", _confirm_fields(page)).status_code == 303
    assert len([r for r in served.engine.list_runs() if r.replay_of]) == 2


def test_other_runs_in_place_of_the_previewed_ones_are_refused_too(served: Served) -> None:
    first = _runs(served, ["nap"])[0]
    fields = _confirm_fields(_text(served.http.get("/runs/cancel", params={"function_id": "work"})))
    served.engine.operations.cancel(first)
    second = _runs(served, ["nap"])[0]  # still one active run, but not the one previewed

    refused = _text(_post(served, "/runs/cancel", fields), 409)

    assert "other runs match now in place of some of those 1" in refused
    assert _run(served, second).status != "CANCELLED"
    assert second in refused and f'href="/runs/{first}"' not in refused


def test_cancel_counts_and_cancels_only_active_runs(served: Served) -> None:
    runs = _runs(served, ["nap", "timeout", "nap", "ok"])
    napping = {runs[0], runs[2]}
    before = _snapshot(served)

    page = _text(served.http.get("/runs/cancel", params={"function_id": "work"}))

    assert _snapshot(served) == before
    assert "2 active runs would be cancelled" in page and "only active runs" in page
    assert all(run_id in page for run_id in napping)
    assert runs[1] not in page and runs[3] not in page
    fields = _confirm_fields(page)
    assert fields == {"function_id": "work", "count": "2", "selection": fields["selection"]}

    done = _post(served, "/runs/cancel", fields)

    assert done.status_code == 303
    assert done.headers["location"] == "/runs?function_id=work&cancelled=2"
    assert {run_id: _run(served, run_id).status for run_id in runs} == {
        runs[0]: "CANCELLED",
        runs[1]: "FAILED",
        runs[2]: "CANCELLED",
        runs[3]: "COMPLETED",
    }
    assert "Cancelled 2 runs." in _text(served.http.get(done.headers["location"]))
    nothing = _text(served.http.get("/runs/cancel", params={"function_id": "work"}))
    assert "No active runs match: nothing to cancel." in nothing
    assert 'class="bulk-confirm"' not in nothing


def test_without_a_filter_no_bulk_action_is_offered(served: Served) -> None:
    _runs(served, ["timeout"])

    bare = _text(served.http.get("/runs"))
    assert "select them below, or set a filter" in bare and "Replay matching runs" not in bare
    filtered = _text(served.http.get("/runs", params={"status": "FAILED"}))
    assert 'href="/runs/replay?status=FAILED"' in filtered
    assert 'href="/runs/cancel?status=FAILED"' in filtered
    assert "Replay matching runs…" in filtered and "Cancel matching active runs…" in filtered
    paged = _text(served.http.get("/runs", params={"limit": "1", "status": "FAILED"}))
    assert 'href="/runs/replay?status=FAILED"' in paged  # the page size is no criterion

    page = _text(served.http.get("/runs/replay"), 400)
    assert "Select runs or set at least one filter" in page
    assert 'class="bulk-confirm"' not in page
    before = _snapshot(served)
    assert _post(served, "/runs/replay", {"count": "1"}).status_code == 400
    assert _snapshot(served) == before


def test_a_paused_function_and_too_many_runs_are_said_in_words(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    _runs(served, ["timeout", "timeout"])
    served.engine.operations.pause("work")

    page = _text(served.http.get("/runs/replay", params=FAILED_TIMEOUTS), 409)
    assert (
        "Cannot replay these runs: function 'work' is paused; "
        "resume it before replaying its runs." in page
    )
    assert 'class="bulk-confirm"' not in page
    refused = _post(served, "/runs/replay", {**FAILED_TIMEOUTS, "count": "2"})
    assert "is paused" in _text(refused, 409)
    assert not [r for r in served.engine.list_runs() if r.replay_of]

    served.engine.operations.resume("work")
    monkeypatch.setattr(operations, "MAX_BULK_RUNS", 1)
    page = _text(served.http.get("/runs/replay", params=FAILED_TIMEOUTS), 400)
    assert "Cannot replay these runs: this filter matches more than 1 runs" in page


def test_since_selects_the_last_hours_and_the_preview_pins_the_time(served: Served) -> None:
    _runs(served, ["timeout"])
    now = served.engine.operations.clock.now().astimezone(UTC)

    page = _text(served.http.get("/runs", params={**FAILED_TIMEOUTS, "since": "2h"}))

    two_hours_ago = (now - timedelta(hours=2)).replace(microsecond=0)
    shown = two_hours_ago.replace(tzinfo=None).isoformat() + "Z"
    assert '<option value="2h" selected>Last 2h</option>' in page  # the page keeps it relative
    assert f"created_after={shown.replace(':', '%3A')}" in page  # the bulk links pin it
    preview = _text(served.http.get("/runs/replay", params={**FAILED_TIMEOUTS, "since": "2h"}))
    assert f"created at or after {two_hours_ago:%Y-%m-%d %H:%M:%S} UTC" in preview
    assert _confirm_fields(preview)["created_after"] == shown
    bad = _text(served.http.get("/runs", params={"since": "soon"}), 400)
    assert "since" in bad


def test_bulk_posts_are_guarded_like_the_other_forms(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = serve(make_engine(_app()), AuthSettings(api_token="s3cret-token-long"))
    _runs(served, ["timeout"])
    bearer = {"authorization": "Bearer s3cret-token-long"}

    preview = served.http.get("/runs/replay", params=FAILED_TIMEOUTS)
    assert preview.status_code == 303 and preview.headers["location"].startswith("/login?next=")
    fields = _confirm_fields(
        _text(served.http.get("/runs/replay", params=FAILED_TIMEOUTS, headers=bearer))
    )
    assert _post(served, "/runs/replay", fields).status_code == 401
    foreign = _post(served, "/runs/replay", fields, origin="https://evil.example", **bearer)
    assert foreign.status_code == 403
    assert not [r for r in served.engine.list_runs() if r.replay_of]
    assert _post(served, "/runs/replay", fields, **bearer).status_code == 303


def test_open_dashboard_refuses_cross_site_bulk_posts(served: Served) -> None:
    _runs(served, ["nap"])
    fields = {"function_id": "work", "count": "1"}
    refused = _post(served, "/runs/cancel", fields, origin="http://evil.example")
    assert refused.status_code == 403
    assert all(run.status != "CANCELLED" for run in served.engine.list_runs())
