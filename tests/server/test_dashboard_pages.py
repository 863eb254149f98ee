"""The function, workers and events pages over HTTP, without a browser (both stores)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from stepline.engine.clock import FakeClock
from stepline.store.base import Store
from tests.server.conftest import Served
from tests.server.pages_support import seeded_engine, tick

pytestmark = pytest.mark.timeout(15)

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def served(store: Store, clock: FakeClock, serve: Callable[..., Served]) -> Iterator[Served]:
    engine = seeded_engine(store, clock)
    yield serve(engine)
    engine.worker.stop(grace_seconds=0)  # never started: this closes its event loop


def _html(response: httpx.Response, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def _section(text: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"(.*?)</(section|ul|dd|p)>', text, re.S)
    assert match, element_id
    return match.group(1)


def test_function_page_shows_config_cron_ticks_runs_and_the_chart(
    served: Served, store: Store
) -> None:
    text = _html(served.http.get("/functions/report"))

    assert "Nightly report" in text
    assert "4 retries (up to 5 attempts)" in _section(text, "function-retries")
    options = _section(text, "function-options")
    assert "concurrency" in options and "2" in options and "10 per 1m" in options
    triggers = _section(text, "function-triggers")
    assert "report/requested" in triggers and "30 2 * * * (UTC)" in triggers
    assert 'next <time datetime="2026-01-03T02:30:00.000Z"' in triggers
    assert "none yet" in triggers, "the first sight of the schedule is no tick"
    # Recent runs: the four that ended and the one in flight, linked, with durations.
    assert text.count('href="/runs/') >= 5
    assert "10.0s" in text and "FAILED" in text
    # Two hours with runs in the window: a bar and a p50 and p95 point each.
    svg = re.search(r"<svg class=\"chart\".*?</svg>", text, re.S)
    assert svg is not None
    assert svg.group(0).count("<rect") == 2
    assert svg.group(0).count('<circle class="p50"') == 2
    assert svg.group(0).count('<circle class="p95"') == 2
    assert "66.7% of 3 runs completed; p50 4.0s, p95 10.0s" in text
    assert "08:00 UTC: 50% of 2" in text

    tick(store)
    triggers = _section(_html(served.http.get("/functions/report")), "function-triggers")
    assert 'last <time datetime="2026-01-02T02:30:00.000Z"' in triggers


def test_function_names_link_to_their_page(served: Served) -> None:
    assert 'href="/functions/report"' in _html(served.http.get("/functions"))
    assert '<a href="/functions/report">report</a>' in _html(served.http.get("/runs"))
    assert _html(served.http.get("/functions/nope"), 404)


def test_run_now_refuses_bad_json_on_the_function_page(served: Served) -> None:
    refused = served.http.post("/functions/report/run", data={"payload": '{"a": '}, headers=FORM)
    text = _html(refused, 400)
    assert "payload: not valid JSON" in text and 'aria-invalid="true"' in text
    assert ">{&#34;a&#34;: </textarea>" in text
    assert 'data-json-field="payload"' in text, "checked in the browser first"

    started = served.http.post("/functions/report/run", data={"payload": '{"a": 1}'}, headers=FORM)
    assert started.status_code == 303 and started.headers["location"].startswith("/runs/")


def test_pause_asks_first_then_pauses_and_resume_likewise(served: Served) -> None:
    text = _html(served.http.get("/functions/report"))
    assert 'href="/functions/report/pause"' in text
    ask = _html(served.http.get("/functions/report/pause"))
    assert "Pause function report?" in ask
    assert "Its events and cron ticks will start no runs" in ask
    assert 'action="/functions/report/pause"' in ask
    assert not served.engine.operations.function("report").paused, "asking paused nothing"

    done = served.http.post("/functions/report/pause", data={"confirmed": "true"}, headers=FORM)
    assert done.status_code == 303 and done.headers["location"] == "/functions/report"
    assert served.engine.operations.function("report").paused
    page = _html(served.http.get("/functions/report"))
    assert "PAUSED" in page and '<button type="submit" disabled>Run now</button>' in page
    assert "Resume function report?" in _html(served.http.get("/functions/report/resume"))
    served.http.post("/functions/report/resume", data={"confirmed": "true"}, headers=FORM)
    assert not served.engine.operations.function("report").paused


def test_workers_page_shows_runs_in_flight_and_marks_the_dead_worker(
    served: Served, store: Store
) -> None:
    [leased] = store.leased_runs()
    text = _html(served.http.get("/workers"))

    live = text[text.index('id="worker-w-live"') :].split("</tr>")[0]
    assert "HEALTHY" in live and "1 busy, 3 free of 4" in live
    assert f'href="/runs/{leased.run_id}"' in text
    dead = text[text.index('id="worker-w-dead"') :]
    assert "DEAD" in dead.split("</tr>")[0] and "10m00s ago" in dead
    assert 'sse-connect="/workers/stream"' in text
    assert 'href="/workers" aria-current="page"' in text


def test_events_filter_by_name_prefix_with_a_preview_of_their_data(served: Served) -> None:
    text = _html(served.http.get("/events", params={"prefix": "shop/"}))

    assert "shop/order.paid" in text and "shop/order.refunded" in text
    assert "stock/changed" not in text
    assert "{&#34;order&#34;: 2}" in text
    assert "…</code>" in text, "a long payload is cut"
    assert 'sse-connect="/events/stream?prefix=shop%2F"' in text
    assert "stock/changed" in _html(served.http.get("/events", params={"prefix": "sto"}))
    assert _html(served.http.get("/events", params={"prefix": "x" * 600}), 400)


def test_events_stream_sends_the_filtered_rows(served: Served) -> None:
    with served.http.stream("GET", "/events/stream", params={"prefix": "stock/"}) as response:
        assert response.status_code == 200
        lines = []
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith("data:") and "</tr>" in "".join(lines):
                break
    sent = "\n".join(lines)
    assert "event: events" in sent and "stock/changed" in sent and "shop/" not in sent


def test_the_functions_page_shows_no_last_cron_tick_until_a_real_one(
    served: Served, store: Store
) -> None:
    assert 'class="last-fire"' not in _html(served.http.get("/functions"))
    tick(store)
    text = _html(served.http.get("/functions"))
    assert '<span class="last-fire">last <time datetime="2026-01-02T02:30:00.000Z"' in text
