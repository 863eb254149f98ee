"""The runs list says what ran, over HTTP on both stores: each row's event name and payload
preview (its longer text on hover), step count, failed attempts and badges (dry run, cron,
manual, replay linked to its original); filters kept in every link (a relative range stays
relative); times typed with an offset select in that zone, without one in UTC; runs selected
one by one go through the bulk preview and confirmation, as through the API's `run_ids`."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from stepline.server.dashboard_models import TITLE_CHARS
from tests.server.conftest import Served
from tests.server.test_dashboard_bulk import _confirm_fields, _post, _text

pytestmark = pytest.mark.timeout(30)

EVENT = "orders/placed"


def list_app() -> stepline.App:
    """ "orders": two steps, or a failing one for `fail`, or a long sleep for `nap`."""
    app = stepline.App("runs-list")

    @app.function(id="orders", triggers=[stepline.event(EVENT)], retries=0)
    def orders(ctx: stepline.Context[Step]) -> str:
        data = ctx.event["data"]
        ctx.step.run("reserve", lambda: "reserved")
        if data.get("fail"):
            ctx.step.run("charge", _decline)
        if data.get("nap"):
            ctx.step.sleep("nap", "1h")  # the clock is fake: the run stays active
        ctx.step.run("ship", lambda: "shipped")
        return "ok"

    @app.function(id="nightly", triggers=[stepline.cron("0 3 * * *")])
    def nightly(ctx: stepline.Context[Step]) -> None:
        return None

    return app


def _decline() -> None:
    raise ValueError("card declined")


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(list_app()))


def send(served: Served, data: dict[str, object]) -> str:
    """Send an order event; its run's id, once it ended (or sleeps, for a `nap`)."""
    (event_id,) = served.engine.send({"name": EVENT, "data": data})
    deadline = time.monotonic() + 10
    while not served.engine.operations.runs_for_event(event_id):
        assert time.monotonic() < deadline, "no run started"
        time.sleep(0.01)
    run_id = served.engine.operations.runs_for_event(event_id)[0].id
    settle(served, run_id)
    return run_id


def settle(served: Served, run_id: str) -> None:
    """Wait until the run ended or sleeps."""
    deadline = time.monotonic() + 10
    while True:
        run = served.engine.store.get_run(run_id)
        if run.ended or run.detail == "SLEEPING":
            return
        assert time.monotonic() < deadline, f"run {run_id} did not settle"
        time.sleep(0.01)


def row_of(page: str, run_id: str) -> str:
    """The runs table's line of one run."""
    found = re.search(rf'<tr class="run-row" data-href="/runs/{run_id}">.*?</tr>', page, re.S)
    assert found is not None, f"no row for {run_id}"
    return found[0]


def test_each_row_says_what_ran(served: Served) -> None:
    done = send(served, {"order": "A-1", "total": 12.5})
    failed = send(served, {"order": "B-2", "fail": True})
    replay = served.engine.replay(done)
    settle(served, replay)
    manual = served.engine.operations.invoke("orders", {"order": "M-3"}, dry_run=True)
    settle(served, manual)

    page = _text(served.http.get("/runs"))

    row = row_of(page, done)
    assert '<a class="event-name" href="/events/' in row and f">{EVENT}</a>" in row
    payload = '{"order": "A-1", "total": 12.5}'
    assert f'<code class="payload-preview" title="{payload}">{payload}</code>' in row
    assert "2 steps" in row and "failed attempt" not in row
    assert 'class="tag trigger-' not in row and "dry run" not in row
    row = row_of(page, failed)
    assert "2 steps" in row and '<span class="tag failed-attempts">1 failed attempt</span>' in row
    row = row_of(page, replay)
    assert f'<a class="tag trigger-replay" href="/runs/{done}" title="Replay of run {done}">' in row
    assert f">{EVENT}</a>" in row and '{"order": "A-1", "total": 12.5}' in row
    row = row_of(page, manual)
    assert '<span class="tag trigger-manual" title="Started manual">manual</span>' in row
    assert "stepline/function.invoked" not in row  # the internal event's name says nothing
    assert '{"order": "M-3"}' in row and '<span class="tag dry-run">dry run</span>' in row


def test_a_long_payload_is_previewed_from_its_start(served: Served) -> None:
    note = "Grüße 🚚 " * 600  # stored escaped, far longer than the store reads for a preview
    run_id = send(served, {"note": note, "order": "L-1"})

    row = row_of(served.http.get("/runs").text, run_id)  # escaped: quotes stay in attributes

    preview = re.search(r'<code class="payload-preview" title="([^"]*)">([^<]*)</code>', row)
    assert preview is not None
    title, shown = html.unescape(preview[1]), html.unescape(preview[2])
    assert shown.startswith('{"note": "Grüße 🚚 Grüße') and shown.endswith("…")
    assert len(shown) == 120 and len(title) == TITLE_CHARS and title.startswith(shown[:-1])


