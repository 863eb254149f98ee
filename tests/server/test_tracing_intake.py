"""Intake, `/v1/events` and invoke take a W3C `traceparent` header; their runs continue it."""

from __future__ import annotations

import json
from collections.abc import Callable

from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from tests.engine.support import drive, only_run
from tests.engine.tracing_support import hex_span, in_memory_tracing, spans_of
from tests.server.conftest import Served, echo_app

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


def test_intake_traceparent_is_continued_by_the_run(
    make_engine: Callable[..., Engine], clock: FakeClock, serve: Callable[..., Served]
) -> None:
    with in_memory_tracing() as provider:
        served = serve(make_engine(echo_app("ping")))
        response = served.http.post(
            "/e/any-key",
            json={"name": "ping", "data": {"n": 1}},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        [event_id] = response.json()["ids"]
        run = drive(served.engine, clock, only_run(served.engine, event_id).id)
        assert run.status == "COMPLETED"
        [run_span] = [span for span in spans_of(provider) if span.name == "run echo"]
    assert hex_span(run_span)[0] == TRACE_ID
    assert hex_span(run_span)[2] == PARENT_ID
    [event] = served.engine.store.get_events([event_id])  # kept with the event, for every replay
    assert json.loads(event.data) == {
        "n": 1,
        "_inngest": {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    }


def test_intake_ignores_an_invalid_traceparent(
    make_engine: Callable[..., Engine], serve: Callable[..., Served]
) -> None:
    served = serve(make_engine(echo_app("ping")))
    response = served.http.post(
        "/e/any-key",
        json={"name": "ping", "data": {"n": 1}},
        headers={"traceparent": "00-not-a-trace-01"},
    )
    [event_id] = response.json()["ids"]
    [event] = served.engine.store.get_events([event_id])
    assert json.loads(event.data) == {"n": 1}


def test_api_send_and_invoke_take_a_traceparent(
    make_engine: Callable[..., Engine], clock: FakeClock, serve: Callable[..., Served]
) -> None:
    header = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    with in_memory_tracing() as provider:
        served = serve(make_engine(echo_app("ping")))
        sent = served.http.post("/v1/events", json={"name": "ping", "data": {}}, headers=header)
        [event_id] = sent.json()["data"]["ids"]
        invoked = served.http.post("/v1/functions/echo/invoke", json={"data": {}}, headers=header)
        assert invoked.status_code == 201, invoked.text
        run_ids = [only_run(served.engine, event_id).id, invoked.json()["data"]["run_id"]]
        for run_id in run_ids:
            assert drive(served.engine, clock, run_id).status == "COMPLETED"
        run_spans = [span for span in spans_of(provider) if span.name == "run echo"]
    assert sorted(hex_span(span)[::2] for span in run_spans) == [(TRACE_ID, PARENT_ID)] * 2