def test_filters_stay_in_every_link_and_a_range_stays_relative(served: Served) -> None:
    runs = [send(served, {"order": f"F-{n}"}) for n in range(3)]
    params = {
        "function_id": "orders",
        "status": "COMPLETED",
        "since": "1h",
        "q": "F-",
        "limit": "1",
    }

    page = _text(served.http.get("/runs", params=params))

    assert runs[2] in page and runs[1] not in page
    older = re.search(r'<a href="([^"]+)" rel="next">', page)
    assert older is not None
    assert parse_qs(urlsplit(older[1]).query) == {
        **{k: [v] for k, v in params.items()},
        "before": [runs[2]],
    }
    stream = re.search(r'sse-connect="([^"]+)"', page)
    assert stream is not None
    assert parse_qs(urlsplit(stream[1]).query) == {
        **{k: [v] for k, v in params.items()},
        "select": ["1"],
    }
    assert '<option value="1h" selected>Last hour</option>' in page
    second = _text(served.http.get(older[1]))
    assert runs[1] in second and '<option value="1h" selected>' in second
    newest = re.search(r'<a href="([^"]+)">← Newest</a>', second)
    assert newest is not None
    assert parse_qs(urlsplit(newest[1]).query) == {k: [v] for k, v in params.items()}
    bad = served.http.get("/runs", params={"since": "lately"})
    assert bad.status_code == 400 and "since" in bad.text


def test_times_with_an_offset_select_in_that_zone_and_links_keep_it(
    served: Served, clock: FakeClock
) -> None:
    early = send(served, {"order": "T-1"})  # 2026-01-01 00:00 UTC
    clock.advance(timedelta(hours=2))
    late = send(served, {"order": "T-2"})  # 02:00 UTC

    # 03:00 at +02:00 is 01:00 UTC: only the later run
    page = _text(served.http.get("/runs", params={"created_after": "2026-01-01T03:00:00+02:00"}))

    assert late in page and early not in page
    assert 'name="created_after" value="2026-01-01T01:00:00"' in page  # UTC without script
    assert "created_after=2026-01-01T03%3A00%3A00%2B02%3A00" in page  # the links keep the offset
    naive = _text(served.http.get("/runs", params={"created_before": "2026-01-01T01:00"}))
    assert early in naive and late not in naive  # no offset: UTC
    assert 'Created from (<span class="tz-zone">UTC</span>)' in naive


def test_runs_selected_one_by_one_are_previewed_then_cancelled(served: Served) -> None:
    naps = [send(served, {"order": f"N-{n}", "nap": True}) for n in range(3)]
    ended = send(served, {"order": "E-1"})
    chosen = [naps[0], naps[2], ended]

    preview = _text(
        served.http.get("/runs/cancel", params=[("run_id", run_id) for run_id in chosen])
    )

    assert "Cancel selected active runs" in preview
    assert "3 runs selected on the runs page" in preview
    assert "2 active runs would be cancelled." in preview
    fields = _confirm_fields(preview)
    assert fields["run_ids"] == ",".join(chosen)
    done = _post(served, "/runs/cancel", fields)
    assert done.status_code == 303, done.text
    statuses = {run.id: run.status for run in served.engine.list_runs()}
    assert [statuses[run_id] == "CANCELLED" for run_id in naps] == [True, False, True]
    assert statuses[ended] == "COMPLETED"
    after = _text(served.http.get(done.headers["location"]))
    assert "Cancelled 2 runs." in after and "Only the runs selected are shown." in after
    bad = served.http.get("/runs/cancel", params={"run_id": "not-a-run!"})
    assert bad.status_code == 400 and "run_id" in bad.text


def test_the_api_bulk_actions_take_run_ids(served: Served) -> None:
    naps = [send(served, {"order": f"A-{n}", "nap": True}) for n in range(2)]

    preview = served.http.post("/v1/runs/cancel", json={"run_ids": [naps[1]], "preview": True})
    assert preview.status_code == 200, preview.text
    assert preview.json()["data"]["count"] == 1
    assert [run["id"] for run in preview.json()["data"]["sample"]] == [naps[1]]
    done = served.http.post("/v1/runs/cancel", json={"run_ids": [naps[1]]})
    assert done.json()["data"]["affected"] == 1
    assert not served.engine.store.get_run(naps[0]).ended
    empty = served.http.post("/v1/runs/cancel", json={"run_ids": []})
    assert empty.status_code == 400 and "run_ids" in empty.text
